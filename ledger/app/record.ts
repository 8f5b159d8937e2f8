// The round record (the round block body) and the pure function that builds it from the round's
// admitted updates: scores, decisions, aggregation, reputation and rewards, next state. The
// proposer, every replica and commit() all run this same function; only its inputs can differ.
import { aggregate, type AggregationResult } from "./aggregate.ts";
import { firstNonFinite, modelHash } from "./blob.ts";
import { MICRO } from "./limits.ts";
import type { UpdateConsensusParams } from "./params.ts";
import {
  decide,
  type EvalMicro,
  type RejectReason,
  type RoundEvaluation,
  scoreGeometry,
  type UpdateScores,
} from "./scoring.ts";
import {
  type AppState,
  type DeviceEvent,
  type DeviceState,
  nextStatus,
  reputationMicro,
  splitRewards,
  stateRoot,
  updateEvidence,
} from "./state.ts";
import { canonicalJson } from "./canonical.ts";
import { deltaOf } from "./vector.ts";

/** A device's signed update transaction (the shell has verified the signature). */
export interface UpdateTx {
  readonly deviceId: string;
  readonly round: number;
  /** Round whose global model the device trained from. */
  readonly baseRound: number;
  /** SHA-256 hex of the little-endian Float32 weight blob. */
  readonly blobHash: string;
  readonly sampleCount: number;
}

export const ADMISSION_REASONS = [
  "bad_transaction",
  "no_open_round",
  "unknown_device",
  "round_closed",
  "round_not_open",
  "quarantined",
  "duplicate_submission",
  "round_full",
  "bad_sample_count",
  "bad_base_round",
  "hash_mismatch",
  "wrong_shape",
  "non_finite",
  "duplicate_blob",
  "replayed_blob",
] as const;
export type AdmissionReason = typeof ADMISSION_REASONS[number];

export interface AdmissionRejection {
  readonly seq: number;
  readonly deviceId: string;
  readonly blobHash: string;
  readonly reason: AdmissionReason;
}

export interface UpdateRecord {
  readonly deviceId: string;
  readonly blobHash: string;
  readonly seq: number;
  readonly sampleCount: number;
  readonly baseRound: number;
  readonly scores: UpdateScores;
  readonly accepted: boolean;
  readonly reasons: readonly RejectReason[];
}

export interface DeviceChange {
  readonly deviceId: string;
  readonly accepted: boolean;
  readonly alphaMicro: number;
  readonly betaMicro: number;
  readonly reputationMicro: number;
  readonly creditsEarned: number;
  readonly status: DeviceState["status"];
}

/** The round block body: what the proposer proposes, replicas check, and the ledger stores.
 * Integers, strings, booleans and null only. */
export interface RoundRecord {
  readonly round: number;
  /** Global model the round started from. */
  readonly baseModelHash: string;
  readonly admissionRejections: readonly AdmissionRejection[];
  /** Sorted by device id. */
  readonly updates: readonly UpdateRecord[];
  readonly globalEvaluation: EvalMicro | null;
  readonly medianNormMicro: number;
  readonly aggregation: {
    readonly rule: string;
    readonly ruleUsed: string | null;
    readonly fallback: string | null;
    readonly contributors: readonly string[];
    /** SHA-256 of the new global model's little-endian Float32 bytes. */
    readonly modelHash: string;
  };
  /** Devices that took part (admitted or penalized at admission), sorted by id. */
  readonly devices: readonly DeviceChange[];
  readonly events: readonly DeviceEvent[];
  /** State root after applying this round. */
  readonly stateRoot: string;
}

export interface AdmittedUpdate {
  readonly tx: UpdateTx;
  readonly seq: number;
  readonly weights: Float32Array;
}

/** What a round has gathered by the time it closes. */
export interface RoundInput {
  readonly round: number;
  readonly globalWeights: Float32Array;
  readonly admitted: readonly AdmittedUpdate[];
  readonly rejections: readonly AdmissionRejection[];
  /** Devices whose one submission this round is used: "admitted" or the penalized reason. */
  readonly used: ReadonlyMap<string, string>;
}

export interface Built {
  readonly record: RoundRecord;
  readonly next: AppState;
  readonly globalWeights: Float32Array;
}

