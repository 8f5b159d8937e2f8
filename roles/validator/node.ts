// ValidatorNode: the shell around one PBFT replica (ledger/pbft). It owns every effect the pure
// core asks for: it authenticates incoming messages, steps events one at a time, writes committed
// blocks and the protocol snapshot durably BEFORE any message of the same steps leaves, signs and
// sends messages, runs the application (ChainApp) and maps timers to setTimeout.
//
// Group commit: the events waiting in the inbox are stepped together (up to STEPS_PER_FLUSH_MAX)
// and their outputs written in one flush, so one fsync covers many votes.
import { setImmediate } from "node:timers";
import { LedgerError } from "../../ledger/chain/errors.ts";
import {
  type ChainContext,
  chainContext,
  primaryOf as chainPrimaryOf,
} from "../../ledger/chain/genesis.ts";
import { type ChainState } from "../../ledger/chain/rules.ts";
import { encodeTx, sealTx, txHash, verifyTxAuth } from "../../ledger/chain/tx.ts";
import {
  type Block,
  type Certificate,
  type Genesis,
  LIMITS,
  type Tx,
} from "../../ledger/chain/types.ts";
import { blockHash, encodeBlock, validateBlockShape } from "../../ledger/chain/block.ts";
import { verifyCertificate } from "../../ledger/chain/certificate.ts";
import { fromHex } from "../../ledger/crypto/bytes.ts";
import type { LoadedKey } from "../../ledger/crypto/keyfile.ts";
import { createReplica, type Replica } from "../../ledger/pbft/replica.ts";
import { embeddedSignedMessages } from "../../ledger/pbft/signing.ts";
import {
  defaultConfig,
  type ReplicaConfig,
  VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES,
} from "../../ledger/pbft/config.ts";
import type {
  ClientRequest,
  CommitOutput,
  CommittedEntry,
  Output,
  ProtocolMessage,
  ProtocolSnapshot,
  ReplicaEvent,
  TimerName,
} from "../../ledger/pbft/types.ts";
import type { LedgerStore, ProtocolBatch } from "../../ledger/store/store.ts";
import { type Logger, logger } from "../../util/log.ts";
import { type BlockState, ChainApp, requestKeyOf } from "./chain_app.ts";
import type { Outbound } from "./transport.ts";
import { ProtocolPersistence, restoreSnapshot, SNAPSHOT_KEY } from "./protocol_log.ts";
import {
  decodeEnvelope,
  type RejectReason,
  signMessage,
  verifyMessage,
  WireError,
  type WireLimits,
} from "./wire.ts";

export { SNAPSHOT_KEY } from "./protocol_log.ts";
/** Events stepped before one durable flush. */
const STEPS_PER_FLUSH_MAX = 512;
/** Waiting events at most; past it, peer messages are dropped (PBFT retransmits them). */
const INBOX_EVENTS_MAX = 20_000;
/** Committed tx ids remembered in memory for GET /v1/tx/:id (older ones are looked up in the db). */
const TX_INDEX_MAX = 200_000;
const REJECTED_TX_MAX = 10_000;
const REJECTION_LOG_INTERVAL_MS = 5_000;
/** Default wait before a backup forwards a still-uncommitted client tx to the primary. */
const FORWARD_AFTER_MS = 250;
/** Txs forwarded per sweep at most (the outbound queue bounds them again). */
const FORWARD_TXS_PER_SWEEP_MAX = 4096;
const SLOW_WORK_LOG_MS = 20;
/** Wait before stepping a batch, so events arriving together share one durable write. */
const FLUSH_LINGER_MS = 0;
/** Open long polls (GET ...?wait_ms=) at most; past it a wait answers at once (the client polls). */
export const COMMIT_WAITERS_MAX = 1024;
/** Longest wait a long poll may ask for. */
export const COMMIT_WAIT_MS_MAX = 30_000;
/** Whatever the genesis allows, no single request body above this is read. */
export const REQUEST_BODY_BYTES_CAP = 256 * 1024 * 1024;

export interface ValidatorSettings {
  /** Overrides of the replica configuration (timing, limits); identity comes from genesis. */
  replica?: Partial<ReplicaConfig>;
  mempoolTxsMax?: number;
  /** Largest POST /v1/pbft or /v1/tx body. */
  requestBodyBytesMax?: number;
  /** Messages more than this many heights above the stable checkpoint are refused as far-future. */
  futureHeightsMax?: number;
  /** Forward client txs to the primary when this replica is a backup. */
  forwardToPrimary?: boolean;
  /** A backup forwards a client tx only once it has waited this long uncommitted: PBFT clients
   * send to every validator, so the primary normally has it already (forwarding each tx at once
   * tripled the primary's admission work). */
  forwardAfterMs?: number;
  /** Wait before stepping a batch so events arriving together share one durable write. */
  flushLingerMs?: number;
}

/** Where a replica far behind fetches certified blocks its peers no longer retain. */
export type BlockSource = (
  peer: number,
  height: number,
) => Promise<{ block: Block; certificate: Certificate } | null>;

/** Blocks per ledger-sync round; a round waits for them to commit before the next. */
const SYNC_ROUND_WAIT_MS = 15_000;

export interface ValidatorNodeOptions {
  /** Ledger sync source (default: peers' GET /v1/blocks/:height at their genesis endpoints). */
  blockSource?: BlockSource;
  genesis: Genesis;
  key: LoadedKey;
  store: LedgerStore;
  outbound: Outbound;
  settings?: ValidatorSettings;
  log?: Logger;
  now?: () => number;
}

export type SubmitResult =
  | { ok: true; id: string; duplicate: boolean }
  | { ok: false; status: 400 | 403 | 409 | 503; code: string; message: string };

