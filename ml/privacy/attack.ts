// What an honest-but-curious edge can learn from the activations it receives.
//   Reconstruction: with (raw row, activation) pairs of an auxiliary sample (a colluding device:
//   in SplitFed every device runs the same global device model, so any device can make pairs),
//   the edge trains a decoder activations -> scaled features and applies it to a target sample.
//   Label inference: a logistic regression activations -> attack/normal, trained on the auxiliary
//   sample: what the edge learns about labels even when labels are not sent (U-shaped SL).
// Small tfjs models trained with tf.train.adam, every step in tf.tidy, seeded initialisation.
import * as tf from "@tensorflow/tfjs";
import { rocAuc } from "../metrics/classification.ts";
import { glorotUniform, permutation, prng } from "../model/random.ts";

export const ATTACK_LIMITS = { epochsMax: 1000, hiddenMax: 4096, rowsMax: 200_000 } as const;

export interface AttackOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Decoder hidden units (0 = linear decoder). */
  hidden: number;
  seed: number;
}

export const DEFAULT_ATTACK: AttackOptions = {
  epochs: 40,
  batchSize: 128,
  learningRate: 2e-3,
  hidden: 256,
  seed: 7,
};

/** Row-major matrix. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  columns: number;
}

function checkMatrix(m: Matrix, name: string): void {
  if (
    m.rows < 1 || m.rows > ATTACK_LIMITS.rowsMax || m.columns < 1 ||
    m.data.length !== m.rows * m.columns
  ) {
    throw new RangeError(
      `${name}: ${m.data.length} values for ${m.rows} x ${m.columns} (rows 1..${ATTACK_LIMITS.rowsMax})`,
    );
  }
}

function checkOptions(o: AttackOptions): void {
  if (!Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > ATTACK_LIMITS.epochsMax) {
    throw new RangeError(`attack epochs ${o.epochs}`);
  }
  if (!Number.isInteger(o.hidden) || o.hidden < 0 || o.hidden > ATTACK_LIMITS.hiddenMax) {
    throw new RangeError(`attack hidden ${o.hidden}`);
  }
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
    throw new RangeError(`attack batch size ${o.batchSize}`);
  }
  if (!(o.learningRate > 0 && o.learningRate < 10)) {
    throw new RangeError(`attack learning rate ${o.learningRate}`);
  }
}

/** Column means and standard deviations of the attacker's training input: the decoder sees
 * standardized activations, whatever scale the clipping left them at. A column (nearly) constant
 * on the auxiliary sample (a dead ReLU channel) gets its std floored at 1% of the mean column std:
 * with a tiny std, a target row where that channel fires would be blown up by 1/std and wreck the
 * decoder's output instead of being ignored. */
function standardizer(m: Matrix): { mean: Float32Array; std: Float32Array } {
  const mean = new Float32Array(m.columns), std = new Float32Array(m.columns);
  for (let c = 0; c < m.columns; c++) {
    let s = 0, s2 = 0;
    for (let r = 0; r < m.rows; r++) {
      const v = m.data[r * m.columns + c];
      s += v;
      s2 += v * v;
    }
    mean[c] = s / m.rows;
    std[c] = Math.sqrt(Math.max(s2 / m.rows - mean[c] * mean[c], 0));
  }
  const floor = Math.max(0.01 * (std.reduce((a, b) => a + b, 0) / m.columns), 1e-6);
  for (let c = 0; c < m.columns; c++) std[c] = Math.max(std[c], floor);
  return { mean, std };
}

function kernel(shape: [number, number], seed: number): tf.Variable {
  const init = new Float32Array(shape[0] * shape[1]);
  glorotUniform(init, shape[0], shape[1], prng(seed));
  // In tidy: the initial tensor is freed, the variable (never tracked by tidy) stays.
  return tf.tidy(() => tf.variable(tf.tensor2d(init, shape), true));
}

function bias(size: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zeros([size]), true));
}

function zeros(shape: [number, number]): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zeros(shape), true));
}

function constant(values: Float32Array): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor1d(values), true));
}

const HOLDOUT_SHARE = 0.2;
const STANDARDIZED_ABS_MAX = 20;

function gatherRows(x: Matrix, rows: Int32Array): Float32Array {
  const out = new Float32Array(rows.length * x.columns);
  rows.forEach((r, i) =>
    out.set(x.data.subarray(r * x.columns, (r + 1) * x.columns), i * x.columns)
  );
  return out;
}

function columnMeans(m: Matrix): Float32Array {
  const out = new Float32Array(m.columns);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.columns; c++) out[c] += m.data[r * m.columns + c];
  }
  return out.map((v) => v / m.rows);
}

/** A trained MLP in -> out; call predict, then dispose. */
class Mlp {
  readonly #vars: tf.Variable[];
  readonly #mean: tf.Tensor;
  readonly #std: tf.Tensor;

