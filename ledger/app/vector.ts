// Float64 vector arithmetic with one fixed evaluation order (index ascending). IEEE 754 +, -, *, /
// and sqrt are correctly rounded and JS never contracts to FMA, so identical inputs give
// bit-identical outputs on every engine; only the order of operations must be pinned, and it is.
import { MICRO, QUANTIZED_MAX } from "./limits.ts";

export function deltaOf(weights: Float32Array, global: Float32Array): Float64Array {
  if (weights.length !== global.length) {
    throw new Error(`delta: ${weights.length} vs ${global.length} parameters`);
  }
  const out = new Float64Array(weights.length);
  for (let i = 0; i < out.length; i++) out[i] = weights[i] - global[i];
  return out;
}

export function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

export function l2Norm(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}

export function squaredDistance(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

/** Cosine similarity; 0 when either vector is zero (a zero update has no direction). */
export function cosine(a: Float64Array, b: Float64Array): number {
  const na = l2Norm(a);
  const nb = l2Norm(b);
  if (na === 0 || nb === 0) return 0;
  const c = dot(a, b) / (na * nb);
  return Math.max(-1, Math.min(1, c));
}

/** Sorts ascending in place exactly as Float64Array.prototype.sort does (-0 before +0), with an
 * insertion sort for the short columns of a round: a native sort call per coordinate costs more
 * than the sort. */
export function sortColumn(column: Float64Array): Float64Array {
  const n = column.length;
  if (n > 48) return column.sort();
  for (let i = 1; i < n; i++) {
    const v = column[i];
    let k = i - 1;
    while (k >= 0 && (column[k] > v || (column[k] === v && v === 0 && 1 / column[k] > 1 / v))) {
      column[k + 1] = column[k];
      k--;
    }
    column[k + 1] = v;
  }
  return column;
}

/** Median of a list already sorted ascending; mean of the two middle values when even. */
export function medianOfSorted(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) throw new Error("median of an empty list");
  const mid = n >> 1;
  return n % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Ledger integer in micro-units; clamped to the safe-integer range, non-finite as the clamp. */
export function quantizeMicro(x: number): number {
  if (Number.isNaN(x)) throw new Error("quantize: NaN");
  const scaled = Math.round(x * MICRO);
  if (!Number.isFinite(scaled) || Math.abs(scaled) > QUANTIZED_MAX) {
    return x > 0 ? QUANTIZED_MAX : -QUANTIZED_MAX;
  }
  return scaled === 0 ? 0 : scaled; // no -0 on the ledger
}