export function buildRound(
  p: UpdateConsensusParams,
  state: AppState,
  open: RoundInput,
  evaluation: RoundEvaluation | null,
): Built {
  const admitted = sortedAdmitted(open);
  const deltas = admitted.map((a) => deltaOf(a.weights, open.globalWeights));
  const geometry = scoreGeometry(
    admitted.map((a, i) => ({
      deviceId: a.tx.deviceId,
      seq: a.seq,
      baseRound: a.tx.baseRound,
      delta: deltas[i],
    })),
    open.round,
    p,
  );
  const globalEval = evaluation?.global ?? null;
  const updates: UpdateRecord[] = admitted.map((a, i) => {
    const e = evaluation?.updates[a.tx.deviceId] ?? null;
    const scores: UpdateScores = {
      ...geometry.scores[i],
      lossMicro: e?.lossMicro ?? null,
      accuracyMicro: e?.accuracyMicro ?? null,
    };
    const reasons = decide(scores, globalEval, p);
    return {
      deviceId: a.tx.deviceId,
      blobHash: a.tx.blobHash,
      seq: a.seq,
      sampleCount: a.tx.sampleCount,
      baseRound: a.tx.baseRound,
      scores,
      accepted: reasons.length === 0,
      reasons,
    };
  });

  // Aggregate accepted deltas; the new global is f32(global + delta) computed in Float64.
  const acceptedIdx = updates.flatMap((u, i) => (u.accepted ? [i] : []));
  let result: AggregationResult | null = null;
  let globalWeights = open.globalWeights;
  let fallback: string | null = null;
  if (acceptedIdx.length === 0) {
    fallback = "no accepted updates: global model unchanged";
  } else {
    result = aggregate(
      acceptedIdx.map((i) => ({
        deviceId: updates[i].deviceId,
        delta: deltas[i],
        sampleCount: updates[i].sampleCount,
      })),
      p.aggregationRule,
      p,
    );
    const next = new Float32Array(open.globalWeights.length);
    for (let j = 0; j < next.length; j++) next[j] = open.globalWeights[j] + result.delta[j];
    if (firstNonFinite(next) >= 0) {
      fallback = "aggregate overflowed float32: global model unchanged";
      result = null;
    } else {
      globalWeights = next;
      fallback = result.fallback;
    }
  }

  // Reputation, rewards and status for every device that used its submission this round.
  const outcome = new Map<string, boolean>();
  for (const u of updates) outcome.set(u.deviceId, u.accepted);
  for (const [id, use] of open.used) if (use !== "admitted") outcome.set(id, false);
  const rewards = splitRewards(
    updates.filter((u) => u.accepted).map((u) => ({
      deviceId: u.deviceId,
      sampleCount: u.sampleCount,
      // A lone update has no direction to compare with: full quality.
      qualityMicro: u.scores.cosineMicro === null
        ? MICRO
        : Math.max(0, Math.min(MICRO, u.scores.cosineMicro)),
    })),
    p.rewardPerRoundCredits,
  );
  const devices: Record<string, DeviceState> = { ...state.devices };
  const changes: DeviceChange[] = [];
  const events: DeviceEvent[] = [];
  for (const id of [...outcome.keys()].sort()) {
    const before = devices[id];
    const accepted = outcome.get(id)!;
    const evidence = updateEvidence(before, accepted, p);
    const reputation = reputationMicro(evidence.alphaMicro, evidence.betaMicro);
    const status = nextStatus(before, accepted, reputation, open.round, p);
    const earned = rewards.get(id) ?? 0;
    const update = updates.find((u) => u.deviceId === id);
    devices[id] = {
      ...before,
      ...evidence,
      status: status.status,
      quarantinedAtRound: status.quarantinedAtRound,
      probationAccepts: status.probationAccepts,
      credits: before.credits + earned,
      lastSeenRound: open.round,
      lastBlobHash: update ? update.blobHash : before.lastBlobHash,
      acceptedCount: before.acceptedCount + (accepted ? 1 : 0),
      rejectedCount: before.rejectedCount + (accepted ? 0 : 1),
    };
    if (status.event) events.push({ deviceId: id, kind: status.event, reason: status.reason });
    changes.push({
      deviceId: id,
      accepted,
      ...evidence,
      reputationMicro: reputation,
      creditsEarned: earned,
      status: status.status,
    });
  }
  // Quarantine served: probation from the next round on.
  for (const id of Object.keys(devices).sort()) {
    const d = devices[id];
    if (
      d.status === "quarantined" && d.quarantinedAtRound !== null &&
      open.round - d.quarantinedAtRound >= p.quarantineRounds
    ) {
      devices[id] = { ...d, status: "probation", quarantinedAtRound: null, probationAccepts: 0 };
      events.push({
        deviceId: id,
        kind: "probation",
        reason: `quarantine of ${p.quarantineRounds} rounds served`,
      });
    }
  }

  const globalModelHash = globalWeights === open.globalWeights
    ? state.globalModelHash
    : modelHash(globalWeights);
  const next: AppState = {
    ...state,
    lastClosedRound: open.round,
    globalModelHash,
    devices,
  };
  const record: RoundRecord = {
    round: open.round,
    baseModelHash: state.globalModelHash,
    admissionRejections: open.rejections.map((r) => ({ ...r })),
    updates,
    globalEvaluation: globalEval ? { ...globalEval } : null,
    medianNormMicro: geometry.medianNormMicro,
    aggregation: {
      rule: p.aggregationRule,
      ruleUsed: result?.ruleUsed ?? null,
      fallback,
      contributors: result ? [...result.contributors] : [],
      modelHash: globalModelHash,
    },
    devices: changes,
    events,
    stateRoot: stateRoot(next),
  };
  canonicalJson(record); // integers only, or throw before anything leaves the core
  return {
    record,
    next,
    globalWeights: globalWeights === open.globalWeights
      ? Float32Array.from(globalWeights)
      : globalWeights,
  };
}

