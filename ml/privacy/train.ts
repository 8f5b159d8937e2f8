// Split training of one device against one edge with an ActivationProtection in the loop, for the
// privacy audit and the privacy-utility table. It mirrors ml/train/split_step.ts step for step
// (the edge sees only the released tensor, copied as the wire would; the device backpropagates
// the edge's gradient through the differentiable part of the protection plus its extra loss), so
// it is also the reference for integrating protection into the round loop (docs/privacy.md).
import * as tf from "@tensorflow/tfjs";
import type { LabeledMatrix } from "../data/types.ts";
import { type ModelConfig, validateModelConfig } from "../model/config.ts";
import { deriveSeed } from "../model/random.ts";
import {
  deviceForward,
  deviceLayout,
  edgeForward,
  edgeLayout,
  initParams,
  lossFromLogits,
  ParamSet,
  probabilities,
} from "../model/split_model.ts";
import {
  attackScores,
  type BinaryMetrics,
  binaryMetrics,
  chooseThreshold,
} from "../metrics/classification.ts";
import { Adam } from "../train/adam.ts";
import { checkMatrixForModel, shuffledBatches } from "../train/batches.ts";
import type { ActivationProtection } from "./protection.ts";

export const PRIVACY_TRAINING_LIMITS = {
  epochsMax: 100,
  batchSizeMax: 1024,
  predictRows: 1024,
} as const;

export interface PrivacyTrainingOptions {
  model: ModelConfig;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
}

export interface TrainedSplitModel {
  device: Float32Array;
  edge: Float32Array;
  steps: number;
  lossMean: number;
  /** How many times each training row's activations went to the edge (once per epoch). */
  releasesPerRow: number;
}

function validate(options: PrivacyTrainingOptions): void {
  validateModelConfig(options.model);
  const { epochs, batchSize, learningRate } = options;
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > PRIVACY_TRAINING_LIMITS.epochsMax) {
    throw new RangeError(`epochs ${epochs} outside 1..${PRIVACY_TRAINING_LIMITS.epochsMax}`);
  }
  if (
    !Number.isInteger(batchSize) || batchSize < 2 ||
    batchSize > PRIVACY_TRAINING_LIMITS.batchSizeMax
  ) {
    // >= 2: distance correlation (NoPeek) needs pairs.
    throw new RangeError(
      `batch size ${batchSize} outside 2..${PRIVACY_TRAINING_LIMITS.batchSizeMax}`,
    );
  }
  if (!(learningRate > 0 && learningRate < 10)) {
    throw new RangeError(`learning rate ${learningRate}`);
  }
}

/** Trains a fresh split model on `data` with `protection` applied to every release. */
export function trainProtected(
  data: LabeledMatrix,
  protection: ActivationProtection,
  options: PrivacyTrainingOptions,
): TrainedSplitModel {
  validate(options);
  const config = options.model;
  const labels = checkMatrixForModel(config, data, "privacy training data");
  const device = new ParamSet(
    deviceLayout(config),
    initParams(deviceLayout(config), deriveSeed(options.seed, 1)),
  );
  const edge = new ParamSet(
    edgeLayout(config),
    initParams(edgeLayout(config), deriveSeed(options.seed, 2)),
  );
  const deviceOptimizer = new Adam(device, { learningRate: options.learningRate });
  const edgeOptimizer = new Adam(edge, { learningRate: options.learningRate });
  let steps = 0;
  let lossSum = 0;
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      for (
        const batch of shuffledBatches(
          data,
          labels,
          options.batchSize,
          deriveSeed(options.seed, 0x9a7, epoch),
        )
      ) {
        // A last batch of one row cannot feed NoPeek's pairwise distances; it is 1 row in an epoch.
        if (batch.rows < 2) continue;
        const x = tf.tensor2d(batch.features, [batch.rows, config.features]);
        const y = tf.tensor1d(batch.labels, "int32");
        try {
          // Device: forward and release. The edge gets a copy of the values, as over the wire.
          const released = tf.tidy(() =>
            protection.transform(deviceForward(config, device.tensors, x), steps)
          );
          const smashed = tf.tensor3d(released.dataSync() as Float32Array, released.shape);
          released.dispose();
          // Edge: loss and gradients of its weights and of the activations it received.
          const edgeStep = tf.engine().gradients(
            () => lossFromLogits(config, edgeForward(config, edge.tensors, smashed), y),
            [smashed, ...edge.tensors],
          );
          smashed.dispose();
          const loss = edgeStep.value.dataSync()[0];
          edgeStep.value.dispose();
          const [dSmashed, ...edgeGrads] = edgeStep.grads;
          try {
            if (!Number.isFinite(loss)) {
              throw new Error(`privacy training: loss is ${loss} at step ${steps}`);
            }
            edgeOptimizer.apply(edgeGrads, "privacy training: edge update");
            // Device: vjp of the released activations with the edge's gradient, plus the extra
            // (NoPeek) loss; sum(r * g) has gradient g w.r.t. r, so one tape does both.
            const deviceStep = tf.engine().gradients(() => {
              const acts = deviceForward(config, device.tensors, x);
              const surrogate = protection.differentiable(acts).mul(dSmashed).sum() as tf.Scalar;
              const extra = protection.extraDeviceLoss?.(x, acts);
              return extra ? surrogate.add(extra) as tf.Scalar : surrogate;
            }, device.tensors);
            deviceStep.value.dispose();
            try {
              deviceOptimizer.apply(deviceStep.grads, "privacy training: device update");
            } finally {
              tf.dispose(deviceStep.grads);
            }
          } finally {
            tf.dispose([dSmashed, ...edgeGrads]);
          }
          lossSum += loss;
          steps++;
        } finally {
          tf.dispose([x, y]);
        }
      }
    }
    return {
      device: device.read(),
      edge: edge.read(),
      steps,
      lossMean: lossSum / Math.max(steps, 1),
      releasesPerRow: options.epochs,
    };
  } finally {
    deviceOptimizer.dispose();
    edgeOptimizer.dispose();
    device.dispose();
    edge.dispose();
  }
}

