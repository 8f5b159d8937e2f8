// The round state machine of update consensus, as a pure core: no I/O, no clock, no randomness.
// The validator shell feeds it ledger-ordered transactions with their blob bytes, asks it for a
// round record to propose (or to check a proposal against), and commits the record the PBFT
// layer certified. Bad input gets a reason and changes nothing but the bounded rejection list.
import { canonicalHash, canonicalJson, firstDifference } from "./canonical.ts";
import { decodeWeights, firstNonFinite, modelHash, sha256Hex } from "./blob.ts";
import {
  ADMISSION_REJECTIONS_PER_ROUND_MAX,
  DEVICE_ID_PATTERN,
  SHA256_HEX_PATTERN,
} from "./limits.ts";
import { assertGenesis, type Genesis, type UpdateConsensusParams } from "./params.ts";
import {
  type AdmissionReason,
  type AdmissionRejection,
  type AdmittedUpdate,
  buildRound,
  checkEvaluationShape,
  evaluationOf,
  outsideTolerance,
  type RoundRecord,
  sortedAdmitted,
  type UpdateTx,
} from "./record.ts";
import { type EvalMicro, quantizeEvaluation, type RoundEvaluation } from "./scoring.ts";
import { type AppState, initialState, stateRoot } from "./state.ts";

/** Reasons that count against the device's reputation: only faults the signed tx proves.
 * Lateness, quarantine and duplicates are not misbehaviour worth a penalty; hash_mismatch is the
 * blob store's or a peer's fault, not the device's (the blob is fetched by its hash). */
const PENALIZED: ReadonlySet<AdmissionReason> = new Set([
  "bad_sample_count",
  "bad_base_round",
  "wrong_shape",
  "non_finite",
  "duplicate_blob",
  "replayed_blob",
]);
/** Not consensus decisions: the tx cannot be attributed or the bytes are a local problem. */
const UNRECORDED: ReadonlySet<AdmissionReason> = new Set([
  "bad_transaction",
  "no_open_round",
  "unknown_device",
  "hash_mismatch",
]);

export type Admission =
  | { readonly admitted: true; readonly seq: number }
  | {
    readonly admitted: false;
    readonly reason: AdmissionReason;
    readonly detail: string;
    readonly recorded: boolean;
  };

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

interface OpenRound {
  readonly round: number;
  readonly globalWeights: Float32Array;
  readonly admitted: AdmittedUpdate[];
  readonly rejections: AdmissionRejection[];
  /** Devices whose one submission this round is used (admitted or penalized). */
  readonly used: Map<string, "admitted" | AdmissionReason>;
  readonly blobs: Set<string>;
  seq: number;
}

export class UpdateLedger {
  readonly params: UpdateConsensusParams;
  #state: AppState;
  #open: OpenRound | null = null;

  private constructor(params: UpdateConsensusParams, state: AppState) {
    this.params = params;
    this.#state = state;
  }

  static fromGenesis(genesis: Genesis): UpdateLedger {
    assertGenesis(genesis);
    return new UpdateLedger(genesis.params, initialState(genesis));
  }

  /** Resume from a stored state (between rounds); checks it belongs to this genesis. */
  static fromState(genesis: Genesis, state: AppState): UpdateLedger {
    assertGenesis(genesis);
    const copy = structuredClone(state) as AppState;
    canonicalJson(copy); // integers only, or throw
    if (copy.paramsHash !== canonicalHash(genesis.params)) {
      throw new Error("state was produced under other genesis params");
    }
    const known = new Set(genesis.devices);
    const ids = Object.keys(copy.devices);
    if (ids.length !== known.size || ids.some((id) => !known.has(id))) {
      throw new Error("state devices differ from genesis");
    }
    return new UpdateLedger(genesis.params, copy);
  }

