// Chain validity of a block given the chain so far. One implementation serves both sides of the
// storage boundary: LedgerStore runs it before writing, verify.ts re-runs it after reading.
import { blockHash, validateBlockShape } from "./block.ts";
import { merkleRootOfLeafHashes } from "./merkle.ts";
import { canonicalBytes } from "./canonical.ts";
import { fail, LedgerError } from "./errors.ts";
import { type ChainContext, primaryOf } from "./genesis.ts";
import { encodeTx, txLeafHash, verifyTxAuth } from "./tx.ts";
import type {
  Block,
  ModelUpdateBody,
  RoundCloseBody,
  RoundOpenBody,
  RoundResultBody,
  Tx,
} from "./types.ts";

/**
 * What the rules need to know about the chain before a block. A store may fill only the entries
 * for the block's senders (nonces, updates); the rules touch nothing else.
 */
export interface ChainState {
  height: number;
  /** Hash of the block at `height`, or the genesis hash at height 0. */
  lastHash: string;
  lastTimeMs: number;
  /** Highest nonce used by each sender. */
  nonces: Map<string, number>;
  /** Highest round opened / closed so far (0 = none). A round is open iff opened > closed. */
  roundOpened: number;
  roundClosed: number;
  /** Highest round with a round_result (≤ roundClosed). */
  roundResulted: number;
  /** `${type} ${sender}` of each update in the open round. */
  updatesInOpenRound: Set<string>;
}

export function genesisState(ctx: ChainContext): ChainState {
  return {
    height: 0,
    lastHash: ctx.genesisHash,
    lastTimeMs: ctx.genesis.genesis_time_ms,
    nonces: new Map(),
    roundOpened: 0,
    roundClosed: 0,
    roundResulted: 0,
    updatesInOpenRound: new Set(),
  };
}

/**
 * Checks a block against the chain state and, if valid, advances `state` to include it.
 * On error `state` may be partly advanced: callers pass a copy they can discard (cloneState).
 * Returns the block hash.
 */
export async function applyBlock(
  ctx: ChainContext,
  state: ChainState,
  block: Block,
): Promise<string> {
  const params = ctx.genesis.params;
  validateBlockShape(block, {
    maxTxs: params.batch.max_txs_per_block,
    maxTxBytes: params.batch.max_tx_bytes,
  });
  const h = block.header;
  const height = h.height;
  if (h.chain_id !== ctx.chainId) {
    fail("wrong_chain", `chain_id ${JSON.stringify(h.chain_id)} is not ${ctx.chainId}`, height);
  }
  if (height !== state.height + 1) {
    fail("bad_height", `expected height ${state.height + 1}`, height);
  }
  if (h.prev_hash !== state.lastHash) {
    fail("bad_prev_hash", `prev_hash ${h.prev_hash} does not link to ${state.lastHash}`, height);
  }
  const primary = primaryOf(ctx, h.view);
  if (h.proposer !== primary.address) {
    fail(
      "bad_proposer",
      `proposer ${h.proposer} is not ${primary.id}, the primary of view ${h.view}`,
      height,
    );
  }
  if (h.time_ms < state.lastTimeMs) {
    fail("bad_time", `time_ms ${h.time_ms} is before ${state.lastTimeMs}`, height);
  }
  // Each tx is encoded once, for both the size limit and the Merkle root. canonical(block) is
  // `{"header":` H `,"txs":[` T0 `,` T1 ... `]}`, so its length follows from the parts.
  const txBytes = block.txs.map(encodeTx);
  const size = 10 + canonicalBytes(h).length + 8 + txBytes.reduce((sum, t) => sum + t.length, 0) +
    Math.max(0, txBytes.length - 1) + 2;
  if (size > params.batch.max_block_bytes) {
    fail("malformed", `${size} bytes, limit ${params.batch.max_block_bytes}`, height);
  }
  const root = merkleRootOfLeafHashes(block.txs.map(txLeafHash));
  if (root !== h.tx_root) {
    fail("bad_tx_root", `tx_root ${h.tx_root} but txs hash to ${root}`, height);
  }

  // Signatures in parallel (WebCrypto is async), then the order-dependent rules in order.
  const auth = await Promise.allSettled(
    block.txs.map((tx, i) => verifyTxAuth(ctx, tx, `txs[${i}]`)),
  );
  auth.forEach((result) => {
    if (result.status === "rejected") throw withHeight(result.reason, height);
  });
  block.txs.forEach((tx, i) => applyTxRules(ctx, state, tx, `txs[${i}]`, height));

  const hash = blockHash(h);
  state.height = height;
  state.lastHash = hash;
  state.lastTimeMs = h.time_ms;
  return hash;
}

