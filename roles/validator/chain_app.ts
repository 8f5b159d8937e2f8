// The application side of the PBFT replica at the chain level: builds blocks from ordered client
// requests (the primary's `propose`), checks proposals and transferred blocks (`validate`), and
// turns committed entries into ledger blocks with their certificates.
//
// Every check runs ledger/chain's own rules (applyBlock: height, link, proposer, time, Merkle
// root, tx signatures, nonces, round rules) against the chain state of the block's parent, so a
// block this replica votes for is exactly a block the store will accept and `ledger verify` will
// pass. States of validated-but-uncommitted blocks are kept by block hash (a pipeline of several
// heights in flight), bounded and pruned as heights commit.
import { blockHash, buildBlock, decodeBlock, encodeBlock } from "../../ledger/chain/block.ts";
import { bytesEqual } from "../../ledger/crypto/bytes.ts";
import { canonicalHash, parseCanonical } from "../../ledger/chain/canonical.ts";
import { LedgerError } from "../../ledger/chain/errors.ts";
import { type ChainContext, primaryOf } from "../../ledger/chain/genesis.ts";
import { applyBlock, type ChainState, cloneState } from "../../ledger/chain/rules.ts";
import { encodeTx, sealTx, txHash } from "../../ledger/chain/tx.ts";
import type { Block, Certificate, Tx } from "../../ledger/chain/types.ts";
import type {
  CommitOutput,
  ProposeEffect,
  RequestId,
  ValidateEffect,
} from "../../ledger/pbft/types.ts";

/** Validated blocks above the committed height whose states are kept (pipeline + view changes). */
export const SPECULATIVE_BLOCKS_MAX = 256;
/** Decoded blocks seen in pre-prepares, so a parent this replica did not validate can be replayed. */
export const SEEN_BLOCKS_MAX = 64;
/** A proposal whose time is further ahead of this replica's clock is refused (clock skew bound). */
export const BLOCK_TIME_AHEAD_MS_MAX = 60_000;
/** Txs dropped from one proposal because they broke a chain rule, at most. */
const PROPOSE_DROP_ROUNDS_MAX = 32;

/** Chain state after a block, with what the next block needs from it. */
export interface BlockState {
  height: number;
  hash: string;
  stateRoot: string;
  timeMs: number;
  chain: ChainState;
  block: Block | null;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

export interface ProposeResult {
  block: Block;
  payload: Uint8Array;
  blockHash: string;
  /** Requests left out because they broke a chain rule at this point of the chain. */
  dropped: { id: RequestId; reason: string }[];
}

/**
 * State root of the chain-level application: a hash chain over the Merkle roots of the blocks.
 * A placeholder until ledger/app's UpdateLedger state root is carried in round-closing blocks
 * (see docs/validator.md, "What remains"); it still binds every block to all txs before it.
 */
export function nextStateRoot(previousStateRoot: string, txRoot: string, height: number): string {
  return canonicalHash({
    kind: "iomt-sfl/chain-state-v1",
    height,
    prev_state_root: previousStateRoot,
    tx_root: txRoot,
  });
}

export function requestIdOf(tx: Tx): RequestId {
  return { clientId: tx.from, nonce: tx.nonce };
}

export function requestKeyOf(id: RequestId): string {
  return `${id.clientId}:${id.nonce}`;
}

export class ChainApp {
  readonly ctx: ChainContext;
  #committed: BlockState;
  readonly #speculative = new Map<string, BlockState>();
  /** Raw payloads by claimed hash, decoded (and their hash checked) only when replayed. */
  readonly #seen = new Map<string, { height: number; payload: Uint8Array }>();
  readonly #now: () => number;
  /** Application rules on top of the chain rules (update consensus: roles/validator/update_app.ts).
   * Runs after applyBlock; a reason naming `txs[i]` lets propose drop that tx and retry. */
  blockCheck: ((block: Block, parent: BlockState) => Promise<Verdict>) | null = null;
  /** This replica's admitted (sealed, verified) tx for a request key, e.g. from its mempool. A
   * decoded block's tx with the same bytes is replaced by it, so its checks are not paid again. */
  knownTx: ((key: string) => Tx | undefined) | null = null;

