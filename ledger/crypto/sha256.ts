// SHA-256 in two flavours: synchronous (@noble/hashes) for the small canonical objects hashed on
// every block and tx, where an await per hash would cost more than the hash; WebCrypto for
// model-weight blobs, where native speed matters and an await is cheap by comparison.
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "./bytes.ts";

export const SHA256_BYTES = 32;

/** Synchronous SHA-256 for small inputs (headers, txs, Merkle nodes). */
export function sha256Bytes(data: Uint8Array): Uint8Array {
  return sha256(data);
}

export function sha256Hex(data: Uint8Array): string {
  return toHex(sha256(data));
}

/** WebCrypto SHA-256 for large inputs (blobs). */
export async function sha256HexAsync(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return toHex(new Uint8Array(digest));
}
