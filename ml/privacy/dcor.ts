// Distance correlation (Székely, Rizzo & Bakirov 2007): a dependence measure between two
// multivariate samples that is 0 only under independence (in the population) and 1 when one is a
// similarity transform (scaled rotation plus shift) of the other. Two forms:
//   distanceCorrelation  exact O(n²) in float64 on a bounded sample, for reporting;
//   dcorTensor           (protection.ts) the same statistic as tfjs ops, for the NoPeek loss.
// Both use the V-statistic (biased) form, as NoPeek (Vepakomma et al. 2020) does: it is >= 0 and
// its small-sample bias is ~1/sqrt(n), so compare values measured on equal sample sizes.

/** O(n²) time and memory: 4096 rows = 2 x 128 MB of float64 distances. */
export const DCOR_ROWS_MAX = 4096;

/** Row-major sample: rows x columns. */
export interface Sample {
  data: ArrayLike<number>;
  rows: number;
  columns: number;
}

function checkSample(s: Sample, name: string): void {
  if (!Number.isInteger(s.rows) || s.rows < 2) {
    throw new RangeError(`${name}: needs at least 2 rows, got ${s.rows}`);
  }
  if (s.rows > DCOR_ROWS_MAX) {
    throw new RangeError(`${name}: ${s.rows} rows exceed ${DCOR_ROWS_MAX} (O(n²) memory)`);
  }
  if (!Number.isInteger(s.columns) || s.columns < 1) {
    throw new RangeError(`${name}: bad column count ${s.columns}`);
  }
  if (s.data.length !== s.rows * s.columns) {
    throw new RangeError(`${name}: ${s.data.length} values for ${s.rows} x ${s.columns}`);
  }
  for (let i = 0; i < s.data.length; i++) {
    if (!Number.isFinite(s.data[i])) {
      throw new RangeError(`${name}: non-finite value at index ${i}`);
    }
  }
}

/** Double-centred Euclidean distance matrix: A_jk = a_jk - mean_j. - mean_.k + mean_.. */
function centredDistances(s: Sample): Float64Array {
  const n = s.rows, d = s.columns;
  const a = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let k = j + 1; k < n; k++) {
      let sum = 0;
      for (let c = 0; c < d; c++) {
        const diff = s.data[j * d + c] - s.data[k * d + c];
        sum += diff * diff;
      }
      const dist = Math.sqrt(sum);
      a[j * n + k] = dist;
      a[k * n + j] = dist;
    }
  }
  // Symmetric, so row means equal column means.
  const rowMean = new Float64Array(n);
  let grand = 0;
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let k = 0; k < n; k++) sum += a[j * n + k];
    rowMean[j] = sum / n;
    grand += sum;
  }
  grand /= n * n;
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) a[j * n + k] += grand - rowMean[j] - rowMean[k];
  }
  return a;
}

export interface DistanceCorrelation {
  /** dCor in [0, 1] (V-statistic, as NoPeek). */
  dcor: number;
  /** Bias-corrected dCor² (Székely & Rizzo 2014, U-centred): ~0 for independent samples even in
   * high dimension, where the V-statistic is far from 0 (0.66 for independent Gaussian 36-dim vs
   * 704-dim samples of 500 rows); may be slightly negative. Needs >= 4 rows, else NaN. */
  dcor2BiasCorrected: number;
  /** dCov²(X, Y), dVar²(X), dVar²(Y) (V-statistics). */
  dcov2: number;
  dvarX2: number;
  dvarY2: number;
  rows: number;
}

/** Exact sample distance correlation of two paired samples (same rows). */
export function distanceCorrelation(x: Sample, y: Sample): DistanceCorrelation {
  checkSample(x, "distance correlation x");
  checkSample(y, "distance correlation y");
  if (x.rows !== y.rows) {
    throw new RangeError(`distance correlation: ${x.rows} rows of x vs ${y.rows} of y`);
  }
  const n = x.rows;
  const A = centredDistances(x);
  const B = centredDistances(y);
  let xy = 0, xx = 0, yy = 0;
  for (let i = 0; i < n * n; i++) {
    xy += A[i] * B[i];
    xx += A[i] * A[i];
    yy += B[i] * B[i];
  }
  const dcov2 = xy / (n * n), dvarX2 = xx / (n * n), dvarY2 = yy / (n * n);
  const dcor2BiasCorrected = biasCorrectedDcor2(x, y);
  // A constant sample has dVar = 0: no dependence can be measured, report 0 as dcor does.
  const denominator = Math.sqrt(dvarX2 * dvarY2);
  const dcor2 = denominator > 0 ? Math.max(0, dcov2) / denominator : 0;
  return {
    dcor: Math.sqrt(Math.min(1, dcor2)),
    dcor2BiasCorrected,
    dcov2,
    dvarX2,
    dvarY2,
    rows: n,
  };
}

/** U-centred distances: Ã_jk = a_jk - a_j./(n-2) - a_.k/(n-2) + a../((n-1)(n-2)), Ã_jj = 0. */
function uCentredDistances(s: Sample): Float64Array {
  const n = s.rows;
  const d = s.columns;
  const a = new Float64Array(n * n);
  const rowSum = new Float64Array(n);
  let total = 0;
  for (let j = 0; j < n; j++) {
    for (let k = j + 1; k < n; k++) {
      let sum = 0;
      for (let c = 0; c < d; c++) {
        const diff = s.data[j * d + c] - s.data[k * d + c];
        sum += diff * diff;
      }
      const dist = Math.sqrt(sum);
      a[j * n + k] = dist;
      a[k * n + j] = dist;
      rowSum[j] += dist;
      rowSum[k] += dist;
      total += 2 * dist;
    }
  }
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) {
      a[j * n + k] = j === k
        ? 0
        : a[j * n + k] - rowSum[j] / (n - 2) - rowSum[k] / (n - 2) + total / ((n - 1) * (n - 2));
    }
  }
  return a;
}

function biasCorrectedDcor2(x: Sample, y: Sample): number {
  const n = x.rows;
  if (n < 4) return NaN;
  const A = uCentredDistances(x);
  const B = uCentredDistances(y);
  let xy = 0, xx = 0, yy = 0;
  for (let i = 0; i < n * n; i++) {
    xy += A[i] * B[i];
    xx += A[i] * A[i];
    yy += B[i] * B[i];
  }
  // The common factor 1 / (n (n - 3)) of the three U-statistics cancels in the ratio.
  const denominator = Math.sqrt(xx * yy);
  return denominator > 0 ? xy / denominator : 0;
}

/** Rows to sample when a caller has more than DCOR_ROWS_MAX (or wants fewer): evenly spaced,
 * deterministic, so the same data gives the same number. */
export function sampleRowIndexes(rows: number, limit: number): Int32Array {
  const n = Math.min(rows, limit);
  return Int32Array.from({ length: n }, (_, i) => Math.floor((i * rows) / n));
}
