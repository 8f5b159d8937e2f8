// Merkle Tree Hash of RFC 6962 §2.1 (Certificate Transparency), over the canonical bytes of each
// transaction in block order:
//   MTH({})      = SHA-256()                             (empty input)
//   MTH({d0})    = SHA-256(0x00 || d0)                   (leaf, domain byte 0x00)
//   MTH(D[0:n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])),  k = largest power of two < n
// The 0x00/0x01 prefixes keep a leaf from ever being read as an inner node; splitting at a power
// of two (no duplicated odd leaf) avoids the Bitcoin CVE-2012-2459 ambiguity.
import { concatBytes, toHex } from "../crypto/bytes.ts";
import { sha256Bytes } from "../crypto/sha256.ts";

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

export function merkleLeafHash(data: Uint8Array): Uint8Array {
  return sha256Bytes(concatBytes(LEAF_PREFIX, data));
}

export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Bytes(concatBytes(NODE_PREFIX, left, right));
}

/** Root over leaf data (not leaf hashes), lowercase hex. */
export function merkleRoot(leaves: readonly Uint8Array[]): string {
  return toHex(merkleRootBytes(leaves.map(merkleLeafHash)));
}

/** Root over precomputed leaf hashes (merkleLeafHash of each leaf's data), lowercase hex. */
export function merkleRootOfLeafHashes(leafHashes: readonly Uint8Array[]): string {
  return toHex(merkleRootBytes([...leafHashes]));
}

function merkleRootBytes(leafHashes: Uint8Array[]): Uint8Array {
  if (leafHashes.length === 0) return sha256Bytes(new Uint8Array(0));
  if (leafHashes.length === 1) return leafHashes[0];
  const split = largestPowerOfTwoBelow(leafHashes.length);
  return merkleNodeHash(
    merkleRootBytes(leafHashes.slice(0, split)),
    merkleRootBytes(leafHashes.slice(split)),
  );
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
