// Scores of one round's admitted updates and the accept/reject rules. Scores are computed on
// deltas (update - current global): norm and direction of the step a device proposes, which is
// what poisoning changes; raw weights are dominated by the shared global model. Every rule
// compares quantized integers, so a decision is a pure function of ledger integers.
import { coordinateMedianOf } from "./aggregate.ts";
import { MICRO } from "./limits.ts";
import type { UpdateConsensusParams } from "./params.ts";
import { cosine, l2Norm, medianOfSorted, quantizeMicro, squaredDistance } from "./vector.ts";

export interface EvalMicro {
  readonly lossMicro: number;
  readonly accuracyMicro: number;
}

/** Validation numbers for the current global and for each admitted update (by device id). */
export interface RoundEvaluation {
  readonly global: EvalMicro;
  readonly updates: Readonly<Record<string, EvalMicro>>;
}

export interface UpdateScores {
  readonly l2NormMicro: number;
  /** ||delta|| / max(median ||delta||, minDeltaNorm). */
  readonly normRatioMicro: number;
  /** cosine(delta, coordinate-wise median of the round's deltas). */
  readonly cosineMicro: number;
  /** min over earlier-submitted j of ||d - d_j|| / max(||d||, ||d_j||); null for the first. */
  readonly cloneDistanceMicro: number | null;
  /** round - baseRound. */
  readonly staleness: number;
  readonly lossMicro: number | null;
  readonly accuracyMicro: number | null;
}

export const REJECT_REASONS = [
  "zero_delta",
  "norm_too_small",
  "norm_too_large",
  "cosine_too_low",
  "near_duplicate",
  "stale",
  "not_evaluated",
  "loss_too_high",
  "accuracy_too_low",
] as const;
export type RejectReason = typeof REJECT_REASONS[number];

export interface ScoringInput {
  readonly deviceId: string;
  /** Position in ledger order within the round; the clone rule keeps the earliest copy. */
  readonly seq: number;
  readonly baseRound: number;
  readonly delta: Float64Array;
}

export interface Geometry {
  readonly medianNormMicro: number;
  /** Same order as the input. */
  readonly scores: readonly Omit<UpdateScores, "lossMicro" | "accuracyMicro">[];
}

/** Norm, norm ratio, cosine to the median delta, clone distance and staleness for every update.
 * All pure Float64 JS (exact and identical on every engine), quantized at the end. */
export function scoreGeometry(
  inputs: readonly ScoringInput[],
  round: number,
  params: UpdateConsensusParams,
): Geometry {
  if (inputs.length === 0) return { medianNormMicro: 0, scores: [] };
  const deltas = inputs.map((u) => u.delta);
  const median = coordinateMedianOf(deltas);
  const norms = deltas.map(l2Norm);
  const medianNorm = medianOfSorted(Float64Array.from(norms).sort());
  const floor = params.minDeltaNormMicro / MICRO;
  const scale = Math.max(medianNorm, floor);
  const scores = inputs.map((u, i) => {
    let clone: number | null = null;
    for (let j = 0; j < inputs.length; j++) {
      if (inputs[j].seq >= u.seq) continue;
      const rel = Math.sqrt(squaredDistance(u.delta, inputs[j].delta)) /
        Math.max(norms[i], norms[j], floor);
      if (clone === null || rel < clone) clone = rel;
    }
    return {
      l2NormMicro: quantizeMicro(norms[i]),
      normRatioMicro: quantizeMicro(norms[i] / scale),
      cosineMicro: quantizeMicro(cosine(u.delta, median)),
      cloneDistanceMicro: clone === null ? null : quantizeMicro(clone),
      staleness: round - u.baseRound,
    };
  });
  return { medianNormMicro: quantizeMicro(medianNorm), scores };
}

/** The accept rule: every reason that applies, in REJECT_REASONS order; accepted iff empty.
 * Integers in, integers compared: replicas that agree on the scores agree on the decision. */
export function decide(
  scores: UpdateScores,
  globalEval: EvalMicro | null,
  params: UpdateConsensusParams,
): RejectReason[] {
  const reasons: RejectReason[] = [];
  if (scores.l2NormMicro <= params.minDeltaNormMicro) reasons.push("zero_delta");
  if (scores.normRatioMicro < params.minNormRatioMicro) reasons.push("norm_too_small");
  if (scores.normRatioMicro > params.maxNormRatioMicro) reasons.push("norm_too_large");
  if (scores.cosineMicro < params.minCosineMicro) reasons.push("cosine_too_low");
  if (
    scores.cloneDistanceMicro !== null && scores.cloneDistanceMicro <= params.cloneDistanceMaxMicro
  ) {
    reasons.push("near_duplicate");
  }
  if (scores.staleness > params.maxStalenessRounds) reasons.push("stale");
  const evaluated = globalEval !== null && scores.lossMicro !== null &&
    scores.accuracyMicro !== null;
  if (!evaluated) {
    if (params.requireEvaluation) reasons.push("not_evaluated");
  } else {
    if (scores.lossMicro! - globalEval!.lossMicro > params.maxLossIncreaseMicro) {
      reasons.push("loss_too_high");
    }
    if (globalEval!.accuracyMicro - scores.accuracyMicro! > params.maxAccuracyDropMicro) {
      reasons.push("accuracy_too_low");
    }
  }
  return reasons;
}

/** Quantizes what the ML engine reports: loss clamped to the ledger range (non-finite = worst),
 * accuracy to [0, 1]. */
export function quantizeEvaluation(result: { loss: number; accuracy: number }): EvalMicro {
  const loss = Number.isNaN(result.loss) ? Infinity : result.loss;
  const accuracy = Number.isFinite(result.accuracy) ? Math.max(0, Math.min(1, result.accuracy)) : 0;
  return { lossMicro: quantizeMicro(loss), accuracyMicro: quantizeMicro(accuracy) };
}