function applyTxRules(
  ctx: ChainContext,
  state: ChainState,
  tx: Tx,
  path: string,
  height: number,
): void {
  const last = state.nonces.get(tx.from) ?? 0;
  if (tx.nonce <= last) {
    fail("replay", `${path}: nonce ${tx.nonce} is not above ${last}, the sender's last`, height);
  }
  state.nonces.set(tx.from, tx.nonce);
  const open = state.roundOpened > state.roundClosed;
  switch (tx.type) {
    case "round_open": {
      const round = (tx.body as RoundOpenBody).round;
      if (open) fail("bad_round", `${path}: round ${state.roundOpened} is still open`, height);
      if (round !== state.roundOpened + 1) {
        fail(
          "bad_round",
          `${path}: opens round ${round}, expected ${state.roundOpened + 1}`,
          height,
        );
      }
      state.roundOpened = round;
      state.updatesInOpenRound.clear();
      return;
    }
    case "round_close": {
      const round = (tx.body as RoundCloseBody).round;
      if (!open || round !== state.roundOpened) {
        fail("bad_round", `${path}: closes round ${round}, which is not open`, height);
      }
      state.roundClosed = round;
      state.updatesInOpenRound.clear();
      return;
    }
    case "round_result": {
      const round = (tx.body as RoundResultBody).round;
      if (round !== state.roundClosed || state.roundResulted >= round) {
        fail(
          "bad_round",
          `${path}: result for round ${round}, but the last closed round without a result is ${
            state.roundResulted < state.roundClosed ? state.roundClosed : "none"
          }`,
          height,
        );
      }
      state.roundResulted = round;
      return;
    }
    case "model_update":
    case "edge_update": {
      const body = tx.body as ModelUpdateBody;
      if (!open || body.round !== state.roundOpened) {
        fail(
          "bad_round",
          `${path}: update for round ${body.round}, but the open round is ${
            open ? state.roundOpened : "none"
          }`,
          height,
        );
      }
      const bounds = ctx.genesis.params.model_update;
      if (
        body.sample_count < bounds.min_sample_count || body.sample_count > bounds.max_sample_count
      ) {
        fail(
          "malformed",
          `${path}: sample_count ${body.sample_count} outside ${bounds.min_sample_count}..${bounds.max_sample_count}`,
          height,
        );
      }
      if (body.blob_size_bytes > bounds.max_blob_bytes) {
        fail(
          "malformed",
          `${path}: blob_size_bytes ${body.blob_size_bytes} above ${bounds.max_blob_bytes}`,
          height,
        );
      }
      const key = `${tx.type} ${tx.from}`;
      if (state.updatesInOpenRound.has(key)) {
        fail("replay", `${path}: second ${tx.type} from ${tx.from} in round ${body.round}`, height);
      }
      state.updatesInOpenRound.add(key);
      return;
    }
    case "quarantine":
    case "readmit": {
      const target = (tx.body as { target: string }).target;
      const role = ctx.keys.get(target)?.role;
      if (role !== "device" && role !== "edge") {
        fail("malformed", `${path}: target ${target} is not a device or edge in genesis`, height);
      }
      return;
    }
  }
}

export function cloneState(state: ChainState): ChainState {
  return {
    ...state,
    nonces: new Map(state.nonces),
    updatesInOpenRound: new Set(state.updatesInOpenRound),
  };
}

function withHeight(error: unknown, height: number): unknown {
  if (error instanceof LedgerError && error.height === undefined) {
    return new LedgerError(error.code, error.message, height);
  }
  return error;
}