export type TxStatus =
  | { id: string; status: "committed"; height: number; index: number }
  | { id: string; status: "pending" }
  | { id: string; status: "rejected"; reason: string }
  | { id: string; status: "unknown" };

export function replicaConfigFor(
  ctx: ChainContext,
  self: number,
  overrides: Partial<ReplicaConfig> = {},
): ReplicaConfig {
  const params = ctx.genesis.params;
  const interval = params.checkpoint_interval_blocks;
  const n = ctx.validators.length;
  const window = overrides.watermarkWindowHeights ?? 2 * interval;
  const payloadBytesMax = overrides.payloadBytesMax ?? params.batch.max_block_bytes;
  // A view change carries a prepared certificate (payload + votes) for every height in the window.
  const viewChangeProofBytesMax = VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES * (n + 1) +
    window * (payloadBytesMax + VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES * (n + 1));
  return defaultConfig({
    chainId: ctx.chainId,
    replicaCount: ctx.validators.length,
    self,
    genesisBlockHash: ctx.genesisHash,
    checkpointIntervalHeights: interval,
    watermarkWindowHeights: window,
    retainedCommitsMax: window + interval,
    viewChangeProofBytesMax,
    proposalPipelineDepthMax: Math.min(4, 2 * interval),
    batchSizeMax: params.batch.max_txs_per_block,
    batchTimeoutMs: 2,
    pendingRequestsMax: 50_000,
    requestBytesMax: params.batch.max_tx_bytes,
    clientIdLengthMax: 40,
    clientsTrackedMax: 200_000,
    payloadBytesMax,
    futureMessagesPerPeerMax: 1024,
    // A backup gives the primary time to build and everyone time to check a full block.
    viewChangeTimeoutMs: Math.max(3_000, 4 * params.batch.max_txs_per_block),
    statusIntervalMs: 500,
    transferBatchHeightsMax: 16,
    validationsInFlightMax: 64,
    ...overrides,
  });
}

export class ValidatorNode {
  readonly ctx: ChainContext;
  readonly self: number;
  readonly config: ReplicaConfig;
  readonly limits: WireLimits;
  readonly app: ChainApp;
  readonly #key: LoadedKey;
  readonly #store: LedgerStore;
  readonly #outbound: Outbound;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #publicKeys: Uint8Array[];
  readonly #settings: Required<Omit<ValidatorSettings, "replica">>;
  readonly #replica: Replica;
  readonly #blockSource: BlockSource;
  #syncing = false;
  /** What the protocol log holds: each flush writes only what changed (protocol_log.ts). */
  readonly #persistence = new ProtocolPersistence();

  readonly #inbox: ReplicaEvent[] = [];
  #draining = false;
  /** The running drain (stop waits for its write to finish). */
  #drained: Promise<void> = Promise.resolve();
  #stopped = false;
  #fatal: Error | null = null;
  readonly #timers = new Map<TimerName, ReturnType<typeof setTimeout>>();
  #snapshot: ProtocolSnapshot | null;

  /** Pending client txs by sender:nonce. */
  readonly #mempool = new Map<
    string,
    { tx: Tx; id: string; receivedAtMs: number; forwardedTo: number | null; local: boolean }
  >();
  #forwardTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #txIndex = new Map<string, { height: number; index: number }>();
  readonly #rejectedTxs = new Map<string, string>();
  readonly #rejections: Record<string, number> = {};
  readonly #lastSeenMs: (number | null)[];
  #lastRejectionLogMs = 0;
  /** Pre-prepare arrival time by height, for the commit latency histogram. */
  readonly #proposedAtMs = new Map<number, number>();
  readonly #commitListeners = new Set<(block: Block, certificateHeight: number) => void>();
  /** Long polls waiting for a height to commit here (bounded by COMMIT_WAITERS_MAX). */
  readonly #commitWaiters = new Set<
    { height: number; resolve: (ok: boolean) => void; timer: ReturnType<typeof setTimeout> }
  >();
  readonly commitLatenciesMs: number[] = [];
  committedTxs = 0;
  /** Durable writes (snapshot or block transactions), for tests and benchmarks. */
  durableWrites = 0;

