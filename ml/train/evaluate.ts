// Inference over a LabeledMatrix, the per-round report, and the validators' scoring of a flat
// device-side weight vector.
import * as tf from "@tensorflow/tfjs";
import type { LabeledMatrix } from "../data/types.ts";
import type { ModelConfig } from "../model/config.ts";
import { assertFlatParams, firstNonFinite } from "../model/params.ts";
import {
  deviceForward,
  deviceLayout,
  edgeForward,
  edgeLayout,
  ParamSet,
  probabilities,
} from "../model/split_model.ts";
import {
  attackScores,
  binaryMetrics,
  chooseThreshold,
  type ClassificationReport,
  multiclassMetrics,
} from "../metrics/classification.ts";
import { checkMatrixForModel } from "./batches.ts";

export const PREDICT_BATCH_ROWS = 1024;

/** Holds one model's parameters as tensors; predicts class probabilities. */
export class Predictor {
  readonly #device: ParamSet;
  readonly #edge: ParamSet;

  constructor(readonly config: ModelConfig, device: Float32Array, edge: Float32Array) {
    assertFlatParams(device, deviceLayout(config), "predictor: device parameters");
    assertFlatParams(edge, edgeLayout(config), "predictor: edge parameters");
    this.#device = new ParamSet(deviceLayout(config), device);
    this.#edge = new ParamSet(edgeLayout(config), edge);
  }

