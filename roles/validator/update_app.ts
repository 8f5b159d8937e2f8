// Update consensus inside the validator: the shell around ledger/app's UpdateLedger.
//
//   committed round_open    -> openRound(round, global weights from the blob store)
//   committed model_update  -> submitUpdate(tx, blob bytes)       (admission, in ledger order)
//   committed round_close   -> evaluate (optional ML), build this validator's RoundRecord and
//                              submit it as a signed `round_result` tx (every validator does; the
//                              first one ordered that the others accept is committed, the rest
//                              break the chain's once-per-round rule and are left out)
//   block with round_result -> backups vote only if verify(record, own evaluation) is ok
//   committed round_result  -> commit(record): reputation, credits, quarantine; the aggregate
//                              goes into the blob store, so GET /v1/blobs/<hash> serves it
//
// Also a block rule: a round_open must name the global model the last round_result produced (the
// genesis initial model for round 1) and its blob must be here, and a round may open only after
// the previous one has its result. After a restart the state is rebuilt by replaying committed
// blocks from the store. Decisions are a pure function of ledger order, blob bytes and the
// (tolerance-checked) evaluation numbers, so every honest validator reaches the same state.
import { decodeWeights, encodeWeights, modelHash } from "../../ledger/app/blob.ts";
import { type Genesis as AppGenesis, paramsWith } from "../../ledger/app/params.ts";
import type { RoundRecord, UpdateTx } from "../../ledger/app/record.ts";
import { type Admission, UpdateLedger } from "../../ledger/app/round.ts";
import type { RoundEvaluation } from "../../ledger/app/scoring.ts";
import type { AppState, DeviceState } from "../../ledger/app/state.ts";
import { reputationMicro } from "../../ledger/app/state.ts";
import type { ChainContext } from "../../ledger/chain/genesis.ts";
import { encodeTx, signTx } from "../../ledger/chain/tx.ts";
import type {
  Block,
  ModelUpdateBody,
  RoundCloseBody,
  RoundOpenBody,
  RoundResultBody,
  Tx,
} from "../../ledger/chain/types.ts";
import type { CanonicalValue } from "../../ledger/chain/canonical.ts";
import { sha256HexAsync } from "../../ledger/crypto/sha256.ts";
import type { LoadedKey } from "../../ledger/crypto/keyfile.ts";
import type { LedgerStore } from "../../ledger/store/store.ts";
import { type Logger, logger } from "../../util/log.ts";
import type { BlockState, Verdict } from "./chain_app.ts";
import type { ValidatorNode } from "./node.ts";

/** Scores one device-side weight vector on the validators' validation sample. `edgeWeights` is
 * the round's edge-side global (named in round_open `meta.edge_model_sha256`), or null. Throwing
 * means "cannot evaluate": the round then runs without evaluation on this validator. */
export type UpdateEvaluator = (
  deviceWeights: Float32Array,
  context: { round: number; edgeWeights: Float32Array | null },
) => Promise<{ loss: number; accuracy: number }>;

export interface UpdateAppOptions {
  ctx: ChainContext;
  store: LedgerStore;
  /** This validator's key: signs its round_result txs. */
  key: LoadedKey;
  /** Hands a signed tx to the local node (ValidatorNode.submitTx). */
  submit: (tx: Tx) => Promise<unknown>;
  /** Last committed nonce of this validator's address (ChainApp.committedNonce). */
  committedNonce: () => number;
  evaluate?: UpdateEvaluator;
  /** Blobs missing locally are fetched from peers (bytes hash-checked, then stored). */
  fetchBlob?: (sha256: string) => Promise<Uint8Array | null>;
  log?: Logger;
  /** A round_result not committed this long after submission is submitted again. */
  resultRetryMs?: number;
  /** Whether this validator is the primary now. Without it every validator submits at once. */
  isPrimary?: () => boolean;
  /** A backup submits its round_result only if none committed this long after its evaluation:
   * the primary's is normally first, and every duplicate would be ordered and dropped, leaving an
   * empty block between round_result and the next round_open. */
  backupResultDelayMs?: number;
  /** A block check waits at most this long for the app to have applied the block's parent. */
  catchUpWaitMs?: number;
}

