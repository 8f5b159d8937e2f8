// Aggregation rules over update deltas (update - current global). Inputs are sorted by device id
// first, so every accumulation runs in the same order on every validator and ties go to the
// smaller id. Rules that need more updates than they have throw AggregationTooFew; aggregate()
// turns that into the documented fallback (coordinate-wise median).
import type { AggregationRule } from "./params.ts";
import { MICRO } from "./limits.ts";
import { medianOfSorted, sortColumn, squaredDistance } from "./vector.ts";

export interface AggregationInput {
  readonly deviceId: string;
  readonly delta: Float64Array;
  /** FedAvg weight (already capped at samplesPerUpdateMax). */
  readonly sampleCount: number;
}

export interface AggregationOptions {
  readonly trimFractionMicro: number;
  readonly krumByzantine: number;
  readonly multiKrumSelect: number;
}

export interface AggregationResult {
  readonly rule: AggregationRule;
  /** The rule actually applied (differs from `rule` only on fallback). */
  readonly ruleUsed: AggregationRule;
  readonly fallback: string | null;
  /** Device ids whose deltas entered the result (Krum: the selected ones), sorted. */
  readonly contributors: readonly string[];
  readonly delta: Float64Array;
}

export class AggregationTooFew extends Error {}

export function sortByDevice(inputs: readonly AggregationInput[]): AggregationInput[] {
  const sorted = [...inputs].sort((
    a,
    b,
  ) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].deviceId === sorted[i - 1].deviceId) {
      throw new Error(`aggregate: device ${sorted[i].deviceId} twice`);
    }
  }
  const p = sorted[0]?.delta.length ?? 0;
  for (const s of sorted) {
    if (s.delta.length !== p) {
      throw new Error(`aggregate: ${s.deviceId} has ${s.delta.length} parameters, expected ${p}`);
    }
  }
  return sorted;
}

function requireAtLeast(n: number, needed: number, rule: string, why: string): void {
  if (n < needed) {
    throw new AggregationTooFew(`${rule} needs at least ${needed} updates (${why}), got ${n}`);
  }
}

/** Weighted FedAvg: sum_i n_i d_i / sum_i n_i, summed in device-id order. */
export function fedAvg(inputs: readonly AggregationInput[]): Float64Array {
  const sorted = sortByDevice(inputs);
  requireAtLeast(sorted.length, 1, "fedavg", "one update");
  let total = 0;
  for (const s of sorted) {
    if (!Number.isSafeInteger(s.sampleCount) || s.sampleCount <= 0) {
      throw new Error(`fedavg: ${s.deviceId} has sample count ${s.sampleCount}`);
    }
    total += s.sampleCount;
  }
  const out = new Float64Array(sorted[0].delta.length);
  for (const s of sorted) {
    for (let j = 0; j < out.length; j++) out[j] += s.sampleCount * s.delta[j];
  }
  for (let j = 0; j < out.length; j++) out[j] /= total;
  return out;
}

/** Unweighted mean in device-id order (Multi-Krum's average). */
function mean(sorted: readonly AggregationInput[]): Float64Array {
  const out = new Float64Array(sorted[0].delta.length);
  for (const s of sorted) for (let j = 0; j < out.length; j++) out[j] += s.delta[j];
  for (let j = 0; j < out.length; j++) out[j] /= sorted.length;
  return out;
}

/** Coordinate-wise median; mean of the two middle values for an even count. */
export function coordinateMedian(inputs: readonly AggregationInput[]): Float64Array {
  const sorted = sortByDevice(inputs);
  requireAtLeast(sorted.length, 1, "median", "one update");
  return coordinateMedianOf(sorted.map((s) => s.delta));
}

/** Median of raw deltas (order-free: a sort per coordinate), used for scoring too. */
export function coordinateMedianOf(deltas: readonly Float64Array[]): Float64Array {
  if (deltas.length === 0) throw new AggregationTooFew("median needs at least 1 update");
  const out = new Float64Array(deltas[0].length);
  const column = new Float64Array(deltas.length);
  for (let j = 0; j < out.length; j++) {
    for (let i = 0; i < deltas.length; i++) column[i] = deltas[i][j];
    sortColumn(column);
    out[j] = medianOfSorted(column);
  }
  return out;
}

