// Public surface of the update-consensus application logic (see docs/update-consensus.md).
export * from "./limits.ts";
export * from "./params.ts";
export * from "./canonical.ts";
export * from "./blob.ts";
export * from "./prng.ts";
export * from "./vector.ts";
export * from "./aggregate.ts";
export * from "./scoring.ts";
export * from "./state.ts";
export * from "./record.ts";
export * from "./round.ts";
export * from "./attacks.ts";
