// Blocks: a header (hashed) and the ordered transactions (bound to the header by tx_root).
// encodeBlock's bytes are the opaque payload PBFT orders; PBFT's digest for it is blockHash.
import { canonicalBytes, canonicalHash, parseCanonical } from "./canonical.ts";
import * as check from "./check.ts";
import { fail, LedgerError } from "./errors.ts";
import { merkleRootOfLeafHashes } from "./merkle.ts";
import { encodeTx, sealTx, txLeafHash, validateTxShape } from "./tx.ts";
import { type Block, type BlockHeader, LIMITS, type Tx } from "./types.ts";

export interface BuildBlockInput {
  chainId: string;
  height: number;
  prevHash: string;
  view: number;
  proposer: string;
  timeMs: number;
  stateRoot: string;
  txs: Tx[];
}

/** Header + Merkle root over txs in the given order. Checks shapes; chain rules are verifyBlock's. */
export function buildBlock(input: BuildBlockInput): Block {
  const header: BlockHeader = {
    v: 1,
    chain_id: input.chainId,
    height: input.height,
    prev_hash: input.prevHash,
    tx_root: txRoot(input.txs),
    tx_count: input.txs.length,
    view: input.view,
    proposer: input.proposer,
    time_ms: input.timeMs,
    state_root: input.stateRoot,
  };
  const block = { header, txs: input.txs };
  validateBlockShape(block, { maxTxs: LIMITS.txs_per_block_max, maxTxBytes: LIMITS.tx_bytes_max });
  return block;
}

export function txRoot(txs: readonly Tx[]): string {
  return merkleRootOfLeafHashes(txs.map(txLeafHash));
}

/** Block hash = SHA-256 of the header's canonical bytes (the txs are bound by tx_root). */
export function blockHash(headerOrBlock: BlockHeader | Block): string {
  const header = "header" in headerOrBlock ? headerOrBlock.header : headerOrBlock;
  return canonicalHash(header);
}

const encoder = new TextEncoder();

/**
 * Canonical bytes of the whole block: the PBFT payload and the `ledger show --json` form.
 * Canonical JSON of `{header, txs}` is `{"header":` H `,"txs":[` T0 `,` T1 … `]}` ("header" sorts
 * before "txs"), so it is assembled from the header and each tx's (possibly memoized) bytes.
 */
export function encodeBlock(block: Block): Uint8Array {
  const header = canonicalBytes(block.header);
  const txs = block.txs.map(encodeTx);
  const head = encoder.encode('{"header":');
  const mid = encoder.encode(',"txs":[');
  const size = head.length + header.length + mid.length +
    txs.reduce((sum, t) => sum + t.length, 0) + Math.max(0, txs.length - 1) + 2;
  const out = new Uint8Array(size);
  let at = 0;
  const put = (bytes: Uint8Array) => {
    out.set(bytes, at);
    at += bytes.length;
  };
  put(head);
  put(header);
  put(mid);
  txs.forEach((t, i) => {
    if (i > 0) out[at++] = 0x2c; // ,
    put(t);
  });
  out[at++] = 0x5d; // ]
  out[at++] = 0x7d; // }
  if (at !== size) throw new Error(`encodeBlock: wrote ${at} of ${size} bytes`);
  return out;
}

export interface BlockLimits {
  maxTxs: number;
  maxTxBytes: number;
  /** Seal the decoded txs (sealTx): their bytes, hash and signature verdict are memoized. */
  sealTxs?: boolean;
}

/**
 * Decodes a PBFT payload. Rejects non-canonical bytes, bad shapes and a tx_root or tx_count that
 * does not match the txs, so a decoded block is always internally consistent.
 */
export function decodeBlock(
  bytes: Uint8Array,
  limits: BlockLimits & { maxBlockBytes: number } = {
    maxTxs: LIMITS.txs_per_block_max,
    maxTxBytes: LIMITS.tx_bytes_max,
    maxBlockBytes: LIMITS.block_bytes_max,
  },
): Block {
  let value: unknown;
  try {
    value = parseCanonical(bytes, limits.maxBlockBytes);
  } catch (error) {
    fail("malformed", `block payload: ${(error as Error).message}`);
  }
  const block = validateBlockShape(value, limits);
  const root = txRoot(block.txs);
  if (root !== block.header.tx_root) {
    fail(
      "bad_tx_root",
      `tx_root ${block.header.tx_root} but txs hash to ${root}`,
      block.header.height,
    );
  }
  return block;
}

export function validateHeaderShape(value: unknown, path = "header"): BlockHeader {
  const h = check.object(value, path, [
    "v",
    "chain_id",
    "height",
    "prev_hash",
    "tx_root",
    "tx_count",
    "view",
    "proposer",
    "time_ms",
    "state_root",
  ]);
  check.literal(h.v, `${path}.v`, 1);
  if (typeof h.chain_id !== "string") fail("malformed", `${path}.chain_id: expected a string`);
  check.int(h.height, `${path}.height`, 1, Number.MAX_SAFE_INTEGER);
  check.hex(h.prev_hash, `${path}.prev_hash`, 32);
  check.hex(h.tx_root, `${path}.tx_root`, 32);
  check.int(h.tx_count, `${path}.tx_count`, 0, LIMITS.txs_per_block_max);
  check.int(h.view, `${path}.view`, 0, LIMITS.view_max);
  check.hex(h.proposer, `${path}.proposer`, 20);
  check.int(h.time_ms, `${path}.time_ms`, 0, Number.MAX_SAFE_INTEGER);
  check.hex(h.state_root, `${path}.state_root`, 32);
  return value as BlockHeader;
}

export function validateBlockShape(value: unknown, limits: BlockLimits): Block {
  const b = check.object(value, "block", ["header", "txs"]);
  const header = validateHeaderShape(b.header, "block.header");
  try {
    const txs = check.array(b.txs, "block.txs", limits.maxTxs);
    if (txs.length !== header.tx_count) {
      fail(
        "malformed",
        `block.header.tx_count is ${header.tx_count} but the block has ${txs.length} txs`,
      );
    }
    const checkTx = limits.sealTxs ? sealTx : validateTxShape;
    txs.forEach((tx, i) => checkTx(tx, limits.maxTxBytes, `block.txs[${i}]`));
  } catch (error) {
    if (error instanceof LedgerError && error.height === undefined) {
      throw new LedgerError(error.code, error.message, header.height);
    }
    throw error;
  }
  return value as Block;
}