/** Released activations (flattened rows [rows, steps * filters]) of `features` under the device
 * model and protection: what the edge receives for these rows. */
export function releasedActivations(
  config: ModelConfig,
  deviceParams: Float32Array,
  protection: ActivationProtection,
  features: Float32Array,
  rows: number,
): { data: Float32Array; width: number } {
  if (features.length !== rows * config.features) {
    throw new Error(
      `released activations: ${features.length} values for ${rows} x ${config.features}`,
    );
  }
  const device = new ParamSet(deviceLayout(config), deviceParams);
  try {
    let out: Float32Array | null = null;
    let width = 0;
    for (let start = 0; start < rows; start += PRIVACY_TRAINING_LIMITS.predictRows) {
      const n = Math.min(PRIVACY_TRAINING_LIMITS.predictRows, rows - start);
      const released = tf.tidy(() => {
        const x = tf.tensor2d(
          features.subarray(start * config.features, (start + n) * config.features),
          [n, config.features],
        );
        return protection.transform(deviceForward(config, device.tensors, x), start).reshape([
          n,
          -1,
        ]);
      });
      width = released.shape[1]!;
      out ??= new Float32Array(rows * width);
      out.set(released.dataSync() as Float32Array, start * width);
      released.dispose();
    }
    return { data: out!, width };
  } finally {
    device.dispose();
  }
}

/** Detection quality with the protection applied at inference too (detection traffic goes to the
 * edge the same way): threshold chosen on validation, metrics on test. */
export function evaluateProtected(
  config: ModelConfig,
  model: { device: Float32Array; edge: Float32Array },
  protection: ActivationProtection,
  validation: LabeledMatrix,
  test: LabeledMatrix,
): BinaryMetrics {
  const scores = (m: LabeledMatrix, where: string) => {
    const labels = checkMatrixForModel(config, m, where);
    const classes = Math.max(2, config.classes);
    const { data, width } = releasedActivations(
      config,
      model.device,
      protection,
      m.features,
      m.rows,
    );
    const edge = new ParamSet(edgeLayout(config), model.edge);
    const probs = new Float32Array(m.rows * classes);
    try {
      const steps = width / config.convFilters;
      for (let start = 0; start < m.rows; start += PRIVACY_TRAINING_LIMITS.predictRows) {
        const n = Math.min(PRIVACY_TRAINING_LIMITS.predictRows, m.rows - start);
        const p = tf.tidy(() => {
          const smashed = tf.tensor3d(data.subarray(start * width, (start + n) * width), [
            n,
            steps,
            config.convFilters,
          ]);
          return probabilities(config, edgeForward(config, edge.tensors, smashed));
        });
        probs.set(p.dataSync() as Float32Array, start * classes);
        p.dispose();
      }
    } finally {
      edge.dispose();
    }
    return { scores: attackScores(probs, classes), isAttack: labels.map((y) => (y > 0 ? 1 : 0)) };
  };
  const v = scores(validation, "validation split");
  const t = scores(test, "test split");
  return binaryMetrics(t.scores, t.isAttack, chooseThreshold(v.scores, v.isAttack));
}
