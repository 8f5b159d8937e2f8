// Model blobs: a flat Float32 vector as little-endian bytes, addressed by SHA-256 of those bytes.
// Update blobs and global models use the same format so validators store and serve both alike.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

export function sha256Hex(bytes: Uint8Array): string {
  return bytesToHex(sha256(bytes));
}

/** Little-endian bytes of the vector, independent of the host's byte order. */
export function encodeWeights(weights: Float32Array): Uint8Array {
  const bytes = new Uint8Array(weights.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < weights.length; i++) view.setFloat32(i * 4, weights[i], true);
  return bytes;
}

export function decodeWeights(bytes: Uint8Array): Float32Array {
  if (bytes.length % 4 !== 0) {
    throw new Error(`model blob: ${bytes.length} bytes is not a multiple of 4`);
  }
  const weights = new Float32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(i * 4, true);
  return weights;
}

/** SHA-256 (hex) of the little-endian bytes: the hash a commit certificate vouches for. */
export function modelHash(weights: Float32Array): string {
  return sha256Hex(encodeWeights(weights));
}

export type ModelCheck =
  | { ok: true; weights: Float32Array }
  | { ok: false; reason: "hash_mismatch" | "wrong_shape" | "non_finite"; detail: string };

/** What a device or edge runs on a global model it fetched, once the commit certificate for
 * `expectedHash` has been verified by the chain layer. */
export function checkModelBlob(
  bytes: Uint8Array,
  expectedHash: string,
  parameterCount: number,
): ModelCheck {
  const actual = sha256Hex(bytes);
  if (actual !== expectedHash) {
    return {
      ok: false,
      reason: "hash_mismatch",
      detail: `blob hashes to ${actual}, expected ${expectedHash}`,
    };
  }
  if (bytes.length !== parameterCount * 4) {
    return {
      ok: false,
      reason: "wrong_shape",
      detail: `blob has ${bytes.length} bytes, expected ${parameterCount} float32 = ${
        parameterCount * 4
      }`,
    };
  }
  const weights = decodeWeights(bytes);
  const bad = firstNonFinite(weights);
  if (bad >= 0) {
    return { ok: false, reason: "non_finite", detail: `parameter ${bad} is ${weights[bad]}` };
  }
  return { ok: true, weights };
}

export function firstNonFinite(values: Float32Array | Float64Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}