  setParams(device: Float32Array, edge: Float32Array): void {
    assertFlatParams(device, this.#device.layout, "predictor: device parameters");
    assertFlatParams(edge, this.#edge.layout, "predictor: edge parameters");
    this.#device.assign(device);
    this.#edge.assign(edge);
  }

  /** Row-major probabilities [rows, max(2, classes)]; column 0 is P(normal). */
  probabilities(features: Float32Array, rows: number): Float32Array {
    const columns = this.config.features;
    if (features.length !== rows * columns) {
      throw new Error(`predict: ${features.length} values for ${rows} rows x ${columns} features`);
    }
    const bad = firstNonFinite(features);
    if (bad >= 0) {
      throw new Error(
        `predict: non-finite value ${features[bad]} at row ${Math.floor(bad / columns)}, column ${
          bad % columns
        }`,
      );
    }
    const classes = Math.max(2, this.config.classes);
    const out = new Float32Array(rows * classes);
    for (let start = 0; start < rows; start += PREDICT_BATCH_ROWS) {
      const n = Math.min(PREDICT_BATCH_ROWS, rows - start);
      const p = tf.tidy(() => {
        const x = tf.tensor2d(features.subarray(start * columns, (start + n) * columns), [
          n,
          columns,
        ]);
        const smashed = deviceForward(this.config, this.#device.tensors, x);
        return probabilities(this.config, edgeForward(this.config, this.#edge.tensors, smashed));
      });
      out.set(p.dataSync() as Float32Array, start * classes);
      p.dispose();
    }
    return out;
  }

  dispose(): void {
    this.#device.dispose();
    this.#edge.dispose();
  }
}

/** Mean cross-entropy and accuracy (argmax) of probabilities against model-space labels. */
export function lossAndAccuracy(
  probs: Float32Array,
  labels: Int32Array,
  classes: number,
): { loss: number; accuracy: number } {
  let loss = 0;
  let correct = 0;
  for (let r = 0; r < labels.length; r++) {
    const row = probs.subarray(r * classes, (r + 1) * classes);
    loss -= Math.log(Math.max(row[labels[r]], 1e-7));
    let arg = 0;
    for (let c = 1; c < classes; c++) if (row[c] > row[arg]) arg = c;
    if (arg === labels[r]) correct++;
  }
  return { loss: loss / labels.length, accuracy: correct / labels.length };
}

/** For validators: loss and accuracy of a device-side weight vector (with the round's edge
 * weights) on a validation sample, scored in chunks of `chunkRows` with `pause()` awaited between
 * them so that the event loop keeps serving consensus messages. The same numbers on every
 * validator that uses the same chunk size. Throws naming the problem when the vector or the sample
 * does not fit. */
export async function evaluateFlatInChunks(
  config: ModelConfig,
  device: Float32Array,
  edge: Float32Array,
  sample: LabeledMatrix,
  chunkRows: number,
  pause: () => Promise<void>,
): Promise<{ loss: number; accuracy: number; rows: number }> {
  if (!Number.isInteger(chunkRows) || chunkRows < 1 || chunkRows > PREDICT_BATCH_ROWS) {
    throw new Error(`evaluate: chunkRows ${chunkRows} outside 1..${PREDICT_BATCH_ROWS}`);
  }
  const labels = checkMatrixForModel(config, sample, "validation sample");
  const classes = Math.max(2, config.classes);
  const columns = config.features;
  const probs = new Float32Array(sample.rows * classes);
  const predictor = new Predictor(config, device, edge);
  try {
    for (let start = 0; start < sample.rows; start += chunkRows) {
      if (start > 0) await pause();
      const n = Math.min(chunkRows, sample.rows - start);
      const features = sample.features.subarray(start * columns, (start + n) * columns);
      probs.set(predictor.probabilities(features, n), start * classes);
    }
  } finally {
    predictor.dispose();
  }
  return { ...lossAndAccuracy(probs, labels, classes), rows: sample.rows };
}

/** Threshold on validation, metrics on test. */
export interface SplitsEvaluation {
  threshold: number;
  validationLoss: number;
  test: ClassificationReport;
}

export function evaluateSplits(
  predictor: Predictor,
  validation: LabeledMatrix,
  test: LabeledMatrix,
): SplitsEvaluation {
  const config = predictor.config;
  const validationLabels = checkMatrixForModel(config, validation, "validation split");
  const testLabels = checkMatrixForModel(config, test, "test split");
  return splitsEvaluation(
    config,
    validationLabels,
    predictor.probabilities(validation.features, validation.rows),
    test,
    testLabels,
    predictor.probabilities(test.features, test.rows),
  );
}

/** evaluateSplits with `pause()` awaited between blocks of PREDICT_BATCH_ROWS rows, so that a
 * server keeps answering while it scores. The blocks are the ones `probabilities` uses, so the
 * numbers are bit-identical to evaluateSplits. */
export async function evaluateSplitsPausing(
  predictor: Predictor,
  validation: LabeledMatrix,
  test: LabeledMatrix,
  pause: () => Promise<void>,
): Promise<SplitsEvaluation> {
  const config = predictor.config;
  const validationLabels = checkMatrixForModel(config, validation, "validation split");
  const testLabels = checkMatrixForModel(config, test, "test split");
  const validationProbs = await probabilitiesPausing(predictor, validation, pause);
  const testProbs = await probabilitiesPausing(predictor, test, pause);
  return splitsEvaluation(config, validationLabels, validationProbs, test, testLabels, testProbs);
}

async function probabilitiesPausing(
  predictor: Predictor,
  matrix: LabeledMatrix,
  pause: () => Promise<void>,
): Promise<Float32Array> {
  const columns = predictor.config.features;
  const classes = Math.max(2, predictor.config.classes);
  const out = new Float32Array(matrix.rows * classes);
  for (let start = 0; start < matrix.rows; start += PREDICT_BATCH_ROWS) {
    await pause();
    const n = Math.min(PREDICT_BATCH_ROWS, matrix.rows - start);
    const features = matrix.features.subarray(start * columns, (start + n) * columns);
    out.set(predictor.probabilities(features, n), start * classes);
  }
  return out;
}

function splitsEvaluation(
  config: ModelConfig,
  validationLabels: Int32Array,
  validationProbs: Float32Array,
  test: LabeledMatrix,
  testLabels: Int32Array,
  testProbs: Float32Array,
): SplitsEvaluation {
  const classes = Math.max(2, config.classes);
  const threshold = chooseThreshold(
    attackScores(validationProbs, classes),
    validationLabels.map((y) => (y > 0 ? 1 : 0)),
  );
  return {
    threshold,
    validationLoss: lossAndAccuracy(validationProbs, validationLabels, classes).loss,
    test: buildReport(config, testProbs, testLabels, test.classNames, threshold),
  };
}

export function buildReport(
  config: ModelConfig,
  probs: Float32Array,
  labels: Int32Array,
  classNames: readonly string[],
  threshold: number,
): ClassificationReport {
  const classes = Math.max(2, config.classes);
  const binary = binaryMetrics(
    attackScores(probs, classes),
    labels.map((y) => (y > 0 ? 1 : 0)),
    threshold,
  );
  return {
    rows: labels.length,
    binary,
    multiclass: config.classes > 2 ? multiclassMetrics(probs, labels, classNames) : undefined,
  };
}
