// The simulator's application: blocks are JSON bytes naming height, parent, requests and a salt;
// the block hash is SHA-256 of those bytes. Deterministic, so honest replicas agree on validity.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { RequestId } from "../pbft/types.ts";

export interface SimBlock {
  readonly payload: Uint8Array;
  readonly blockHash: string;
}

interface BlockBody {
  h: number;
  p: string;
  r: [string, number][];
  s: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function buildBlock(
  height: number,
  parentBlockHash: string,
  requestIds: readonly RequestId[],
  salt = "",
): SimBlock {
  const body: BlockBody = {
    h: height,
    p: parentBlockHash,
    r: requestIds.map((id) => [id.clientId, id.nonce]),
    s: salt,
  };
  const payload = encoder.encode(JSON.stringify(body));
  return { payload, blockHash: bytesToHex(sha256(payload)) };
}

export function decodeBlock(payload: Uint8Array): BlockBody | null {
  try {
    const body = JSON.parse(decoder.decode(payload)) as BlockBody;
    if (typeof body.h !== "number" || typeof body.p !== "string" || !Array.isArray(body.r)) {
      return null;
    }
    return body;
  } catch {
    return null;
  }
}

export function validateBlock(
  height: number,
  parentBlockHash: string,
  payload: Uint8Array,
  blockHash: string,
  requestIds: readonly RequestId[],
): boolean {
  if (bytesToHex(sha256(payload)) !== blockHash) return false;
  const body = decodeBlock(payload);
  if (!body || body.h !== height || body.p !== parentBlockHash) return false;
  if (body.r.length !== requestIds.length) return false;
  return body.r.every(([clientId, nonce], i) =>
    requestIds[i].clientId === clientId && requestIds[i].nonce === nonce
  );
}