  constructor(ctx: ChainContext, committed: BlockState, now: () => number = Date.now) {
    this.ctx = ctx;
    this.#committed = committed;
    this.#now = now;
  }

  get committed(): BlockState {
    return this.#committed;
  }

  /** Committed nonce of a sender (0 = none). */
  committedNonce(address: string): number {
    return this.#committed.chain.nonces.get(address) ?? 0;
  }

  #limits() {
    const batch = this.ctx.genesis.params.batch;
    return {
      maxTxs: batch.max_txs_per_block,
      maxTxBytes: batch.max_tx_bytes,
      maxBlockBytes: batch.max_block_bytes,
      sealTxs: true,
    };
  }

  /** Decodes a payload (txs sealed) and swaps in already admitted copies of identical txs. */
  #decode(payload: Uint8Array): Block {
    const block = decodeBlock(payload, this.#limits());
    if (this.knownTx) {
      block.txs.forEach((tx, i) => {
        const known = this.knownTx!(requestKeyOf(requestIdOf(tx)));
        if (known && known !== tx && bytesEqual(encodeTx(known), encodeTx(tx))) {
          block.txs[i] = known;
        }
      });
    }
    return block;
  }

  /** Records a block seen in a (signed) pre-prepare; only used to replay parents. Kept raw:
   * decoding every pre-prepare's payload up front costs more than the rare replay. */
  rememberPayload(hash: string, payload: Uint8Array, height: number): void {
    if (this.#seen.has(hash) || this.#speculative.has(hash) || height <= this.#committed.height) {
      return;
    }
    if (this.#seen.size >= SEEN_BLOCKS_MAX) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(hash, { height, payload });
  }

  /** State after the block `hash`: committed, validated, or replayed from a seen payload. */
  async stateAfter(hash: string, depth = 0): Promise<BlockState | null> {
    if (hash === this.#committed.hash) return this.#committed;
    const known = this.#speculative.get(hash);
    if (known) return known;
    const seen = this.#seen.get(hash);
    if (!seen || depth > 8 || seen.height <= this.#committed.height) return null;
    let block: Block;
    try {
      block = this.#decode(seen.payload);
    } catch {
      this.#seen.delete(hash);
      return null;
    }
    if (blockHash(block) !== hash) {
      this.#seen.delete(hash);
      return null;
    }
    const parent = await this.stateAfter(block.header.prev_hash, depth + 1);
    if (!parent) return null;
    const verdict = await this.#check(block, parent);
    return verdict.ok ? verdict.state : null;
  }

  async propose(
    effect: ProposeEffect,
    txsByKey: (key: string) => Tx | undefined,
  ): Promise<ProposeResult> {
    const parent = await this.stateAfter(effect.parentBlockHash);
    if (!parent) {
      throw new Error(
        `propose at ${effect.height}: parent ${effect.parentBlockHash} is unknown here`,
      );
    }
    const dropped: ProposeResult["dropped"] = [];
    let txs: Tx[] = [];
    for (const request of effect.requests) {
      const id = { clientId: request.clientId, nonce: request.nonce };
      const tx = txsByKey(requestKeyOf(id)) ??
        decodeRequestTx(request.body, this.#limits().maxTxBytes);
      if (!tx || tx.from !== id.clientId || tx.nonce !== id.nonce) {
        dropped.push({ id, reason: "request body is not the signed tx it names" });
        continue;
      }
      txs.push(tx);
    }
    // Per-sender nonces must rise inside a block; arrival order across senders is kept.
    txs = stableSortBySenderNonce(txs);
    const primary = primaryOf(this.ctx, effect.view);
    for (let attempt = 0;; attempt++) {
      const block = this.#build(effect, parent, txs, primary.address);
      const verdict = await this.#check(block, parent);
      if (verdict.ok) {
        return { block, payload: encodeBlock(block), blockHash: verdict.state.hash, dropped };
      }
      // applyBlock names the offending tx as `txs[i]`; drop it and try again (bounded).
      const match = /txs\[(\d+)\]/.exec(verdict.reason);
      if (!match || attempt >= PROPOSE_DROP_ROUNDS_MAX) {
        for (const tx of txs) dropped.push({ id: requestIdOf(tx), reason: verdict.reason });
        txs = [];
        if (attempt > PROPOSE_DROP_ROUNDS_MAX + 1) {
          throw new Error(
            `propose at ${effect.height}: even an empty block fails: ${verdict.reason}`,
          );
        }
        continue;
      }
      const index = Number(match[1]);
      dropped.push({ id: requestIdOf(txs[index]), reason: verdict.reason });
      txs = txs.filter((_, i) => i !== index);
    }
  }

  #build(effect: ProposeEffect, parent: BlockState, txs: Tx[], proposer: string): Block {
    const draft = buildBlock({
      chainId: this.ctx.chainId,
      height: effect.height,
      prevHash: effect.parentBlockHash,
      view: effect.view,
      proposer,
      timeMs: Math.max(this.#now(), parent.timeMs),
      stateRoot: "00".repeat(32),
      txs,
    });
    draft.header.state_root = nextStateRoot(parent.stateRoot, draft.header.tx_root, effect.height);
    return draft;
  }

  /** Checks a proposal or transferred block; on success remembers its state for its children. */
  async validate(effect: ValidateEffect): Promise<Verdict> {
    let block: Block;
    try {
      block = this.#decode(effect.payload);
    } catch (error) {
      return { ok: false, reason: `payload: ${(error as Error).message}` };
    }
    const h = block.header;
    const hash = blockHash(block);
    if (hash !== effect.blockHash) {
      return { ok: false, reason: `payload hashes to ${hash}, message says ${effect.blockHash}` };
    }
    if (h.height !== effect.height) {
      return { ok: false, reason: `block height ${h.height}, slot ${effect.height}` };
    }
    if (h.prev_hash !== effect.parentBlockHash) {
      return {
        ok: false,
        reason: `prev_hash ${h.prev_hash} is not the parent ${effect.parentBlockHash}`,
      };
    }
    // After a view change the new primary re-proposes blocks built in an earlier view unchanged
    // (their hash is fixed by the new-view), so a header's view may be below the slot's view.
    if (h.view > effect.view) {
      return {
        ok: false,
        reason: `header view ${h.view} is after the view ${effect.view} of the ${effect.purpose}`,
      };
    }
    if (effect.purpose === "proposal" && h.time_ms > this.#now() + BLOCK_TIME_AHEAD_MS_MAX) {
      return {
        ok: false,
        reason:
          `time_ms ${h.time_ms} is more than ${BLOCK_TIME_AHEAD_MS_MAX} ms ahead of this replica's clock`,
      };
    }
    // Every tx must be one of the ordered requests (the primary may leave out requests that break
    // a chain rule, which only delays or refuses them; it can never add one).
    const ids = new Set(effect.requestIds.map(requestKeyOf));
    for (const [i, tx] of block.txs.entries()) {
      if (!ids.has(requestKeyOf(requestIdOf(tx)))) {
        return {
          ok: false,
          reason: `txs[${i}] (${tx.from} nonce ${tx.nonce}) is not among the request ids`,
        };
      }
    }
    if (effect.height <= this.#committed.height) {
      // A transfer overtaken by agreement: the block is already in the ledger (or conflicts).
      const same = effect.height === this.#committed.height &&
        effect.blockHash === this.#committed.hash;
      return same
        ? { ok: true }
        : { ok: false, reason: `height ${effect.height} is already committed here` };
    }
    if (effect.height <= this.#committed.height) {
      // A transfer overtaken by agreement: the block is already in the ledger (or conflicts).
      const same = effect.height === this.#committed.height &&
        effect.blockHash === this.#committed.hash;
      return same
        ? { ok: true }
        : { ok: false, reason: `height ${effect.height} is already committed here` };
    }
    const parent = await this.stateAfter(effect.parentBlockHash);
    if (!parent) {
      return {
        ok: false,
        reason:
          `parent ${effect.parentBlockHash} is unknown here (committed ${this.#committed.height}, ` +
          `${this.#speculative.size} validated and ${this.#seen.size} seen blocks above it)`,
      };
    }
    const verdict = await this.#check(block, parent);
    return verdict.ok ? { ok: true } : verdict;
  }

  /** Chain rules + state root against the parent's state; remembers the result by hash. */
  async #check(
    block: Block,
    parent: BlockState,
  ): Promise<{ ok: true; state: BlockState } | { ok: false; reason: string }> {
    const h = block.header;
    if (h.height !== parent.height + 1) {
      return { ok: false, reason: `height ${h.height} does not follow ${parent.height}` };
    }
    const expectedRoot = nextStateRoot(parent.stateRoot, h.tx_root, h.height);
    if (h.state_root !== expectedRoot) {
      return { ok: false, reason: `state_root ${h.state_root}, expected ${expectedRoot}` };
    }
    const chain = cloneState(parent.chain);
    let hash: string;
    try {
      hash = await applyBlock(this.ctx, chain, block);
    } catch (error) {
      if (error instanceof LedgerError) {
        return { ok: false, reason: `${error.code}: ${error.message}` };
      }
      throw error;
    }
    if (this.blockCheck) {
      const verdict = await this.blockCheck(block, parent);
      if (!verdict.ok) return verdict;
    }
    const state: BlockState = {
      height: h.height,
      hash,
      stateRoot: h.state_root,
      timeMs: h.time_ms,
      chain,
      block,
    };
    if (this.#speculative.size >= SPECULATIVE_BLOCKS_MAX) {
      // Oldest first (insertion order); a dropped state is rebuilt from its payload if needed.
      this.#speculative.delete(this.#speculative.keys().next().value!);
    }
    this.#speculative.set(hash, state);
    return { ok: true, state };
  }

  /**
   * The ledger block and certificate of a committed entry. The block was validated before it was
   * voted for or transferred (its state is kept by hash); it must extend `parent`.
   */
  async committedBlock(
    commit: CommitOutput,
    parent: { height: number; hash: string } = this.#committed,
  ): Promise<{ block: Block; certificate: Certificate; state: BlockState }> {
    let state: BlockState | null = this.#speculative.get(commit.blockHash) ?? null;
    if (!state) {
      // Not validated by this replica (should not happen: the core validates before executing).
      this.rememberPayload(commit.blockHash, commit.payload, commit.height);
      state = await this.stateAfter(commit.blockHash);
    }
    if (!state || !state.block) {
      throw new Error(
        `committed block ${commit.height} ${commit.blockHash} does not apply on this replica's chain`,
      );
    }
    // `parent`: the committed tip, or the block before this one in the same durable write.
    if (state.height !== parent.height + 1 || state.block.header.prev_hash !== parent.hash) {
      throw new Error(
        `committed block ${commit.height} does not extend the committed chain at ${parent.height}`,
      );
    }
    const certificate: Certificate = {
      v: 1,
      chain_id: this.ctx.chainId,
      height: commit.height,
      view: commit.view,
      block_hash: commit.blockHash,
      signatures: commit.certificate
        .map((c) => ({ validator: this.ctx.validators[c.replica].address, sig: c.signature }))
        .sort((a, b) => (a.validator < b.validator ? -1 : 1)),
    };
    return { block: state.block, certificate, state };
  }

  /** Moves the committed tip after the store wrote the block; prunes states at or below it. */
  advance(state: BlockState): void {
    this.#committed = { ...state, block: null };
    for (const [hash, s] of this.#speculative) {
      if (s.height <= state.height) this.#speculative.delete(hash);
    }
    for (const [hash, seen] of this.#seen) {
      if (seen.height <= state.height) this.#seen.delete(hash);
    }
  }
}

function stableSortBySenderNonce(txs: Tx[]): Tx[] {
  // Keep the first-arrival order of senders; within a sender, ascending nonce.
  const bySender = new Map<string, Tx[]>();
  for (const tx of txs) {
    const list = bySender.get(tx.from);
    if (list) list.push(tx);
    else bySender.set(tx.from, [tx]);
  }
  const out: Tx[] = [];
  for (const list of bySender.values()) out.push(...list.sort((a, b) => a.nonce - b.nonce));
  return out;
}

/** A client request body is the canonical bytes of one signed tx. */
export function decodeRequestTx(body: Uint8Array, txBytesMax: number): Tx | undefined {
  try {
    return sealTx(parseCanonical(body, txBytesMax), txBytesMax);
  } catch {
    return undefined;
  }
}

export function requestBodyOf(tx: Tx): Uint8Array {
  return encodeTx(tx);
}

export { txHash };