  private constructor(
    options: ValidatorNodeOptions,
    self: number,
    app: ChainApp,
    replica: Replica,
    snapshot: ProtocolSnapshot | null,
    config: ReplicaConfig,
  ) {
    this.ctx = app.ctx;
    this.self = self;
    this.config = config;
    this.app = app;
    this.#key = options.key;
    this.#store = options.store;
    this.#outbound = options.outbound;
    this.#log = options.log ?? logger(`validator ${options.key.id}`);
    this.#now = options.now ?? Date.now;
    this.#publicKeys = this.ctx.validators.map((v) => fromHex(v.public_key));
    this.#settings = {
      mempoolTxsMax: 50_000,
      // Base64 grows bytes by 4/3; a view change is the largest message a correct peer sends.
      requestBodyBytesMax: Math.min(
        REQUEST_BODY_BYTES_CAP,
        Math.ceil(config.viewChangeProofBytesMax * 1.4) + 1024 * 1024,
      ),
      futureHeightsMax: 4 * config.watermarkWindowHeights,
      forwardToPrimary: true,
      forwardAfterMs: FORWARD_AFTER_MS,
      flushLingerMs: FLUSH_LINGER_MS,
      ...options.settings,
    };
    this.limits = wireLimits(config);
    this.#replica = replica;
    this.#blockSource = options.blockSource ?? httpBlockSource(app.ctx);
    this.#snapshot = snapshot;
    this.#lastSeenMs = this.ctx.validators.map(() => null);
  }

  /** Opens a validator over a store: restores the protocol snapshot and the committed chain. */
  static async open(options: ValidatorNodeOptions): Promise<ValidatorNode> {
    const ctx = chainContext(options.genesis);
    const self = ctx.validatorIndex.get(options.key.address);
    if (self === undefined) {
      throw new Error(
        `key ${options.key.id} (${options.key.address}) is not a validator in genesis ${ctx.chainId}`,
      );
    }
    const stored = options.store.context;
    if (!stored || stored.genesisHash !== ctx.genesisHash) {
      throw new Error(
        `the database does not hold genesis ${ctx.genesisHash}; open the store with this genesis`,
      );
    }
    const config = replicaConfigFor(ctx, self, options.settings?.replica);
    const limits = wireLimits(config);
    const committed = await loadCommittedState(options.store, ctx);
    const app = new ChainApp(ctx, committed, options.now);
    const tail = await loadCommittedTail(
      options.store,
      ctx,
      committed.height,
      config.retainedCommitsMax,
    );
    const stateBytes = (await options.store.loadProtocolState()).get(SNAPSHOT_KEY);
    const snapshot = stateBytes
      ? restoreSnapshot(
        stateBytes,
        await options.store.loadProtocolLog(0),
        limits,
        config.clientsTrackedMax,
      )
      : null;
    const replica = createReplica(
      config,
      snapshot || tail.length > 0
        ? { snapshot: snapshot ?? initialSnapshot(ctx), committedTail: tail }
        : undefined,
    );
    // Blocks this replica had prepared before it stopped may be parents of the next proposals.
    for (const certificate of snapshot?.preparedCertificates ?? []) {
      app.rememberPayload(
        certificate.prePrepare.blockHash,
        certificate.prePrepare.payload,
        certificate.prePrepare.height,
      );
    }
    const node = new ValidatorNode(options, self, app, replica, snapshot, config);
    app.knownTx = (key) => node.#mempool.get(key)?.tx;
    node.#log.info("validator ready", {
      index: self,
      height: committed.height,
      view: snapshot?.view ?? 0,
      stable: snapshot?.stable.height ?? 0,
      restored: snapshot !== null,
    });
    return node;
  }

  start(): void {
    this.#enqueue({ type: "start" });
  }

  get fatalError(): Error | null {
    return this.#fatal;
  }

  /** Largest peer request body this node reads. */
  get requestBodyBytesMax(): number {
    return this.#settings.requestBodyBytesMax;
  }

  /** Counts (and logs, rate-limited) a peer message refused before decoding, e.g. oversized. */
  noteRejected(reason: RejectReason, message: string): void {
    this.#reject(reason, message);
  }

  get rejections(): Readonly<Record<string, number>> {
    return this.#rejections;
  }

  onCommit(listener: (block: Block, height: number) => void): () => void {
    this.#commitListeners.add(listener);
    return () => this.#commitListeners.delete(listener);
  }

  /**
   * Resolves true once block `height` is committed and durable here, false after `timeoutMs`
   * (at most COMMIT_WAIT_MS_MAX), when the node stops, or at once when COMMIT_WAITERS_MAX waits
   * are open: the long poll behind `GET /v1/blocks/:height?wait_ms=` and `GET /v1/tx/:id?wait_ms=`.
   */
  waitForHeight(height: number, timeoutMs: number): Promise<boolean> {
    if (this.app.committed.height >= height) return Promise.resolve(true);
    const waitMs = Math.min(Math.max(0, timeoutMs), COMMIT_WAIT_MS_MAX);
    if (waitMs === 0 || this.#stopped || this.#commitWaiters.size >= COMMIT_WAITERS_MAX) {
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const waiter = {
        height,
        resolve,
        timer: setTimeout(() => {
          this.#commitWaiters.delete(waiter);
          resolve(false);
        }, waitMs),
      };
      this.#commitWaiters.add(waiter);
    });
  }

  #wakeCommitWaiters(): void {
    if (this.#commitWaiters.size === 0) return;
    const height = this.app.committed.height;
    for (const waiter of this.#commitWaiters) {
      if (waiter.height > height && !this.#stopped) continue;
      clearTimeout(waiter.timer);
      this.#commitWaiters.delete(waiter);
      waiter.resolve(waiter.height <= height);
    }
  }

  // ------------------------------------------------------------------------------------------
  // inbound: peers

  /** A POST /v1/pbft body: decode, check, verify signatures, then queue for stepping. */
  async receivePeer(
    text: string,
  ): Promise<{ accepted: number; rejected: { reason: RejectReason; message: string }[] }> {
    if (text.length > this.#settings.requestBodyBytesMax) {
      this.#reject("oversized", `body of ${text.length} bytes`);
      return {
        accepted: 0,
        rejected: [{
          reason: "oversized",
          message: `body larger than ${this.#settings.requestBodyBytesMax} bytes`,
        }],
      };
    }
    let messages: ProtocolMessage[];
    try {
      messages = decodeEnvelope(text, this.ctx.chainId, this.limits);
    } catch (error) {
      const reason = error instanceof WireError ? error.reason : "malformed";
      this.#reject(reason, (error as Error).message);
      return { accepted: 0, rejected: [{ reason, message: (error as Error).message }] };
    }
    const rejected: { reason: RejectReason; message: string }[] = [];
    const stableHeight = this.#snapshot?.stable.height ?? 0;
    const heightMax = Math.max(stableHeight, this.app.committed.height) +
      this.#settings.futureHeightsMax;
    const verdicts = await Promise.all(
      messages.map(async (message) => {
        const height = "height" in message ? message.height : message.kind === "status" ? 0 : 0;
        if (height > heightMax) {
          throw new WireError(
            "far_future",
            `${message.kind} at height ${height}, above ${heightMax}`,
          );
        }
        await verifyMessage(message, this.#publicKeys);
      }).map((p) => p.then(() => null, (error) => error as Error)),
    );
    let accepted = 0;
    verdicts.forEach((error, i) => {
      const message = messages[i];
      if (error) {
        const reason = error instanceof WireError ? error.reason : "malformed";
        this.#reject(reason, error.message);
        rejected.push({ reason, message: error.message });
        return;
      }
      if (this.#inbox.length >= INBOX_EVENTS_MAX) {
        this.#reject("overloaded", `inbox holds ${INBOX_EVENTS_MAX} events`);
        rejected.push({ reason: "overloaded", message: "inbox full" });
        return;
      }
      this.#lastSeenMs[message.replica] = this.#now();
      if (message.kind === "status") this.#maybeSync(message.replica, message.lastExecutedHeight);
      if (message.kind === "pre-prepare" && !this.#proposedAtMs.has(message.height)) {
        this.#proposedAtMs.set(message.height, this.#now());
      }
      if (message.kind === "pre-prepare") {
        // The proposer has these requests: never forward them to it.
        for (const id of message.requestIds) {
          const entry = this.#mempool.get(requestKeyOf(id));
          if (entry) entry.forwardedTo = message.replica;
        }
      }
      // Payloads in pre-prepares (also inside view changes) may be parents of later proposals.
      for (const inner of [message, ...embeddedSignedMessages(message)]) {
        if (inner.kind === "pre-prepare") {
          this.app.rememberPayload(inner.blockHash, inner.payload, inner.height);
        }
      }
      accepted++;
      this.#enqueue({ type: "message", from: message.replica, message });
    });
    return { accepted, rejected };
  }

  #reject(reason: RejectReason, message: string): void {
    this.#rejections[reason] = (this.#rejections[reason] ?? 0) + 1;
    const now = this.#now();
    // Rate-limited: a flood of bad messages must not become a flood of log lines.
    if (now - this.#lastRejectionLogMs >= REJECTION_LOG_INTERVAL_MS) {
      this.#lastRejectionLogMs = now;
      this.#log.warn(`rejected peer message: ${reason}: ${message.slice(0, 300)}`, {
        counts: { ...this.#rejections },
      });
    }
  }

  // ------------------------------------------------------------------------------------------
  // ledger sync: a replica further behind than its peers retain for state transfer

  #maybeSync(peer: number, peerHeight: number): void {
    const next = this.app.committed.height + 1;
    // The peer's state transfer serves its last retainedCommitsMax heights; below that, pull.
    if (this.#syncing || this.#stopped || next > peerHeight - this.config.retainedCommitsMax) {
      return;
    }
    this.#syncing = true;
    this.#log.info(
      `ledger sync from ${this.ctx.validators[peer].id}: at ${next - 1}, peer at ${peerHeight}`,
    );
    void this.#syncFrom(peer, peerHeight)
      .catch((error) =>
        this.#log.warn(`ledger sync from peer ${peer} stopped: ${(error as Error).message}`)
      )
      .finally(() => (this.#syncing = false));
  }

  /**
   * Pulls certified blocks from a peer and steps them in as a state-transfer `entries` message:
   * each entry is authenticated by its 2f+1 commit signatures (checked here and by the core),
   * not by the peer that served it, and the core validates each block before it commits.
   */
  async #syncFrom(peer: number, peerHeight: number): Promise<void> {
    const batchMax = this.config.transferBatchHeightsMax;
    while (!this.#stopped) {
      const start = this.app.committed.height + 1;
      if (start > peerHeight - batchMax) return; // close enough: ordinary state transfer
      const entries: CommittedEntry[] = [];
      for (let height = start; height < start + batchMax && height <= peerHeight; height++) {
        const got = await this.#blockSource(peer, height);
        if (!got) break;
        const hash = blockHash(got.block);
        await verifyCertificate(this.ctx, got.certificate, {
          height,
          blockHash: hash,
          headerView: got.block.header.view,
        });
        entries.push(ledgerEntry(this.ctx, hash, got.block, got.certificate));
      }
      if (entries.length === 0) return;
      this.#enqueue({
        type: "message",
        from: peer,
        message: {
          kind: "entries",
          chainId: this.ctx.chainId,
          replica: peer,
          signature: "",
          entries,
        },
      });
      const last = entries[entries.length - 1].height;
      const deadline = this.#now() + SYNC_ROUND_WAIT_MS;
      while (this.app.committed.height < last && this.#now() < deadline && !this.#stopped) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (this.app.committed.height < last) throw new Error(`blocks up to ${last} did not commit`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // inbound: clients

  /**
   * A transaction from a client (or forwarded by a peer). Verified before it is queued.
   * `own`: this validator made it (a round_result): no client sent it to the other validators, so
   * a backup forwards it to the primary at once instead of after forwardAfterMs.
   */
  async submitTx(
    value: unknown,
    options: { forwarded?: boolean; own?: boolean } = {},
  ): Promise<SubmitResult> {
    return (await this.submitTxs([value], options))[0];
  }

  /**
   * Transactions from a client (or forwarded by a peer): shapes and nonces checked, signatures
   * verified concurrently, then admitted in the given order, so one sender's nonces keep their
   * order in the mempool and in blocks.
   */
  async submitTxs(
    values: readonly unknown[],
    options: { forwarded?: boolean; own?: boolean } = {},
  ): Promise<SubmitResult[]> {
    const checked = values.map((value) =>
      options.forwarded
        ? this.#forwardedKnown(value) ?? this.#precheck(value)
        : this.#precheck(value)
    );
    const verdicts = await Promise.all(checked.map(async (c) => {
      if ("ok" in c) return c;
      try {
        await verifyTxAuth(this.ctx, c.tx);
        return null;
      } catch (error) {
        if (!(error instanceof LedgerError)) throw error;
        const status = error.code === "unauthorized" || error.code === "unknown_sender" ? 403 : 400;
        return {
          ok: false as const,
          status: status as 400 | 403,
          code: error.code,
          message: error.message,
        };
      }
    }));
    const requests: ClientRequest[] = [];
    const results = checked.map((c, i): SubmitResult => {
      const verdict = verdicts[i];
      if (verdict) return verdict;
      const { tx, id, key } = c as { tx: Tx; id: string; key: string };
      const pending = this.#mempool.get(key);
      if (pending) {
        return pending.id === id
          ? { ok: true, id, duplicate: true }
          : this.#conflict(pending.id, tx);
      }
      if (this.#mempool.size >= this.#settings.mempoolTxsMax) {
        return {
          ok: false,
          status: 503,
          code: "mempool_full",
          message: `mempool holds ${this.#settings.mempoolTxsMax} txs; retry later`,
        };
      }
      this.#mempool.set(key, {
        tx,
        id,
        receivedAtMs: this.#now(),
        forwardedTo: null,
        local: !options.forwarded,
      });
      requests.push({ clientId: tx.from, nonce: tx.nonce, body: encodeTx(tx) });
      return { ok: true, id, duplicate: false };
    });
    // One step for the whole request: the primary decides on a batch once, not per tx.
    if (requests.length > 0) this.#enqueue({ type: "client-requests", requests });
    if (requests.length > 0 && !options.forwarded && this.#settings.forwardToPrimary) {
      if (options.own) this.#forwardOwn(requests);
      this.#armForward();
    }
    return results;
  }

  /** This validator's own txs go to the primary now (it is their only sender). */
  #forwardOwn(requests: readonly ClientRequest[]): void {
    const primary = this.#replica.inspect().view % this.ctx.validators.length;
    const forward: Tx[] = [];
    for (const request of requests) {
      const entry = this.#mempool.get(requestKeyOf(request));
      if (!entry || entry.forwardedTo === primary) continue;
      entry.forwardedTo = primary;
      if (primary !== this.self) forward.push(entry.tx);
    }
    if (forward.length > 0) this.#outbound.forwardTxs(primary, forward);
  }

  #armForward(): void {
    if (this.#forwardTimer || this.#stopped) return;
    this.#forwardTimer = setTimeout(() => {
      this.#forwardTimer = null;
      this.#forwardWaiting();
    }, this.#settings.forwardAfterMs);
  }

  /**
   * Forwards client txs this backup received that are still uncommitted after forwardAfterMs to
   * the current primary, once per primary (again after a view change), oldest first.
   */
  #forwardWaiting(): void {
    if (this.#stopped) return;
    const primary = this.#replica.inspect().view % this.ctx.validators.length;
    const cutoff = this.#now() - this.#settings.forwardAfterMs;
    const forward: Tx[] = [];
    let waiting = false;
    for (const entry of this.#mempool.values()) {
      if (!entry.local) continue;
      // Still uncommitted: come back later (a view change may need it forwarded again).
      waiting = true;
      if (entry.forwardedTo === primary) continue;
      if (entry.receivedAtMs > cutoff || forward.length >= FORWARD_TXS_PER_SWEEP_MAX) break;
      entry.forwardedTo = primary;
      if (primary !== this.self) forward.push(entry.tx);
    }
    if (forward.length > 0) this.#outbound.forwardTxs(primary, forward);
    if (waiting) this.#armForward();
  }

  /** The checks before the signature: shape, duplicate, conflict, replay. */
  /**
   * A tx a peer forwarded that this replica already holds (same sender and nonce pending) or
   * whose nonce is already committed: answered without encoding, hashing or verifying it again.
   * The peer learns nothing it relies on from the answer (forwarding is fire-and-forget).
   */
  #forwardedKnown(value: unknown): SubmitResult | null {
    if (value === null || typeof value !== "object") return null;
    const { from, nonce } = value as { from?: unknown; nonce?: unknown };
    if (typeof from !== "string" || !Number.isSafeInteger(nonce)) return null;
    const pending = this.#mempool.get(requestKeyOf({ clientId: from, nonce: nonce as number }));
    if (pending) return { ok: true, id: pending.id, duplicate: true };
    if ((nonce as number) <= this.app.committedNonce(from)) {
      return { ok: false, status: 409, code: "replay", message: `nonce ${nonce} is committed` };
    }
    return null;
  }

  #precheck(value: unknown): SubmitResult | { tx: Tx; id: string; key: string } {
    let tx: Tx;
    try {
      tx = sealTx(value, this.ctx.genesis.params.batch.max_tx_bytes);
    } catch (error) {
      return { ok: false, status: 400, code: "malformed", message: (error as Error).message };
    }
    const id = txHash(tx);
    const key = requestKeyOf({ clientId: tx.from, nonce: tx.nonce });
    const pending = this.#mempool.get(key);
    if (pending) {
      return pending.id === id ? { ok: true, id, duplicate: true } : this.#conflict(pending.id, tx);
    }
    if (this.#txIndex.has(id)) return { ok: true, id, duplicate: true };
    const last = this.app.committedNonce(tx.from);
    if (tx.nonce <= last) {
      return {
        ok: false,
        status: 409,
        code: "replay",
        message: `nonce ${tx.nonce} is not above ${last}, the sender's last committed nonce`,
      };
    }
    return { tx, id, key };
  }

  #conflict(pendingId: string, tx: Tx): SubmitResult {
    return {
      ok: false,
      status: 409,
      code: "conflict",
      message: `another tx (${pendingId}) with nonce ${tx.nonce} from ${tx.from} is pending`,
    };
  }

  async txStatus(id: string): Promise<TxStatus> {
    const indexed = this.#txIndex.get(id);
    if (indexed) return { id, status: "committed", ...indexed };
    const rejected = this.#rejectedTxs.get(id);
    if (rejected) return { id, status: "rejected", reason: rejected };
    for (const entry of this.#mempool.values()) {
      if (entry.id === id) return { id, status: "pending" };
    }
    const rows = await this.#store.execute("SELECT height, idx FROM transactions WHERE hash = ?", [
      id,
    ]) as {
      rows: ArrayLike<ArrayLike<unknown>>;
    };
    const row = rows.rows[0];
    if (row) return { id, status: "committed", height: Number(row[0]), index: Number(row[1]) };
    return { id, status: "unknown" };
  }

  // ------------------------------------------------------------------------------------------
  // the step loop

  #enqueue(event: ReplicaEvent): void {
    if (this.#stopped) return;
    this.#inbox.push(event);
    if (!this.#draining) {
      this.#draining = true;
      // A macrotask, not a microtask: the other requests and timers already due get to add their
      // events first, so one durable write (one fsync) covers all of them (group commit).
      this.#drained = new Promise((resolve) =>
        this.#later(() => void this.#drain().finally(resolve))
      );
    }
  }

  /**
   * After the I/O already due (setImmediate: no 1 ms timer clamp, no sleep), or after the
   * linger when one is set: requests and messages that arrived together share one step batch.
   */
  #later(callback: () => void): void {
    if (this.#settings.flushLingerMs > 0) setTimeout(callback, this.#settings.flushLingerMs);
    else setImmediate(callback);
  }

  async #drain(): Promise<void> {
    try {
      while (this.#inbox.length > 0 && !this.#stopped) {
        const events = this.#inbox.splice(0, STEPS_PER_FLUSH_MAX);
        const outputs: Output[] = [];
        for (const event of events) {
          const output = this.#replica.step(event);
          outputs.push(output);
          this.#applyTimers(output);
        }
        await this.#flush(outputs);
        // Let requests that arrived during the write enqueue before the next batch.
        if (this.#inbox.length < STEPS_PER_FLUSH_MAX) {
          await new Promise<void>((resolve) => this.#later(resolve));
        }
      }
    } catch (error) {
      this.#fail(error as Error);
    } finally {
      this.#draining = false;
    }
  }

  #fail(error: Error): void {
    // Storage or invariant failure: stop rather than run on with state we cannot trust.
    this.#fatal = error;
    this.#log.error(`validator stopped: ${error.message}`, { stack: error.stack });
    void this.stop();
  }

  /** Debug log of work that took long: where a slow block spends its time. */
  #slow(what: string, startMs: number): void {
    const ms = performance.now() - startMs;
    if (ms >= SLOW_WORK_LOG_MS) this.#log.debug(`${what} took ${ms.toFixed(0)} ms`);
  }

  async #flush(outputs: Output[]): Promise<void> {
    // 1. Durable: the committed blocks (each checked again by the store) and the newest snapshot
    //    with its log entries, in ONE transaction (one fsync per flush).
    let snapshot: ProtocolSnapshot | null = null;
    const committed: {
      commit: CommitOutput;
      block: Block;
      certificate: Certificate;
      state: BlockState;
    }[] = [];
    const t0 = performance.now();
    for (const output of outputs) {
      for (const commit of output.commits) {
        // Each block must extend the one before it in this write (or the committed tip).
        const parent = committed.at(-1)?.state ?? this.app.committed;
        committed.push({ commit, ...await this.app.committedBlock(commit, parent) });
      }
      if (output.persist) snapshot = output.persist;
      for (const line of output.logs) this.#log.info(line);
      for (const rejection of output.rejections) {
        this.#log.debug(
          `replica rejected ${rejection.what}${
            rejection.from === undefined ? "" : ` from ${rejection.from}`
          }: ${rejection.reason}`,
        );
      }
    }
    let protocol: ProtocolBatch | undefined;
    let written: (() => void) | null = null;
    if (snapshot) {
      // Only what changed since the last flush is written (protocol_log.ts).
      const fresh = outputs.flatMap((output) =>
        output.commits.flatMap((commit) => commit.freshRequestIds)
      );
      ({ batch: protocol, written } = this.#persistence.batch(snapshot, fresh));
    }
    if (committed.length > 0 || protocol) {
      this.durableWrites++;
      const results = await this.#store.appendCommittedBlocks(
        committed.map(({ block, certificate }) => ({ block, certificate })),
        protocol,
      );
      this.#slow(
        `durable write (${committed.length} blocks, ${
          committed.reduce((n, c) => n + c.block.txs.length, 0)
        } txs, snapshot ${protocol ? "yes" : "no"})`,
        t0,
      );
      committed.forEach((c, i) => {
        this.app.advance(c.state);
        this.#afterCommit(c.commit, c.block, results[i].appended);
      });
      this.#wakeCommitWaiters();
    }
    if (snapshot) {
      written!();
      this.#snapshot = snapshot;
    }
    // 2. Only now may this flush's messages leave. Unsigned ones are this replica's: sign them.
    const sends = outputs.flatMap((output) => output.messages);
    const signed = await Promise.all(
      sends.map(({ message }) =>
        message.signature === "" && message.replica === this.self
          ? signMessage(this.#key.privateKey, message)
          : message
      ),
    );
    sends.forEach(({ to }, i) => {
      const message = signed[i];
      if (to === "all") {
        for (let peer = 0; peer < this.ctx.validators.length; peer++) {
          if (peer !== this.self) this.#outbound.sendMessage(peer, message);
        }
        this.#enqueue({ type: "message", from: this.self, message });
      } else if (to !== this.self) {
        this.#outbound.sendMessage(to, message);
      }
    });
    // 3. Application work; answers come back as events.
    for (const output of outputs) {
      for (const effect of output.application) void this.#runApplication(effect);
    }
  }

  #applyTimers(output: Output): void {
    for (const timer of output.timers) {
      const existing = this.#timers.get(timer.timer);
      if (existing) clearTimeout(existing);
      this.#timers.delete(timer.timer);
      if (timer.type === "set") {
        this.#timers.set(
          timer.timer,
          setTimeout(() => {
            this.#timers.delete(timer.timer);
            this.#enqueue({
              type: "timer-fired",
              timer: timer.timer,
              generation: timer.generation,
            });
          }, timer.durationMs),
        );
      }
    }
  }

  async #runApplication(effect: Output["application"][number]): Promise<void> {
    try {
      if (effect.type === "propose") {
        const t0 = performance.now();
        const result = await this.app.propose(effect, (key) => this.#mempool.get(key)?.tx);
        this.#slow(`proposal of block ${effect.height}`, t0);
        for (const { id, reason } of result.dropped) {
          const pending = this.#mempool.get(requestKeyOf(id));
          if (pending) this.#noteRejected(pending.id, reason);
        }
        this.#proposedAtMs.set(effect.height, this.#now());
        this.#enqueue({
          type: "proposal-built",
          height: effect.height,
          view: effect.view,
          payload: result.payload,
          blockHash: result.blockHash,
        });
      } else {
        const t0 = performance.now();
        const verdict = await this.app.validate(effect);
        this.#slow(`validation of block ${effect.height}`, t0);
        if (!verdict.ok) {
          this.#log.warn(
            `refused ${effect.purpose} block ${effect.height} (view ${effect.view}): ${verdict.reason}`,
          );
        }
        this.#enqueue({
          type: "proposal-validated",
          validationId: effect.validationId,
          height: effect.height,
          view: effect.view,
          blockHash: effect.blockHash,
          ok: verdict.ok,
        });
      }
    } catch (error) {
      // No answer to a propose leaves the slot to the view-change timer, which is the recovery.
      this.#log.error(
        `application ${effect.type} at ${effect.height} failed: ${(error as Error).message}`,
      );
      if (effect.type === "validate") {
        this.#enqueue({
          type: "proposal-validated",
          validationId: effect.validationId,
          height: effect.height,
          view: effect.view,
          blockHash: effect.blockHash,
          ok: false,
        });
      }
    }
  }

  #noteRejected(id: string, reason: string): void {
    if (this.#rejectedTxs.size >= REJECTED_TX_MAX) {
      this.#rejectedTxs.delete(this.#rejectedTxs.keys().next().value!);
    }
    this.#rejectedTxs.set(id, reason.slice(0, 300));
  }

  /** Bookkeeping once a committed block is durable: latency, tx index, mempool, listeners. */
  #afterCommit(commit: CommitOutput, block: Block, appended: boolean): void {
    const now = this.#now();
    const proposedAt = this.#proposedAtMs.get(commit.height);
    if (proposedAt !== undefined && appended) {
      if (this.commitLatenciesMs.length >= 100_000) this.commitLatenciesMs.splice(0, 50_000);
      this.commitLatenciesMs.push(now - proposedAt);
    }
    for (const height of this.#proposedAtMs.keys()) {
      if (height <= commit.height) this.#proposedAtMs.delete(height);
    }
    block.txs.forEach((tx, index) => {
      const id = txHash(tx);
      if (this.#txIndex.size >= TX_INDEX_MAX) {
        this.#txIndex.delete(this.#txIndex.keys().next().value!);
      }
      this.#txIndex.set(id, { height: commit.height, index });
      this.#mempool.delete(requestKeyOf({ clientId: tx.from, nonce: tx.nonce }));
    });
    // Requests ordered but left out of the block (rule violations) are done too.
    for (const id of commit.requestIds) {
      const key = requestKeyOf(id);
      const pending = this.#mempool.get(key);
      if (pending) {
        if (!this.#txIndex.has(pending.id)) {
          this.#noteRejected(
            pending.id,
            this.#rejectedTxs.get(pending.id) ?? "ordered but left out of the block",
          );
        }
        this.#mempool.delete(key);
      }
    }
    this.committedTxs += block.txs.length;
    for (const listener of this.#commitListeners) listener(block, commit.height);
  }

  // ------------------------------------------------------------------------------------------
  // status

  status() {
    const inspection = this.#replica.inspect();
    const snapshot = this.#snapshot;
    const primary = chainPrimaryOf(this.ctx, inspection.view);
    return {
      chain_id: this.ctx.chainId,
      genesis_hash: this.ctx.genesisHash,
      node: { id: this.#key.id, index: this.self, address: this.#key.address },
      view: inspection.view,
      view_active: inspection.viewActive,
      is_primary: inspection.isPrimary,
      primary: { id: primary.id, index: inspection.view % this.ctx.validators.length },
      height: this.app.committed.height,
      last_block_hash: this.app.committed.hash,
      last_stable_checkpoint: {
        height: inspection.stableHeight,
        block_hash: snapshot?.stable.height === inspection.stableHeight
          ? snapshot.stable.blockHash
          : null,
      },
      mempool_txs: this.#mempool.size,
      pending_requests: inspection.pendingRequests,
      inbox_events: this.#inbox.length,
      committed_txs: this.committedTxs,
      durable_writes: this.durableWrites,
      peers: this.ctx.validators.map((v, index) => ({
        id: v.id,
        index,
        endpoint: v.endpoint ?? null,
        self: index === this.self,
        last_seen_ms: index === this.self ? this.#now() : this.#lastSeenMs[index],
      })),
      rejected_messages: { ...this.#rejections },
      dropped_outbound: { ...this.#outbound.dropped },
      commit_latency_ms: latencySummary(this.commitLatenciesMs.slice(-1000)),
      fatal_error: this.#fatal?.message ?? null,
    };
  }

  /** Stops stepping and timers; the store stays open (its owner closes it). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#forwardTimer) clearTimeout(this.#forwardTimer);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#wakeCommitWaiters();
    this.#inbox.length = 0;
    // A write in progress completes (the store stays consistent for its owner).
    await this.#drained;
    await this.#outbound.close();
  }
}

/** Pre-prepare (or proposal) to commit on this replica, over the last samples. */
function latencySummary(
  samples: number[],
): { samples: number; p50: number | null; p99: number | null } {
  if (samples.length === 0) return { samples: 0, p50: null, p99: null };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { samples: sorted.length, p50: at(0.5), p99: at(0.99) };
}

export function wireLimits(config: ReplicaConfig): WireLimits {
  return {
    replicaCount: config.replicaCount,
    payloadBytesMax: config.payloadBytesMax,
    batchSizeMax: config.batchSizeMax,
    clientIdLengthMax: config.clientIdLengthMax,
    envelopeMessagesMax: 1024,
    listItemsMax: Math.max(config.watermarkWindowHeights * 2, config.transferBatchHeightsMax),
  };
}

function initialSnapshot(ctx: ChainContext): ProtocolSnapshot {
  return {
    view: 0,
    viewActive: true,
    stable: { height: 0, blockHash: ctx.genesisHash, proof: [] },
    preparedCertificates: [],
    votes: [],
    newView: null,
    lastNonceByClient: [],
  };
}

/**
 * Chain state after the last stored block, read back from the database (each header re-hashed by
 * the store). Nonces and rounds come from the transactions' index columns.
 */
export async function loadCommittedState(
  store: LedgerStore,
  ctx: ChainContext,
): Promise<BlockState> {
  const chain: ChainState = await store.chainState();
  if (chain.height === 0) {
    return {
      height: 0,
      hash: ctx.genesisHash,
      stateRoot: ctx.genesisHash,
      timeMs: ctx.genesis.genesis_time_ms,
      chain,
      block: null,
    };
  }
  // Read back through the store's checks (header re-hashed, txs and Merkle root).
  const block = await store.getBlock(chain.height);
  if (!block) throw new Error(`block ${chain.height} is missing from the database`);
  return {
    height: chain.height,
    hash: chain.lastHash,
    stateRoot: block.header.state_root,
    timeMs: block.header.time_ms,
    chain,
    block: null,
  };
}

/** The last `count` committed blocks as PBFT entries (certificates turned back into commits). */
export async function loadCommittedTail(
  store: LedgerStore,
  ctx: ChainContext,
  height: number,
  count: number,
): Promise<CommittedEntry[]> {
  if (height === 0) return [];
  const entries: CommittedEntry[] = [];
  for await (const committed of store.readCommitted(Math.max(1, height - count + 1), height)) {
    if (!committed.certificate) {
      throw new Error(`block ${committed.height} has no certificate in the database`);
    }
    entries.push(ledgerEntry(ctx, committed.hash, committed.block, committed.certificate));
  }
  return entries;
}

/** A ledger block and certificate as a PBFT committed entry (certificate → commit messages). */
export function ledgerEntry(
  ctx: ChainContext,
  hash: string,
  block: Block,
  certificate: Certificate,
): CommittedEntry {
  return {
    height: block.header.height,
    view: certificate.view,
    blockHash: hash,
    payload: encodeBlock(block),
    requestIds: block.txs.map((tx) => ({ clientId: tx.from, nonce: tx.nonce })),
    certificate: certificate.signatures.map((s) => ({
      kind: "commit" as const,
      chainId: ctx.chainId,
      view: certificate.view,
      height: block.header.height,
      blockHash: hash,
      replica: ctx.validatorIndex.get(s.validator)!,
      signature: s.sig,
    })),
  };
}

/** Fetches a committed block and its certificate from a peer's `GET /v1/blocks/:height`. */
export function httpBlockSource(ctx: ChainContext, timeoutMs = 5_000): BlockSource {
  const bytesMax = 2 * ctx.genesis.params.batch.max_block_bytes + LIMITS.certificate_bytes_max;
  return async (peer, height) => {
    const endpoint = ctx.validators[peer]?.endpoint;
    if (!endpoint) return null;
    const response = await fetch(`${endpoint}/v1/blocks/${height}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    const text = await response.text();
    if (text.length > bytesMax) {
      throw new Error(`block ${height} from peer ${peer}: over ${bytesMax} bytes`);
    }
    const answer = JSON.parse(text) as { block: unknown; certificate: unknown };
    const block = validateBlockShape(answer.block, {
      maxTxs: ctx.genesis.params.batch.max_txs_per_block,
      maxTxBytes: ctx.genesis.params.batch.max_tx_bytes,
    });
    return { block, certificate: answer.certificate as Certificate };
  };
}
