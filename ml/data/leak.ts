// Leak guard: how well does each column, alone, predict the label on the training split?
// A column that reaches the threshold by itself is an identifier or a label in disguise (SrcMac
// in WUSTL-EHMS), and a model trained on it reports a figure that says nothing about attacks.
//
// Method: a seeded sample of training rows is cut into a fit part (2/3) and a held-out part
// (1/3). The column is discretised (categorical values as they are; numeric values into up to
// 256 quantile bins; missing as its own bin). Each bin predicts the majority class of its fit
// rows. We score the held-out part with balanced accuracy (so a 95%-normal set does not make
// every column look perfect) for normal-vs-attack and for all classes, and with the AUC of the
// bin's attack rate. The column's score is the largest of the three.
import { Rng } from "./random.ts";
import type { RawColumn, RawTable } from "./table.ts";

export const LEAK_THRESHOLD = 0.99;
/** Below this many training rows the held-out part is too small: a column would reach the
 * threshold by chance, so the guard reports "not measured" instead of false alarms. */
export const LEAK_TRAIN_ROWS_MIN = 300;
const LEAK_SAMPLE_ROWS_MAX = 100_000;
const NUMERIC_BINS_MAX = 256;

export interface LeakFinding {
  column: string;
  kind: "numeric" | "categorical";
  /** Held-out balanced accuracy, normal vs attack. */
  binaryBalancedAccuracy: number;
  /** Held-out balanced accuracy over all classes (equals the binary one with two classes). */
  multiclassBalancedAccuracy: number;
  /** Held-out AUC of the bin's attack rate, normal vs attack. */
  auc: number;
  score: number;
  leaky: boolean;
}

/** Measures every column of the table on the given training rows; highest score first. */
export function measureLeaks(
  table: RawTable,
  trainRows: Int32Array,
  seed: number,
  threshold = LEAK_THRESHOLD,
): LeakFinding[] {
  const rng = new Rng(seed ^ 0x1ea4);
  let sample = Array.from(trainRows);
  if (sample.length > LEAK_SAMPLE_ROWS_MAX) {
    sample = rng.shuffle(sample).slice(0, LEAK_SAMPLE_ROWS_MAX);
  } else rng.shuffle(sample);
  const fitCount = Math.ceil(sample.length * 2 / 3);
  const fit = Int32Array.from(sample.slice(0, fitCount));
  const held = Int32Array.from(sample.slice(fitCount));
  const findings: LeakFinding[] = [];
  if (trainRows.length < LEAK_TRAIN_ROWS_MIN) return findings;
  const classes = table.classNames.length;
  for (const column of table.columns) {
    const bins = discretise(column, fit);
    const fitBins = new Int32Array(fit.length);
    for (let i = 0; i < fit.length; i++) fitBins[i] = bins(fit[i]);
    const heldBins = new Int32Array(held.length);
    for (let i = 0; i < held.length; i++) heldBins[i] = bins(held[i]);
    let binCount = 1;
    for (const bin of fitBins) if (bin >= binCount) binCount = bin + 1;
    for (const bin of heldBins) if (bin >= binCount) binCount = bin + 1;
    const counts = new Float64Array(binCount * classes);
    const overall = new Float64Array(classes);
    for (let i = 0; i < fit.length; i++) {
      counts[fitBins[i] * classes + table.labels[fit[i]]]++;
      overall[table.labels[fit[i]]]++;
    }
    const majority = (values: ArrayLike<number>, offset: number, stride: number) => {
      let best = -1;
      let bestCount = 0;
      for (let c = 0; c < stride; c++) {
        if (values[offset + c] > bestCount) {
          bestCount = values[offset + c];
          best = c;
        }
      }
      return best;
    };
    const fallback = majority(overall, 0, classes);
    const fitTotal = fit.length;
    const overallAttackRate = (fitTotal - overall[0]) / fitTotal;
    const predicted = new Int32Array(held.length);
    const score = new Float64Array(held.length);
    for (let i = 0; i < held.length; i++) {
      const bin = heldBins[i];
      const found = majority(counts, bin * classes, classes);
      predicted[i] = found < 0 ? fallback : found;
      let total = 0;
      for (let c = 0; c < classes; c++) total += counts[bin * classes + c];
      score[i] = total > 0 ? (total - counts[bin * classes]) / total : overallAttackRate;
    }
    const truth = new Int32Array(held.length);
    for (let i = 0; i < held.length; i++) truth[i] = table.labels[held[i]];
    const binaryBalancedAccuracy = balancedAccuracy(
      truth.map((t) => (t === 0 ? 0 : 1)),
      predicted.map((p) => (p === 0 ? 0 : 1)),
      2,
    );
    const multiclassBalancedAccuracy = classes > 2
      ? balancedAccuracy(truth, predicted, classes)
      : binaryBalancedAccuracy;
    const auc = groupedAuc(score, truth);
    const best = Math.max(binaryBalancedAccuracy, multiclassBalancedAccuracy, auc);
    findings.push({
      column: column.name,
      kind: column.kind,
      binaryBalancedAccuracy,
      multiclassBalancedAccuracy,
      auc,
      score: best,
      leaky: best >= threshold,
    });
  }
  return findings.sort((a, b) => b.score - a.score || a.column.localeCompare(b.column));
}

