// Detection metrics. Scores are P(attack) per row; the decision threshold is chosen on the
// validation split (chooseThreshold) and only applied to the test split.

export interface BinaryMetrics {
  threshold: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** False positive rate: normal flows flagged as attacks / all normal flows. */
  fpr: number;
  rocAuc: number;
  /** [[TN, FP], [FN, TP]] (rows: true class normal/attack). */
  confusion: [[number, number], [number, number]];
  support: { normal: number; attack: number };
}

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface MulticlassMetrics {
  accuracy: number;
  macroF1: number;
  /** confusion[true][predicted] */
  confusion: number[][];
  perClass: ClassMetrics[];
}

export interface ClassificationReport {
  rows: number;
  /** Normal vs any attack, at the validation-chosen threshold. */
  binary: BinaryMetrics;
  /** Present when the model has more than two classes (argmax decision). */
  multiclass?: MulticlassMetrics;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
const f1Of = (p: number, r: number) => (p + r > 0 ? (2 * p * r) / (p + r) : 0);

function checkInputs(
  scores: Float32Array | Float64Array,
  isAttack: Uint8Array | Int32Array,
  where: string,
) {
  if (scores.length !== isAttack.length) {
    throw new Error(`${where}: ${scores.length} scores for ${isAttack.length} labels`);
  }
  if (scores.length === 0) throw new Error(`${where}: no rows to evaluate`);
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new Error(`${where}: score ${scores[i]} at row ${i}`);
  }
}

/** ROC-AUC by the rank statistic (ties get average rank). 0.5 when one class is absent. */
export function rocAuc(
  scores: Float32Array | Float64Array,
  isAttack: Uint8Array | Int32Array,
): number {
  checkInputs(scores, isAttack, "rocAuc");
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (isAttack[order[k]]) {
        positives++;
        rankSum += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return 0.5;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Metrics for "attack if score >= threshold". */
export function binaryMetrics(
  scores: Float32Array | Float64Array,
  isAttack: Uint8Array | Int32Array,
  threshold: number,
): BinaryMetrics {
  checkInputs(scores, isAttack, "binaryMetrics");
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const predicted = scores[i] >= threshold;
    if (isAttack[i]) predicted ? tp++ : fn++;
    else predicted ? fp++ : tn++;
  }
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    threshold,
    accuracy: ratio(tp + tn, scores.length),
    precision,
    recall,
    f1: f1Of(precision, recall),
    fpr: ratio(fp, fp + tn),
    rocAuc: rocAuc(scores, isAttack),
    confusion: [[tn, fp], [fn, tp]],
    support: { normal: tn + fp, attack: tp + fn },
  };
}

/** Threshold maximising F1 on (validation) scores; ties go to the threshold nearest 0.5.
 * Candidates are midpoints between consecutive distinct scores. */
export function chooseThreshold(
  scores: Float32Array | Float64Array,
  isAttack: Uint8Array | Int32Array,
): number {
  checkInputs(scores, isAttack, "chooseThreshold");
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const totalPositives = order.reduce((s, i) => s + (isAttack[i] ? 1 : 0), 0);
  if (totalPositives === 0 || totalPositives === n) return 0.5;
  let best = 0.5;
  let bestF1 = -1;
  let tp = 0, fp = 0;
  for (let k = 0; k < n; k++) {
    isAttack[order[k]] ? tp++ : fp++;
    const current = scores[order[k]];
    const next = k + 1 < n ? scores[order[k + 1]] : -Infinity;
    if (next === current) continue; // threshold must fall between distinct scores
    const threshold = Number.isFinite(next) ? (current + next) / 2 : current;
    const f1 = f1Of(ratio(tp, tp + fp), ratio(tp, totalPositives));
    if (
      f1 > bestF1 + 1e-12 ||
      (Math.abs(f1 - bestF1) <= 1e-12 && Math.abs(threshold - 0.5) < Math.abs(best - 0.5))
    ) {
      bestF1 = f1;
      best = threshold;
    }
  }
  return best;
}

/** Argmax metrics from row-major probabilities [rows, classes]. */
export function multiclassMetrics(
  probabilities: Float32Array,
  labels: Int32Array,
  classNames: readonly string[],
): MulticlassMetrics {
  const classes = classNames.length;
  const rows = labels.length;
  if (probabilities.length !== rows * classes) {
    throw new Error(
      `multiclassMetrics: ${probabilities.length} probabilities for ${rows} x ${classes}`,
    );
  }
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    let arg = 0;
    for (let c = 1; c < classes; c++) {
      if (probabilities[r * classes + c] > probabilities[r * classes + arg]) arg = c;
    }
    confusion[labels[r]][arg]++;
    if (arg === labels[r]) correct++;
  }
  const perClass = classNames.map((name, c) => {
    const tp = confusion[c][c];
    const predicted = confusion.reduce((s, row) => s + row[c], 0);
    const support = confusion[c].reduce((s, v) => s + v, 0);
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    return { name, precision, recall, f1: f1Of(precision, recall), support };
  });
  const present = perClass.filter((m) => m.support > 0);
  return {
    accuracy: ratio(correct, rows),
    macroF1: present.reduce((s, m) => s + m.f1, 0) / Math.max(present.length, 1),
    confusion,
    perClass,
  };
}

/** P(attack) = 1 - P(normal) from probabilities [rows, classes]. */
export function attackScores(probabilities: Float32Array, classes: number): Float32Array {
  const rows = probabilities.length / classes;
  const scores = new Float32Array(rows);
  for (let r = 0; r < rows; r++) scores[r] = 1 - probabilities[r * classes];
  return scores;
}

export function formatReport(report: ClassificationReport): string {
  const b = report.binary;
  const pct = (v: number) => (100 * v).toFixed(2);
  return `acc=${pct(b.accuracy)}% prec=${pct(b.precision)}% rec=${pct(b.recall)}% f1=${
    pct(b.f1)
  }% ` +
    `fpr=${pct(b.fpr)}% auc=${b.rocAuc.toFixed(4)} thr=${b.threshold.toFixed(3)} ` +
    `cm=[[${b.confusion[0]}],[${b.confusion[1]}]]` +
    (report.multiclass ? ` macroF1=${pct(report.multiclass.macroF1)}%` : "");
}
