// Key files: one JSON object per key, private part as PKCS#8 (base64) so other tools (openssl,
// WebCrypto) can read it directly. Written with mode 0600 and never over an existing file.
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { fromBase64, fromHex, toBase64, toHex } from "./bytes.ts";
import { addressOf, type KeyPair, keyPairFromSeed, pkcs8ToSeed, seedToPkcs8 } from "./ed25519.ts";

export const KEY_FILE_KIND = "iomt-sfl/ed25519-key";
export const KEY_ROLES = ["validator", "device", "edge", "admin"] as const;
export type KeyRole = (typeof KEY_ROLES)[number];
/** ids appear in genesis and logs: short, printable, no spaces. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
const KEY_FILE_BYTES_MAX = 16 * 1024;

export interface KeyFile {
  v: 1;
  kind: typeof KEY_FILE_KIND;
  role: KeyRole;
  id: string;
  address: string;
  public_key_hex: string;
  public_key_base64: string;
  private_key_pkcs8_base64: string;
}

export interface LoadedKey extends KeyPair {
  role: KeyRole;
  id: string;
  address: string;
}

export function keyFileFor(pair: KeyPair, role: KeyRole, id: string): KeyFile {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new Error(`key id must match ${KEY_ID_PATTERN}: ${JSON.stringify(id)}`);
  }
  if (!(KEY_ROLES as readonly string[]).includes(role)) {
    throw new Error(`unknown key role: ${role}`);
  }
  return {
    v: 1,
    kind: KEY_FILE_KIND,
    role,
    id,
    address: addressOf(pair.publicKey),
    public_key_hex: toHex(pair.publicKey),
    public_key_base64: toBase64(pair.publicKey),
    private_key_pkcs8_base64: toBase64(seedToPkcs8(pair.seed)),
  };
}

/** Writes a new key file with mode 0600; refuses to overwrite (a lost private key is not recoverable). */
export function writeKeyFile(path: string, file: KeyFile): void {
  writeFileSync(path, JSON.stringify(file, null, 2) + "\n", { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600); // the mode above is filtered by umask; make it exact
}

/** Parses and checks a key file: the stored public key and address must match the private key. */
export async function parseKeyFile(text: string, source = "key file"): Promise<LoadedKey> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: not JSON (${(error as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null) throw new Error(`${source}: expected a JSON object`);
  const file = raw as Record<string, unknown>;
  if (file.kind !== KEY_FILE_KIND || file.v !== 1) {
    throw new Error(`${source}: not an iomt-sfl key file (kind must be "${KEY_FILE_KIND}", v 1)`);
  }
  if (!(KEY_ROLES as readonly unknown[]).includes(file.role)) {
    throw new Error(`${source}: bad role`);
  }
  if (typeof file.id !== "string" || !KEY_ID_PATTERN.test(file.id)) {
    throw new Error(`${source}: bad id`);
  }
  if (typeof file.private_key_pkcs8_base64 !== "string") {
    throw new Error(`${source}: missing private_key_pkcs8_base64`);
  }
  const pair = await keyPairFromSeed(pkcs8ToSeed(fromBase64(file.private_key_pkcs8_base64)));
  const publicHex = toHex(pair.publicKey);
  if (file.public_key_hex !== publicHex) {
    throw new Error(`${source}: public_key_hex does not match the private key`);
  }
  const address = addressOf(pair.publicKey);
  if (file.address !== address) throw new Error(`${source}: address does not match the public key`);
  return { ...pair, role: file.role as KeyRole, id: file.id, address };
}

export async function readKeyFile(path: string): Promise<LoadedKey> {
  const text = readFileSync(path, "utf8");
  if (text.length > KEY_FILE_BYTES_MAX) {
    throw new Error(`${path}: key file larger than ${KEY_FILE_BYTES_MAX} bytes`);
  }
  return await parseKeyFile(text, path);
}

/** For tests and vectors: a key from a fixed 32-byte seed given as hex. */
export async function keyFromSeedHex(
  seedHex: string,
  role: KeyRole,
  id: string,
): Promise<LoadedKey> {
  const pair = await keyPairFromSeed(fromHex(seedHex, 32));
  return { ...pair, role, id, address: addressOf(pair.publicKey) };
}