  get state(): AppState {
    return structuredClone(this.#state) as AppState;
  }

  stateRoot(): string {
    return stateRoot(this.#state);
  }

  get openRoundNumber(): number | null {
    return this.#open?.round ?? null;
  }

  /** Opens round lastClosedRound + 1 on the global model the ledger committed last. The shell
   * passes the weights it holds; a wrong round or model is a shell bug, so it throws. */
  openRound(round: number, globalWeights: Float32Array): void {
    if (this.#open) throw new Error(`openRound: round ${this.#open.round} is still open`);
    if (round !== this.#state.lastClosedRound + 1) {
      throw new Error(`openRound: next round is ${this.#state.lastClosedRound + 1}, got ${round}`);
    }
    if (globalWeights.length !== this.params.parameterCount) {
      throw new Error(
        `openRound: global has ${globalWeights.length} parameters, expected ${this.params.parameterCount}`,
      );
    }
    const hash = modelHash(globalWeights);
    if (hash !== this.#state.globalModelHash) {
      throw new Error(
        `openRound: global model hashes to ${hash}, ledger has ${this.#state.globalModelHash}`,
      );
    }
    if (firstNonFinite(globalWeights) >= 0) {
      throw new Error("openRound: global model is not finite");
    }
    this.#open = {
      round,
      globalWeights: Float32Array.from(globalWeights),
      admitted: [],
      rejections: [],
      used: new Map(),
      blobs: new Set(),
      seq: 0,
    };
  }

  /** Admission of one update tx in ledger order with its blob bytes. */
  submitUpdate(tx: UpdateTx, blob: Uint8Array): Admission {
    const open = this.#open;
    const reject = (reason: AdmissionReason, detail: string): Admission => {
      let recorded = false;
      if (
        open && !UNRECORDED.has(reason) &&
        open.rejections.length < ADMISSION_REJECTIONS_PER_ROUND_MAX
      ) {
        open.rejections.push({
          seq: open.seq,
          deviceId: tx.deviceId,
          blobHash: tx.blobHash,
          reason,
        });
        recorded = true;
      }
      if (open && PENALIZED.has(reason)) open.used.set(tx.deviceId, reason);
      if (open && recorded) open.seq++;
      return { admitted: false, reason, detail, recorded };
    };
    if (!isWellFormedTx(tx) || !(blob instanceof Uint8Array)) {
      return reject("bad_transaction", "malformed update transaction");
    }
    if (!open) return reject("no_open_round", "no round is open");
    const device = this.#state.devices[tx.deviceId];
    if (!device) return reject("unknown_device", `${tx.deviceId} is not in genesis`);
    if (tx.round < open.round) {
      return reject("round_closed", `round ${tx.round} is over; round ${open.round} is open`);
    }
    if (tx.round > open.round) {
      return reject("round_not_open", `round ${tx.round} is not open; round ${open.round} is`);
    }
    if (device.status === "quarantined") {
      return reject(
        "quarantined",
        `${tx.deviceId} quarantined since round ${device.quarantinedAtRound}`,
      );
    }
    if (open.used.has(tx.deviceId)) {
      return reject(
        "duplicate_submission",
        `${tx.deviceId} already submitted in round ${open.round}`,
      );
    }
    if (open.admitted.length >= this.params.updatesPerRoundMax) {
      return reject(
        "round_full",
        `round ${open.round} has ${this.params.updatesPerRoundMax} updates`,
      );
    }
    if (tx.sampleCount < 1 || tx.sampleCount > this.params.samplesPerUpdateMax) {
      return reject(
        "bad_sample_count",
        `sample count ${tx.sampleCount} outside 1..${this.params.samplesPerUpdateMax}`,
      );
    }
    if (tx.baseRound < 0 || tx.baseRound > open.round) {
      return reject("bad_base_round", `base round ${tx.baseRound} outside 0..${open.round}`);
    }
    const actual = sha256Hex(blob);
    if (actual !== tx.blobHash) {
      return reject("hash_mismatch", `blob hashes to ${actual}, tx names ${tx.blobHash}`);
    }
    if (blob.length !== this.params.parameterCount * 4) {
      return reject(
        "wrong_shape",
        `blob has ${blob.length} bytes, expected ${this.params.parameterCount} float32`,
      );
    }
    const weights = decodeWeights(blob);
    const bad = firstNonFinite(weights);
    if (bad >= 0) return reject("non_finite", `parameter ${bad} is ${weights[bad]}`);
    if (open.blobs.has(tx.blobHash)) {
      return reject("duplicate_blob", `blob ${tx.blobHash} already submitted this round`);
    }
    if (device.lastBlobHash === tx.blobHash) {
      return reject("replayed_blob", `blob ${tx.blobHash} is this device's previous update`);
    }

    const seq = open.seq++;
    open.admitted.push({ tx: { ...tx }, seq, weights });
    open.used.set(tx.deviceId, "admitted");
    open.blobs.add(tx.blobHash);
    return { admitted: true, seq };
  }

  /** Runs the injected ML evaluation over the validators' validation sample for the current
   * global and every admitted update (device-id order) and quantizes the results. An update's
   * blob hash comes along (null for the global), so a shell can reuse work done earlier. */
  async evaluateRound(
    evaluate: (
      weights: Float32Array,
      blobHash: string | null,
    ) => Promise<{ loss: number; accuracy: number }>,
  ): Promise<RoundEvaluation> {
    const open = this.#requireOpen("evaluateRound");
    const global = quantizeEvaluation(await evaluate(Float32Array.from(open.globalWeights), null));
    const updates: Record<string, EvalMicro> = {};
    for (const a of sortedAdmitted(open)) {
      updates[a.tx.deviceId] = quantizeEvaluation(
        await evaluate(Float32Array.from(a.weights), a.tx.blobHash),
      );
    }
    return { global, updates };
  }

  /** The proposer's round record. Does not change state; commit() does, once certified. */
  propose(evaluation: RoundEvaluation | null): RoundRecord {
    const open = this.#requireOpen("propose");
    const problem = checkEvaluationShape(evaluation, open);
    if (problem) throw new Error(`propose: ${problem}`);
    return buildRound(this.params, this.#state, open, evaluation).record;
  }

  /** A replica's check: the proposer's evaluation numbers must be within tolerance of this
   * replica's own; then the record rebuilt from the proposer's numbers must equal the proposal
   * exactly (decisions, aggregate hash, reputation, state root). Refusal triggers a view change. */
  verify(proposal: RoundRecord, own: RoundEvaluation | null): Verdict {
    const open = this.#open;
    if (!open) return { ok: false, reason: "no round is open" };
    if (proposal?.round !== open.round) {
      return {
        ok: false,
        reason: `proposal is for round ${proposal?.round}, open is ${open.round}`,
      };
    }
    let claimed: RoundEvaluation | null;
    try {
      claimed = evaluationOf(proposal);
    } catch (error) {
      return { ok: false, reason: `malformed proposal: ${(error as Error).message}` };
    }
    const shape = checkEvaluationShape(claimed, open);
    if (shape) return { ok: false, reason: `proposal evaluation: ${shape}` };
    if ((claimed === null) !== (own === null)) {
      return {
        ok: false,
        reason: claimed === null
          ? "proposal has no evaluation but this replica evaluated"
          : "this replica has no evaluation to check the proposal's against",
      };
    }
    if (claimed && own) {
      const far = outsideTolerance(claimed, own, this.params);
      if (far) return { ok: false, reason: far };
    }
    const rebuilt = buildRound(this.params, this.#state, open, claimed).record;
    const diff = firstDifference(JSON.parse(canonicalJson(rebuilt)), proposal);
    return diff === null ? { ok: true } : { ok: false, reason: `proposal differs at ${diff}` };
  }

  /** Applies a certified record: rebuilds it from its own evaluation numbers (no tolerance: the
   * quorum agreed on them), requires exact equality, moves to the new state and closes the round.
   * Returns the new global model, which validators store and serve under its hash. */
  commit(
    record: RoundRecord,
  ): { globalWeights: Float32Array; globalModelHash: string; stateRoot: string } {
    const open = this.#requireOpen("commit");
    if (record.round !== open.round) {
      throw new Error(`commit: record is for round ${record.round}, open is ${open.round}`);
    }
    const claimed = evaluationOf(record);
    const built = buildRound(this.params, this.#state, open, claimed);
    const diff = firstDifference(
      JSON.parse(canonicalJson(built.record)),
      JSON.parse(canonicalJson(record)),
    );
    if (diff !== null) {
      throw new Error(
        `commit: certified record cannot be reproduced (differs at ${diff}); state diverged`,
      );
    }
    this.#state = built.next;
    this.#open = null;
    return {
      globalWeights: built.globalWeights,
      globalModelHash: built.next.globalModelHash,
      stateRoot: built.record.stateRoot,
    };
  }

  /** Admin transaction: the device sits out every round from now on until an admin readmits it
   * (a reputation quarantine, by contrast, ends by itself after `quarantineRounds`). */
  quarantine(deviceId: string): Verdict {
    const device = this.#state.devices[deviceId];
    if (!device) return { ok: false, reason: `${deviceId} is not in genesis` };
    if (device.status === "quarantined") {
      return { ok: false, reason: `${deviceId} is already quarantined` };
    }
    return this.#setStatus(deviceId, "quarantined");
  }

  /** Admin transaction: a quarantined device goes to probation now. */
  readmit(deviceId: string): Verdict {
    const device = this.#state.devices[deviceId];
    if (!device) return { ok: false, reason: `${deviceId} is not in genesis` };
    if (device.status !== "quarantined") {
      return { ok: false, reason: `${deviceId} is ${device.status}, not quarantined` };
    }
    return this.#setStatus(deviceId, "probation");
  }

  /** An admin's status change: no round number (not served out by itself), probation restarts. */
  #setStatus(deviceId: string, status: "quarantined" | "probation"): Verdict {
    const device = this.#state.devices[deviceId];
    this.#state = {
      ...this.#state,
      devices: {
        ...this.#state.devices,
        [deviceId]: { ...device, status, quarantinedAtRound: null, probationAccepts: 0 },
      },
    };
    return { ok: true };
  }

  #requireOpen(what: string): OpenRound {
    if (!this.#open) throw new Error(`${what}: no round is open`);
    return this.#open;
  }
}

function isWellFormedTx(tx: UpdateTx): boolean {
  return typeof tx === "object" && tx !== null &&
    typeof tx.deviceId === "string" && DEVICE_ID_PATTERN.test(tx.deviceId) &&
    Number.isSafeInteger(tx.round) && Number.isSafeInteger(tx.baseRound) &&
    Number.isSafeInteger(tx.sampleCount) &&
    typeof tx.blobHash === "string" && SHA256_HEX_PATTERN.test(tx.blobHash);
}