  constructor(
    readonly input: number,
    readonly hidden: number,
    readonly output: number,
    seed: number,
    stats: { mean: Float32Array; std: Float32Array },
    outputBias: Float32Array,
  ) {
    // Output layer starts at zero weights and the bias at the best constant guess (the target
    // mean, or the base-rate log-odds): before any training the model is the mean guesser, and
    // early stopping can only improve on it.
    this.#vars = hidden > 0
      ? [
        kernel([input, hidden], seed),
        bias(hidden),
        zeros([hidden, output]),
        constant(outputBias),
      ]
      : [zeros([input, output]), constant(outputBias)];
    this.#mean = tf.tensor1d(stats.mean);
    this.#std = tf.tensor1d(stats.std);
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    // Clamped like the preprocessor clamps scaled features: one outlying row must not dominate.
    const z = tf.clipByValue(
      x.sub(this.#mean).div(this.#std),
      -STANDARDIZED_ABS_MAX,
      STANDARDIZED_ABS_MAX,
    ) as tf.Tensor2D;
    const v = this.#vars;
    if (this.hidden === 0) return tf.matMul(z, v[0] as tf.Tensor2D).add(v[1]);
    const h = tf.relu(tf.matMul(z, v[0] as tf.Tensor2D).add(v[1])) as tf.Tensor2D;
    return tf.matMul(h, v[2] as tf.Tensor2D).add(v[3]);
  }

  /** Adam on `loss` over the rows of x, with early stopping: the last HOLDOUT_SHARE of a seeded
   * permutation is held out, and the weights with the lowest held-out loss (the untrained constant
   * guess included) are kept.
   * A real attacker does this too; without it a decoder fed noise overfits and scores worse than
   * guessing the mean, which would understate the leakage. */
  fit(
    x: Matrix,
    loss: (out: tf.Tensor2D, rows: Int32Array) => tf.Scalar,
    options: AttackOptions,
  ): void {
    const optimizer = tf.train.adam(options.learningRate);
    const shuffled = permutation(x.rows, options.seed);
    const holdoutRows = x.rows >= 20 ? Math.floor(x.rows * HOLDOUT_SHARE) : 0;
    const fitRows = shuffled.subarray(0, x.rows - holdoutRows);
    const holdout = shuffled.subarray(x.rows - holdoutRows);
    const holdoutInput = gatherRows(x, holdout);
    let best = Infinity;
    let bestWeights: tf.Tensor[] | null = null;
    const heldOutLoss = () => {
      const held = tf.tidy(() =>
        loss(this.forward(tf.tensor2d(holdoutInput, [holdout.length, x.columns])), holdout)
      );
      const value = held.dataSync()[0];
      held.dispose();
      return value;
    };
    const keepIfBest = (value: number) => {
      if (!(value < best)) return;
      best = value;
      if (bestWeights) tf.dispose(bestWeights);
      bestWeights = this.#vars.map((v) => tf.keep(v.clone()));
    };
    try {
      if (holdout.length > 0) keepIfBest(heldOutLoss());
      for (let epoch = 0; epoch < options.epochs; epoch++) {
        const order = permutation(fitRows.length, options.seed + 1 + epoch);
        for (let start = 0; start < fitRows.length; start += options.batchSize) {
          const rows = Int32Array.from(
            order.subarray(start, Math.min(start + options.batchSize, fitRows.length)),
            (i) => fitRows[i],
          );
          const batch = gatherRows(x, rows);
          tf.tidy(() => {
            const input = tf.tensor2d(batch, [rows.length, x.columns]);
            optimizer.minimize(() => loss(this.forward(input), rows), false, this.#vars);
          });
        }
        if (holdout.length > 0) keepIfBest(heldOutLoss());
      }
      const kept = bestWeights as tf.Tensor[] | null;
      if (kept) this.#vars.forEach((v, k) => v.assign(kept[k]));
    } finally {
      if (bestWeights) tf.dispose(bestWeights);
      optimizer.dispose();
    }
  }

  predict(x: Matrix): Float32Array {
    const out = tf.tidy(() => this.forward(tf.tensor2d(x.data, [x.rows, x.columns])));
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  }

  dispose(): void {
    tf.dispose([...this.#vars, this.#mean, this.#std]);
  }
}

/** Trains the decoder on (auxActs -> auxRaw) and returns its reconstruction of targetActs'
 * rows (scaled feature space, [targetRows, rawColumns]). */
export function reconstruct(
  auxActs: Matrix,
  auxRaw: Matrix,
  targetActs: Matrix,
  options: AttackOptions = DEFAULT_ATTACK,
): Float32Array {
  checkMatrix(auxActs, "decoder input");
  checkMatrix(auxRaw, "decoder target");
  checkMatrix(targetActs, "attacked activations");
  checkOptions(options);
  if (auxActs.rows !== auxRaw.rows) {
    throw new RangeError(`decoder: ${auxActs.rows} activation rows vs ${auxRaw.rows} raw rows`);
  }
  if (targetActs.columns !== auxActs.columns) {
    throw new RangeError(`decoder: ${targetActs.columns} vs ${auxActs.columns} activation columns`);
  }
  const mlp = new Mlp(
    auxActs.columns,
    options.hidden,
    auxRaw.columns,
    options.seed,
    standardizer(auxActs),
    columnMeans(auxRaw),
  );
  try {
    mlp.fit(auxActs, (out, rows) => {
      const target = new Float32Array(rows.length * auxRaw.columns);
      rows.forEach((r, i) =>
        target.set(
          auxRaw.data.subarray(r * auxRaw.columns, (r + 1) * auxRaw.columns),
          i * auxRaw.columns,
        )
      );
      return tf.losses.meanSquaredError(
        tf.tensor2d(target, [rows.length, auxRaw.columns]),
        out,
      ) as tf.Scalar;
    }, options);
    return mlp.predict(targetActs);
  } finally {
    mlp.dispose();
  }
}

/** Logistic regression activations -> P(attack) trained on the auxiliary sample; scores for the
 * target sample. */
export function inferLabels(
  auxActs: Matrix,
  auxIsAttack: Int32Array,
  targetActs: Matrix,
  options: AttackOptions = DEFAULT_ATTACK,
): Float32Array {
  checkMatrix(auxActs, "label inference input");
  checkMatrix(targetActs, "label inference target");
  checkOptions(options);
  if (auxIsAttack.length !== auxActs.rows) {
    throw new RangeError(`label inference: ${auxIsAttack.length} labels for ${auxActs.rows} rows`);
  }
  const rate = Math.min(
    Math.max(auxIsAttack.reduce((n, y) => n + y, 0) / auxIsAttack.length, 1e-3),
    1 - 1e-3,
  );
  const mlp = new Mlp(
    auxActs.columns,
    0,
    1,
    options.seed + 17,
    standardizer(auxActs),
    Float32Array.of(Math.log(rate / (1 - rate))),
  );
  try {
    mlp.fit(auxActs, (out, rows) => {
      const y = tf.tensor2d(Float32Array.from(rows, (r) => auxIsAttack[r]), [rows.length, 1]);
      return tf.losses.sigmoidCrossEntropy(y, out) as tf.Scalar;
    }, options);
    return mlp.predict(targetActs).map((z) => 1 / (1 + Math.exp(-z)));
  } finally {
    mlp.dispose();
  }
}

export interface LabelInference {
  auc: number;
  /** At threshold 0.5. */
  accuracy: number;
  /** Accuracy of always guessing the auxiliary sample's majority class. */
  majorityAccuracy: number;
}

export function labelInferenceMetrics(
  scores: Float32Array,
  isAttack: Int32Array,
  auxIsAttack: Int32Array,
): LabelInference {
  let correct = 0, attacks = 0, auxAttacks = 0;
  for (let i = 0; i < scores.length; i++) {
    if ((scores[i] >= 0.5 ? 1 : 0) === isAttack[i]) correct++;
    attacks += isAttack[i];
  }
  for (const y of auxIsAttack) auxAttacks += y;
  const majority = auxAttacks * 2 > auxIsAttack.length ? attacks : scores.length - attacks;
  return {
    auc: rocAuc(scores, isAttack),
    accuracy: correct / scores.length,
    majorityAccuracy: majority / scores.length,
  };
}

/** Per-value variance under which a column counts as constant for normalized MSE (scaled
 * features have unit variance on the training split). */
export const NMSE_VARIANCE_MIN = 1e-3;

/** Per-column normalized MSE: MSE(reconstruction, truth) / Var(truth). 1 = no better than
 * guessing the column mean; 0 = exact. (Nearly) constant columns get NaN. */
export function normalizedMse(truth: Matrix, guess: Float32Array): Float64Array {
  checkMatrix(truth, "normalized MSE truth");
  if (guess.length !== truth.data.length) {
    throw new RangeError(`normalized MSE: ${guess.length} vs ${truth.data.length} values`);
  }
  const out = new Float64Array(truth.columns);
  for (let c = 0; c < truth.columns; c++) {
    let mean = 0;
    for (let r = 0; r < truth.rows; r++) mean += truth.data[r * truth.columns + c];
    mean /= truth.rows;
    let variance = 0, mse = 0;
    for (let r = 0; r < truth.rows; r++) {
      const t = truth.data[r * truth.columns + c];
      variance += (t - mean) ** 2;
      mse += (guess[r * truth.columns + c] - t) ** 2;
    }
    // Below this the column is (nearly) constant in the sample, e.g. a rare one-hot value: its
    // nMSE would divide by ~0 and mean nothing.
    out[c] = variance / truth.rows >= NMSE_VARIANCE_MIN ? mse / variance : NaN;
  }
  return out;
}