/** Round records kept in memory for the API (the ledger keeps them all). */
const RECORDS_KEPT_MAX = 256;
const RESULT_ATTEMPTS_MAX = 10;
const LOG_LINES_PER_ROUND_MAX = 64;
/** Admin status changes waiting for a round result (or the first round); far above any need. */
const PENDING_ADMIN_MAX = 1024;
/** Updates evaluated ahead of round_close per round; the rest are evaluated at close. */
const EARLY_EVALUATIONS_MAX = 1024;

export interface CommittedRound {
  round: number;
  height: number;
  /** Time of the block that committed it. */
  timeMs: number;
  record: RoundRecord;
}

export interface DeviceSummary {
  id: string;
  status: DeviceState["status"];
  reputationMicro: number;
  credits: number;
  acceptedCount: number;
  rejectedCount: number;
  lastSeenRound: number | null;
}

export class UpdateApp {
  readonly ctx: ChainContext;
  readonly #options: UpdateAppOptions;
  readonly #log: Logger;
  #ledger: UpdateLedger | null = null;
  #processedHeight = 0;
  /** Round closed on the chain whose result is not committed yet. */
  #closedRound: number | null = null;
  /** Admin status changes committed while a round awaits its result (applied after it). */
  readonly #pendingAdmin: { type: "quarantine" | "readmit"; deviceId: string }[] = [];
  #edgeModelHash: string | null = null;
  readonly #evaluations = new Map<number, Promise<RoundEvaluation | null>>();
  /** Evaluations started as each update is admitted (live only), by weights hash: while the
   * devices still train, so that at round_close the scores are mostly ready. Open round only. */
  readonly #earlyEvaluations = new Map<string, Promise<{ loss: number; accuracy: number }>>();
  /** Early evaluations run one at a time, each after the event loop had its turn (PBFT first). */
  #earlyChain: Promise<unknown> = Promise.resolve();
  #edgeWeights: { hash: string; weights: Float32Array } | null = null;
  readonly #records: CommittedRound[] = [];
  #queue: Promise<void> = Promise.resolve();
  readonly #waiters = new Set<{ height: number; resolve: () => void }>();
  #live = false;
  #stopped = false;
  #lastNonce = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #fatal: Error | null = null;
  #logLines = 0;

  constructor(options: UpdateAppOptions) {
    this.ctx = options.ctx;
    this.#options = options;
    this.#log = options.log ?? logger(`validator ${options.key.id} updates`);
  }

  /**
   * Rebuilds the state from the committed blocks in the store, hooks the block check into the
   * node's ChainApp and follows its commits. Call before `node.start()`.
   */
  static async attach(
    node: ValidatorNode,
    options: Omit<UpdateAppOptions, "ctx" | "submit" | "committedNonce">,
  ): Promise<UpdateApp> {
    const app = new UpdateApp({
      ...options,
      ctx: node.ctx,
      // Only this validator sends its round_result: straight on to the primary, no 250 ms wait.
      submit: (tx) => node.submitTx(tx, { own: true }),
      isPrimary: () => node.status().is_primary,
      committedNonce: () => node.app.committedNonce(options.key.address),
    });
    await app.restore();
    node.app.blockCheck = (block, parent) => app.check(block, parent);
    node.onCommit((block) => app.enqueue(block));
    return app;
  }

  get fatalError(): Error | null {
    return this.#fatal;
  }

  get processedHeight(): number {
    return this.#processedHeight;
  }

  /** The application state (null before the first round_open). */
  get state(): AppState | null {
    return this.#ledger?.state ?? null;
  }

  stateRoot(): string | null {
    return this.#ledger?.stateRoot() ?? null;
  }

