// Scores of one round's admitted updates and the accept/reject rules. Scores are computed on
// deltas (update - current global): norm and direction of the step a device proposes, which is
// what poisoning changes; raw weights are dominated by the shared global model. Every rule
// compares quantized integers, so a decision is a pure function of ledger integers.
import { MICRO } from "./limits.ts";
import type { UpdateConsensusParams } from "./params.ts";
import { l2Norm, medianOfSorted, quantizeMicro, squaredDistance } from "./vector.ts";

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
  /** cosine(delta, coordinate-wise median of the round's other deltas); null when alone. */
  readonly cosineMicro: number | null;
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
  const cosines = leaveOneOutMedianCosines(deltas);
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
      cosineMicro: cosines[i] === null ? null : quantizeMicro(cosines[i]!),
      cloneDistanceMicro: clone === null ? null : quantizeMicro(clone),
      staleness: round - u.baseRound,
    };
  });
  return { medianNormMicro: quantizeMicro(medianNorm), scores };
}

/** cosine(d_i, median of the other deltas) for every i. Leaving d_i out matters: with n = 20 an
 * update's own share of the coordinate-wise median gives pure noise a cosine of ~0.1 to it.
 * One argsort per coordinate gives every leave-one-out median in O(1) (removing rank r shifts the
 * middle index by one when r is at or below it), so the cost is that of one median, and the dot
 * products accumulate coordinate by coordinate in index order. Null for a lone update. */
export function leaveOneOutMedianCosines(deltas: readonly Float64Array[]): (number | null)[] {
  const n = deltas.length;
  if (n < 2) return deltas.map(() => null);
  const p = deltas[0].length;
  const dots = new Float64Array(n);
  const medianSquares = new Float64Array(n);
  const order = new Int32Array(n);
  const rank = new Int32Array(n);
  const sorted = new Float64Array(n);
  const m = n - 1; // values left after removing one
  for (let j = 0; j < p; j++) {
    argsortColumn(deltas, j, order, sorted);
    for (let r = 0; r < n; r++) rank[order[r]] = r;
    // Index k of the remaining list maps to sorted index k (k < r) or k + 1 (k >= r).
    const at = (k: number, r: number) => sorted[k < r ? k : k + 1];
    for (let i = 0; i < n; i++) {
      const r = rank[i];
      const median = m % 2 === 1 ? at((m - 1) / 2, r) : (at(m / 2 - 1, r) + at(m / 2, r)) / 2;
      dots[i] += deltas[i][j] * median;
      medianSquares[i] += median * median;
    }
  }
  return deltas.map((d, i) => {
    const a = l2Norm(d);
    const b = Math.sqrt(medianSquares[i]);
    if (a === 0 || b === 0) return 0;
    return Math.max(-1, Math.min(1, dots[i] / (a * b)));
  });
}

/** Indices of column j sorted by value, ties by index (a total order, so any correct sort gives
 * the same answer); insertion sort for the small n of a round, the built-in sort above that. */
function argsortColumn(
  deltas: readonly Float64Array[],
  j: number,
  order: Int32Array,
  sorted: Float64Array,
): void {
  const n = deltas.length;
  if (n > 48) {
    const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      deltas[a][j] - deltas[b][j] || a - b
    );
    for (let r = 0; r < n; r++) {
      order[r] = idx[r];
      sorted[r] = deltas[idx[r]][j];
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const v = deltas[i][j];
    let k = i - 1;
    // Stable: equal values keep index order because i arrives in index order.
    while (k >= 0 && sorted[k] > v) {
      sorted[k + 1] = sorted[k];
      order[k + 1] = order[k];
      k--;
    }
    sorted[k + 1] = v;
    order[k + 1] = i;
  }
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
  if (scores.cosineMicro !== null && scores.cosineMicro < params.minCosineMicro) {
    reasons.push("cosine_too_low");
  }
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