/** Maps a row to a bin index; bins are fit on the fit rows only. */
function discretise(column: RawColumn, fit: Int32Array): (row: number) => number {
  if (column.kind === "categorical") return (row) => column.codes[row];
  const values = column.values;
  const gathered = new Float64Array(fit.length);
  let count = 0;
  for (const row of fit) {
    const v = values[row];
    if (!Number.isNaN(v)) gathered[count++] = v;
  }
  const present = gathered.subarray(0, count).sort();
  const edges: number[] = [];
  for (let b = 1; b < NUMERIC_BINS_MAX; b++) {
    const edge = present[Math.floor((b * present.length) / NUMERIC_BINS_MAX)];
    if (edge !== undefined && (edges.length === 0 || edge > edges[edges.length - 1])) {
      edges.push(edge);
    }
  }
  const missingBin = edges.length + 1;
  return (row) => {
    const v = values[row];
    if (Number.isNaN(v)) return missingBin;
    let lo = 0;
    let hi = edges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (v < edges[mid]) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/** Mean recall over the classes present in truth. */
export function balancedAccuracy(
  truth: ArrayLike<number>,
  predicted: ArrayLike<number>,
  classes: number,
): number {
  const hits = new Float64Array(classes);
  const totals = new Float64Array(classes);
  for (let i = 0; i < truth.length; i++) {
    totals[truth[i]]++;
    if (truth[i] === predicted[i]) hits[truth[i]]++;
  }
  let sum = 0;
  let present = 0;
  for (let c = 0; c < classes; c++) {
    if (totals[c] === 0) continue;
    sum += hits[c] / totals[c];
    present++;
  }
  return present === 0 ? 0 : sum / present;
}

/** AUC of score for attack (label != 0) vs normal, ties counted half; 0.5 when one side is empty. */
export function rocAuc(score: ArrayLike<number>, labels: ArrayLike<number>): number {
  const order = Array.from({ length: score.length }, (_, i) => i).sort((a, b) =>
    score[a] - score[b]
  );
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0) positives++;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return 0.5;
  let rankSum = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && score[order[j + 1]] === score[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[order[k]] !== 0) rankSum += rank;
    i = j + 1;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** rocAuc for scores with few distinct values (one per bin): counts per score, no row sort. */
function groupedAuc(score: Float64Array, labels: Int32Array): number {
  const groups = new Map<number, [number, number]>();
  for (let i = 0; i < score.length; i++) {
    let group = groups.get(score[i]);
    if (!group) groups.set(score[i], group = [0, 0]);
    group[labels[i] !== 0 ? 0 : 1]++;
  }
  let positives = 0;
  let negatives = 0;
  for (const [p, n] of groups.values()) {
    positives += p;
    negatives += n;
  }
  if (positives === 0 || negatives === 0) return 0.5;
  let area = 0;
  let negativesBelow = 0;
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const [p, n] = groups.get(key)!;
    area += p * (negativesBelow + n / 2);
    negativesBelow += n;
  }
  return area / (positives * negatives);
}