  get openRound(): number | null {
    return this.#ledger?.openRoundNumber ?? null;
  }

  /** Committed round records, oldest first (the last RECORDS_KEPT_MAX). */
  get rounds(): readonly CommittedRound[] {
    return this.#records;
  }

  /** Per device: status, reputation (micro-units), credits, counts. Genesis devices only. */
  devices(): DeviceSummary[] {
    const state = this.#ledger?.state;
    if (!state) {
      return [...this.#deviceIds()].sort().map((id) => ({
        id,
        status: "active" as const,
        reputationMicro: 500_000,
        credits: 0,
        acceptedCount: 0,
        rejectedCount: 0,
        lastSeenRound: null,
      }));
    }
    return Object.entries(state.devices).sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, d]) => ({
      id,
      status: d.status,
      reputationMicro: reputationMicro(d.alphaMicro, d.betaMicro),
      credits: d.credits,
      acceptedCount: d.acceptedCount,
      rejectedCount: d.rejectedCount,
      lastSeenRound: d.lastSeenRound,
    }));
  }

  /** Replays every committed block in the store (no txs are submitted while replaying). */
  async restore(): Promise<void> {
    const height = await this.#options.store.height();
    if (height > 0) {
      for await (const c of this.#options.store.readCommitted(1, height)) {
        await this.#apply(c.block, c.height);
      }
    }
    this.#live = true;
    this.#log.info("update consensus ready", {
      height,
      lastClosedRound: this.#ledger?.state.lastClosedRound ?? 0,
      openRound: this.openRound,
      stateRoot: this.stateRoot(),
    });
    // A round closed before the restart still needs its result.
    if (this.#closedRound !== null) this.#scheduleResult(this.#closedRound, 0);
  }

  /** Follows a committed block (called in commit order by the node). */
  enqueue(block: Block): void {
    const height = block.header.height;
    this.#queue = this.#queue.then(async () => {
      if (this.#fatal || this.#stopped || height <= this.#processedHeight) return;
      try {
        await this.#apply(block, height);
      } catch (error) {
        // The certified ledger could not be applied: the local blobs or state are wrong. Stop
        // following rather than serve a state the other validators do not have.
        this.#fatal = error as Error;
        this.#log.error(`update consensus stopped at block ${height}: ${(error as Error).message}`);
      }
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    for (const w of this.#waiters) w.resolve();
    this.#waiters.clear();
  }

  /** Waits until every committed block is applied (tests, shutdown). */
  async idle(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.#queue;
      await seen;
    } while (seen !== this.#queue);
  }

  // ------------------------------------------------------------------------------------------
  // block rule (ChainApp.blockCheck): proposals and transferred blocks

  async check(block: Block, parent: BlockState): Promise<Verdict> {
    const relevant = block.txs.some((tx) => tx.type === "round_open" || tx.type === "round_result");
    if (!relevant) return { ok: true };
    if (this.#fatal) {
      return { ok: false, reason: `update consensus stopped: ${this.#fatal.message}` };
    }
    if (!(await this.#caughtUp(parent.height))) {
      return {
        ok: false,
        reason: `update consensus has applied block ${this.#processedHeight}, ` +
          `not yet the parent ${parent.height}`,
      };
    }
    // Already committed here (a late transfer): the chain level decides.
    if (this.#processedHeight > parent.height) return { ok: true };
    let resulted = parent.chain.roundResulted;
    let closed = parent.chain.roundClosed;
    let global = this.#ledger?.state.globalModelHash ??
      this.ctx.genesis.params.initial_model_sha256 ?? null;
    for (const [i, tx] of block.txs.entries()) {
      if (tx.type === "round_close") {
        closed = (tx.body as RoundCloseBody).round;
      } else if (tx.type === "round_open") {
        const body = tx.body as RoundOpenBody;
        if (resulted < closed) {
          return {
            ok: false,
            reason: `txs[${i}]: round_open ${body.round} before the result of round ${closed}`,
          };
        }
        const named = body.global_model_sha256 ?? global;
        if (named === null) {
          return {
            ok: false,
            reason: `txs[${i}]: round_open names no global model and genesis has none`,
          };
        }
        if (global !== null && named !== global) {
          return {
            ok: false,
            reason: `txs[${i}]: round_open names model ${named}, the ledger's global is ${global}`,
          };
        }
        const bytes = await this.#blob(named);
        if (!bytes || bytes.length % 4 !== 0 || bytes.length === 0) {
          return { ok: false, reason: `txs[${i}]: global model blob ${named} is not available` };
        }
        const count = this.#parameterCount(bytes.length / 4);
        if (bytes.length !== count * 4) {
          return {
            ok: false,
            reason: `txs[${i}]: global model has ${bytes.length / 4} parameters, expected ${count}`,
          };
        }
        global = named;
      } else if (tx.type === "round_result") {
        const body = tx.body as RoundResultBody;
        if (this.#closedRound !== body.round || !this.#ledger) {
          return {
            ok: false,
            reason: `txs[${i}]: round_result ${body.round} before round_close of that round was ` +
              `committed (closed here: ${this.#closedRound ?? "none"})`,
          };
        }
        const record = body.record as unknown as RoundRecord;
        const own = await this.#evaluation(body.round);
        const verdict = this.#ledger.verify(record, own);
        if (!verdict.ok) return { ok: false, reason: `txs[${i}]: ${verdict.reason}` };
        const aggregate = record.aggregation.modelHash;
        if (body.global_model_sha256 !== undefined && body.global_model_sha256 !== aggregate) {
          return {
            ok: false,
            reason: `txs[${i}]: global_model_sha256 differs from the record's aggregate`,
          };
        }
        resulted = body.round;
        global = aggregate;
      }
    }
    return { ok: true };
  }

  async #caughtUp(height: number): Promise<boolean> {
    if (this.#processedHeight >= height) return true;
    const waitMs = this.#options.catchUpWaitMs ?? 20_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waiter = { height, resolve: () => {} };
    await new Promise<void>((resolve) => {
      waiter.resolve = resolve;
      this.#waiters.add(waiter);
      timer = setTimeout(resolve, waitMs);
    });
    clearTimeout(timer);
    this.#waiters.delete(waiter);
    return this.#processedHeight >= height;
  }

  // ------------------------------------------------------------------------------------------
  // committed blocks

  async #apply(block: Block, height: number): Promise<void> {
    for (const tx of block.txs) {
      switch (tx.type) {
        case "round_open":
          await this.#roundOpen(tx.body as RoundOpenBody);
          break;
        case "model_update":
          await this.#modelUpdate(tx);
          break;
        case "round_close":
          this.#roundClose(tx.body as RoundCloseBody);
          break;
        case "round_result":
          await this.#roundResult(tx.body as RoundResultBody, height, block.header.time_ms);
          break;
        case "quarantine":
        case "readmit": {
          const target = this.ctx.keys.get((tx.body as { target: string }).target);
          if (!target) break; // the chain rules admit only genesis devices and edges
          const change = { type: tx.type, deviceId: target.id } as const;
          // Between round_close and round_result every validator builds the round's record from
          // the state at close; a status change committed in that window waits for the result
          // (before the first round_open, for the ledger state that round creates).
          if (this.#closedRound !== null || !this.#ledger) {
            if (this.#pendingAdmin.length < PENDING_ADMIN_MAX) {
              this.#pendingAdmin.push(change);
              this.#log.info(`${tx.type} ${target.id} waits for the next round boundary`);
            } else this.#log.warn(`${tx.type} ${target.id} dropped: ${PENDING_ADMIN_MAX} pending`);
          } else this.#adminChange(change);
          break;
        }
        default:
          break;
      }
    }
    this.#processedHeight = height;
    for (const w of this.#waiters) if (w.height <= height) w.resolve();
  }

  /** An admin's quarantine or readmit; refused (logged) when the device's status does not allow
   * it, the same on every validator. */
  #adminChange(change: { type: "quarantine" | "readmit"; deviceId: string }): void {
    if (!this.#ledger) throw new Error(`${change.type} ${change.deviceId}: no ledger state yet`);
    const verdict = change.type === "quarantine"
      ? this.#ledger.quarantine(change.deviceId)
      : this.#ledger.readmit(change.deviceId);
    this.#log.info(`${change.type} ${change.deviceId}`, {
      ok: verdict.ok,
      ...(verdict.ok ? {} : { reason: verdict.reason }),
    });
  }

  async #roundOpen(body: RoundOpenBody): Promise<void> {
    const named = body.global_model_sha256 ?? this.#ledger?.state.globalModelHash ??
      this.ctx.genesis.params.initial_model_sha256;
    if (!named) throw new Error(`round_open ${body.round}: no global model named or in genesis`);
    const bytes = await this.#blob(named);
    if (!bytes) throw new Error(`round_open ${body.round}: global model blob ${named} is missing`);
    const weights = decodeWeights(bytes);
    if (!this.#ledger) {
      // Parameters come from genesis; the model size and (without initial_model_sha256 in
      // genesis) the initial model from the first certified round_open: the same on every node.
      const appGenesis: AppGenesis = {
        params: paramsWith({
          ...(this.ctx.genesis.params.update_consensus as Record<string, unknown>),
          parameterCount: this.#parameterCount(weights.length),
        }),
        devices: [...this.#deviceIds()].sort(),
        initialModelHash: this.ctx.genesis.params.initial_model_sha256 ?? named,
      };
      this.#ledger = UpdateLedger.fromGenesis(appGenesis);
    }
    for (const change of this.#pendingAdmin.splice(0)) this.#adminChange(change);
    this.#ledger.openRound(body.round, weights);
    const edge = body.meta?.edge_model_sha256;
    this.#edgeModelHash = typeof edge === "string" ? edge : null;
    this.#closedRound = null;
    this.#logLines = 0;
    this.#log.info(`round ${body.round} open`, { global: named.slice(0, 16) });
    // The round's global model is scored too (the baseline of every update): start it now, while
    // the devices train, instead of after round_close.
    if (this.#live) {
      this.#evaluateEarly(
        body.round,
        globalEvaluationKey(this.#ledger.state.globalModelHash),
        bytes,
      );
    }
  }

  async #modelUpdate(tx: Tx): Promise<void> {
    const body = tx.body as ModelUpdateBody;
    const device = this.ctx.keys.get(tx.from);
    if (!this.#ledger || !device) return;
    const update: UpdateTx = {
      deviceId: device.id,
      round: body.round,
      baseRound: body.base_round ?? body.round,
      blobHash: body.blob_sha256,
      sampleCount: body.sample_count,
    };
    // A blob no validator has gives hash_mismatch: not recorded, never aggregated.
    const bytes = (await this.#blob(body.blob_sha256)) ?? new Uint8Array(0);
    const admission: Admission = this.#ledger.submitUpdate(update, bytes);
    if (admission.admitted && this.#live) this.#evaluateEarly(body.round, body.blob_sha256, bytes);
    if (!admission.admitted && this.#logLines++ < LOG_LINES_PER_ROUND_MAX) {
      this.#log.info(`update from ${device.id} not admitted: ${admission.reason}`, {
        round: body.round,
        detail: admission.detail,
        recorded: admission.recorded,
      });
    }
  }

  #roundClose(body: RoundCloseBody): void {
    if (!this.#ledger || this.#ledger.openRoundNumber !== body.round) return;
    this.#closedRound = body.round;
    if (this.#live) this.#scheduleResult(body.round, 0);
  }

  async #roundResult(body: RoundResultBody, height: number, timeMs: number): Promise<void> {
    if (!this.#ledger) throw new Error(`round_result ${body.round} before any round_open`);
    const record = body.record as unknown as RoundRecord;
    const { globalWeights, globalModelHash, stateRoot } = this.#ledger.commit(record);
    await this.#options.store.putBlob(encodeWeights(globalWeights), globalModelHash);
    this.#closedRound = null;
    for (const change of this.#pendingAdmin.splice(0)) this.#adminChange(change);
    this.#evaluations.delete(body.round);
    this.#earlyEvaluations.clear();
    if (this.#records.length >= RECORDS_KEPT_MAX) this.#records.shift();
    this.#records.push({ round: body.round, height, timeMs, record });
    const rejected = record.updates.filter((u) => !u.accepted);
    this.#log.info(`round ${body.round} result committed`, {
      height,
      accepted: record.updates.length - rejected.length,
      rejected: rejected.map((u) => `${u.deviceId}:${u.reasons.join("+")}`).join(" "),
      admissionRejections: record.admissionRejections.map((r) => `${r.deviceId}:${r.reason}`)
        .join(" "),
      model: globalModelHash.slice(0, 16),
      stateRoot: stateRoot.slice(0, 16),
    });
  }

  // ------------------------------------------------------------------------------------------
  // this validator's round_result

  #scheduleResult(round: number, attempt: number): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const isPrimary = this.#options.isPrimary;
    if (attempt === 0 && isPrimary && !isPrimary()) {
      // A backup's result is the fallback when the primary's does not commit (#submitResult
      // returns at once when a result has committed meanwhile).
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        void this.#submitResult(round, attempt);
      }, this.#options.backupResultDelayMs ?? BACKUP_RESULT_DELAY_MS);
      return;
    }
    void this.#submitResult(round, attempt);
  }

  async #submitResult(round: number, attempt: number): Promise<void> {
    if (this.#stopped || this.#closedRound !== round || !this.#ledger) return;
    try {
      const evaluation = await this.#evaluation(round);
      if (this.#closedRound !== round) return;
      const record = this.#ledger.propose(evaluation);
      const nonce = Math.max(this.#options.committedNonce(), this.#lastNonce) + 1;
      this.#lastNonce = nonce;
      const body: RoundResultBody = {
        round,
        global_model_sha256: record.aggregation.modelHash,
        record: record as unknown as Record<string, CanonicalValue>,
      };
      const tx = await signTx(this.#options.key, this.ctx.chainId, "round_result", nonce, body);
      const txBytes = encodeTx(tx).length;
      const txBytesMax = this.ctx.genesis.params.batch.max_tx_bytes;
      if (txBytes > txBytesMax) {
        // No validator can ever submit this round's result: a genesis sizing error, say so loudly.
        this.#log.error(
          `round_result ${round} is ${txBytes} bytes, above genesis batch.max_tx_bytes ` +
            `${txBytesMax}; raise it (about 600 bytes per device that submits in a round)`,
        );
        return;
      }
      const result = await this.#options.submit(tx) as { ok?: boolean; message?: string };
      if (result && result.ok === false) {
        this.#log.warn(`round_result ${round} not accepted by this node: ${result.message}`);
      }
    } catch (error) {
      this.#log.error(`round_result ${round}: ${(error as Error).message}`);
    }
    if (this.#stopped || attempt + 1 >= RESULT_ATTEMPTS_MAX) return;
    // Left out (another validator's was ordered first, or a view change lost it): check later.
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#closedRound === round) {
        this.#log.info(`round ${round}: no result committed yet; submitting again`, {
          attempt: attempt + 1,
        });
        this.#scheduleResult(round, attempt + 1);
      }
    }, this.#options.resultRetryMs ?? 5_000);
  }

  #evaluation(round: number): Promise<RoundEvaluation | null> {
    let pending = this.#evaluations.get(round);
    if (!pending) {
      pending = this.#evaluate(round);
      this.#evaluations.set(round, pending);
    }
    return pending;
  }

  async #evaluate(round: number): Promise<RoundEvaluation | null> {
    const evaluate = this.#options.evaluate;
    if (!evaluate || !this.#ledger) return null;
    try {
      const edgeWeights = await this.#roundEdgeWeights(this.#edgeModelHash);
      const started = performance.now();
      let models = 0, early = 0;
      // An early evaluation (started when the update was admitted) is reused; a failed one is
      // simply done again here.
      const evaluation = await this.#ledger.evaluateRound((w, blobHash) => {
        models++;
        const ready = this.#earlyEvaluations.get(
          blobHash ?? globalEvaluationKey(this.#ledger!.state.globalModelHash),
        );
        if (ready) early++;
        return ready?.catch(() => evaluate(w, { round, edgeWeights })) ??
          evaluate(w, { round, edgeWeights });
      });
      this.#log.info(`round ${round}: evaluated ${models} models (${early} started early)`, {
        msAfterClose: Math.round(performance.now() - started),
      });
      return evaluation;
    } catch (error) {
      this.#log.warn(`round ${round}: evaluation failed, deciding without it`, {
        error: (error as Error).message,
      });
      return null;
    }
  }

  /** The round's edge-side global (round_open meta), decoded once per hash, not per update. */
  async #roundEdgeWeights(hash: string | null): Promise<Float32Array | null> {
    if (!hash) return null;
    if (this.#edgeWeights?.hash === hash) return this.#edgeWeights.weights;
    const bytes = await this.#blob(hash);
    if (!bytes) return null;
    this.#edgeWeights = { hash, weights: decodeWeights(bytes) };
    return this.#edgeWeights.weights;
  }

  /** `key`: the update's blob hash, or globalEvaluationKey for the round's global model. */
  #evaluateEarly(round: number, key: string, bytes: Uint8Array): void {
    const evaluate = this.#options.evaluate;
    if (!evaluate || this.#earlyEvaluations.has(key)) return;
    if (this.#earlyEvaluations.size >= EARLY_EVALUATIONS_MAX) return;
    const edgeHash = this.#edgeModelHash;
    const run = this.#earlyChain.then(async () => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      const edgeWeights = await this.#roundEdgeWeights(edgeHash);
      return await evaluate(decodeWeights(bytes), { round, edgeWeights });
    });
    this.#earlyChain = run.catch(() => {});
    this.#earlyEvaluations.set(key, run);
  }

  // ------------------------------------------------------------------------------------------
  // helpers

  #deviceIds(): Set<string> {
    const ids = new Set<string>();
    for (const key of this.ctx.keys.values()) if (key.role === "device") ids.add(key.id);
    return ids;
  }

  #parameterCount(fallback: number): number {
    const configured = (this.ctx.genesis.params.update_consensus as { parameterCount?: unknown })
      .parameterCount;
    return typeof configured === "number" ? configured : fallback;
  }

  /** Local blob, else a peer's (hash-checked, then kept locally so a replay finds it). */
  async #blob(sha256: string): Promise<Uint8Array | null> {
    const local = await this.#options.store.getBlob(sha256);
    if (local) return local;
    const fetched = await this.#options.fetchBlob?.(sha256).catch(() => null) ?? null;
    if (!fetched || (await sha256HexAsync(fetched)) !== sha256) return null;
    await this.#options.store.putBlob(fetched, sha256);
    return fetched;
  }
}

/** See UpdateAppOptions.backupResultDelayMs. */
export const BACKUP_RESULT_DELAY_MS = 2_000;

/** Early-evaluation key of a round's global model (update blobs are keyed by their hash). */
function globalEvaluationKey(modelHash: string): string {
  return `global:${modelHash}`;
}

/** `modelHash` of weights, re-exported for shells that name the models they upload. */
export { modelHash };