/** Per coordinate: sort, drop k = floor(beta n) from each end, average the rest in sorted order. */
export function trimmedMean(
  inputs: readonly AggregationInput[],
  trimFractionMicro: number,
): Float64Array {
  const sorted = sortByDevice(inputs);
  requireAtLeast(sorted.length, 1, "trimmed-mean", "one update");
  if (
    !Number.isSafeInteger(trimFractionMicro) || trimFractionMicro < 0 ||
    trimFractionMicro * 2 >= MICRO
  ) {
    throw new Error(`trimmed-mean: trim fraction ${trimFractionMicro} micro must be in [0, 0.5)`);
  }
  const n = sorted.length;
  const k = Math.floor((trimFractionMicro * n) / MICRO);
  const kept = n - 2 * k; // >= 1 because beta < 0.5
  const out = new Float64Array(sorted[0].delta.length);
  const column = new Float64Array(n);
  for (let j = 0; j < out.length; j++) {
    for (let i = 0; i < n; i++) column[i] = sorted[i].delta[j];
    sortColumn(column);
    let sum = 0;
    for (let i = k; i < n - k; i++) sum += column[i];
    out[j] = sum / kept;
  }
  return out;
}

/** Krum scores: for each update, the sum of squared distances to its n - f - 2 nearest others
 * (distances summed in ascending order). Returned in device-id order. */
export function krumScores(inputs: readonly AggregationInput[], byzantine: number): number[] {
  const sorted = sortByDevice(inputs);
  const n = sorted.length;
  requireAtLeast(n, 2 * byzantine + 3, "krum", `n >= 2f + 3 with f = ${byzantine}`);
  const dist: number[][] = sorted.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = squaredDistance(sorted[i].delta, sorted[j].delta);
      dist[i][j] = d;
      dist[j][i] = d;
    }
  }
  const neighbours = n - byzantine - 2;
  return dist.map((row, i) => {
    const others = row.filter((_, j) => j !== i).sort((a, b) => a - b);
    let score = 0;
    for (let t = 0; t < neighbours; t++) score += others[t];
    return score;
  });
}

/** Multi-Krum: the m updates with the lowest Krum scores (ties: smaller device id), averaged.
 * m = 1 is Krum. Non-iterative selection (scores computed once), as in Blanchard et al. 2017. */
export function multiKrum(
  inputs: readonly AggregationInput[],
  byzantine: number,
  select: number,
): { delta: Float64Array; selected: string[] } {
  const sorted = sortByDevice(inputs);
  const scores = krumScores(sorted, byzantine);
  const n = sorted.length;
  if (!Number.isSafeInteger(select) || select < 1) {
    throw new Error(`multi-krum: m = ${select} must be >= 1`);
  }
  requireAtLeast(n, select + byzantine, "multi-krum", `m + f with m = ${select}, f = ${byzantine}`);
  const order = scores.map((score, i) => ({ score, i })).sort((a, b) =>
    a.score - b.score || a.i - b.i
  );
  const chosen = order.slice(0, select).map((o) => o.i).sort((a, b) => a - b).map((i) => sorted[i]);
  return {
    delta: select === 1 ? Float64Array.from(chosen[0].delta) : mean(chosen),
    selected: chosen.map((c) => c.deviceId),
  };
}

/** Applies the rule; when it needs more updates than there are, falls back to the coordinate-wise
 * median (defined for n >= 1) and says why. Zero inputs is the caller's case (global unchanged). */
export function aggregate(
  inputs: readonly AggregationInput[],
  rule: AggregationRule,
  options: AggregationOptions,
): AggregationResult {
  const sorted = sortByDevice(inputs);
  if (sorted.length === 0) throw new AggregationTooFew("aggregate: no updates");
  const all = sorted.map((s) => s.deviceId);
  try {
    switch (rule) {
      case "fedavg":
        return { rule, ruleUsed: rule, fallback: null, contributors: all, delta: fedAvg(sorted) };
      case "median":
        return {
          rule,
          ruleUsed: rule,
          fallback: null,
          contributors: all,
          delta: coordinateMedian(sorted),
        };
      case "trimmed-mean":
        return {
          rule,
          ruleUsed: rule,
          fallback: null,
          contributors: all,
          delta: trimmedMean(sorted, options.trimFractionMicro),
        };
      case "krum":
      case "multi-krum": {
        const m = rule === "krum" ? 1 : options.multiKrumSelect;
        const { delta, selected } = multiKrum(sorted, options.krumByzantine, m);
        return { rule, ruleUsed: rule, fallback: null, contributors: selected, delta };
      }
    }
  } catch (error) {
    if (!(error instanceof AggregationTooFew)) throw error;
    return {
      rule,
      ruleUsed: "median",
      fallback: error.message,
      contributors: all,
      delta: coordinateMedian(sorted),
    };
  }
}
