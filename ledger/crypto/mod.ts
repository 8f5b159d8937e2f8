export * from "./bytes.ts";
export * from "./sha256.ts";
export * from "./ed25519.ts";
export * from "./keyfile.ts";