export function sortedAdmitted(open: RoundInput): AdmittedUpdate[] {
  return [...open.admitted].sort((a, b) => (a.tx.deviceId < b.tx.deviceId ? -1 : 1));
}

/** The evaluation numbers a record carries, in RoundEvaluation form. */
export function evaluationOf(record: RoundRecord): RoundEvaluation | null {
  if (record.globalEvaluation === null) {
    if (
      record.updates.some((u) => u.scores.lossMicro !== null || u.scores.accuracyMicro !== null)
    ) {
      throw new Error("update evaluations without a global evaluation");
    }
    return null;
  }
  const updates: Record<string, EvalMicro> = {};
  for (const u of record.updates) {
    if (u.scores.lossMicro === null || u.scores.accuracyMicro === null) {
      throw new Error(`update ${u.deviceId} not evaluated`);
    }
    updates[u.deviceId] = { lossMicro: u.scores.lossMicro, accuracyMicro: u.scores.accuracyMicro };
  }
  return { global: { ...record.globalEvaluation }, updates };
}

function isEval(e: EvalMicro | undefined): boolean {
  return e !== undefined && Number.isSafeInteger(e.lossMicro) &&
    Number.isSafeInteger(e.accuracyMicro) &&
    e.accuracyMicro >= 0 && e.accuracyMicro <= MICRO;
}

/** Evaluation must cover exactly the admitted updates with integer micro-units. */
export function checkEvaluationShape(
  evaluation: RoundEvaluation | null,
  open: RoundInput,
): string | null {
  if (evaluation === null) return null;
  if (!isEval(evaluation.global)) return "global evaluation is not integer micro-units";
  const ids = Object.keys(evaluation.updates);
  if (ids.length !== open.admitted.length) {
    return `${ids.length} update evaluations for ${open.admitted.length} updates`;
  }
  for (const a of open.admitted) {
    if (!isEval(evaluation.updates[a.tx.deviceId])) {
      return `no valid evaluation for ${a.tx.deviceId}`;
    }
  }
  return null;
}

export function outsideTolerance(
  claimed: RoundEvaluation,
  own: RoundEvaluation,
  p: UpdateConsensusParams,
): string | null {
  const check = (
    what: string,
    a: EvalMicro | undefined,
    b: EvalMicro | undefined,
  ): string | null => {
    if (!a || !b) return `${what}: evaluation missing`;
    if (Math.abs(a.lossMicro - b.lossMicro) > p.lossToleranceMicro) {
      return `${what}: loss ${a.lossMicro} vs own ${b.lossMicro} micro exceeds tolerance ${p.lossToleranceMicro}`;
    }
    if (Math.abs(a.accuracyMicro - b.accuracyMicro) > p.accuracyToleranceMicro) {
      return `${what}: accuracy ${a.accuracyMicro} vs own ${b.accuracyMicro} micro exceeds tolerance ${p.accuracyToleranceMicro}`;
    }
    return null;
  };
  const g = check("global", claimed.global, own.global);
  if (g) return g;
  for (const id of Object.keys(claimed.updates).sort()) {
    const u = check(id, claimed.updates[id], own.updates[id]);
    if (u) return u;
  }
  return null;
}
