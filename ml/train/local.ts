// One device's local work in a round. Pure in its inputs (config, partition, start weights,
// seed): a device computes the same update in-process or in a worker.
import * as tf from "@tensorflow/tfjs";
import type { LabeledMatrix } from "../data/types.ts";
import type { ModelConfig } from "../model/config.ts";
import { deriveSeed } from "../model/random.ts";
import {
  deviceForward,
  deviceLayout,
  edgeForward,
  edgeLayout,
  lossFromLogits,
  ParamSet,
} from "../model/split_model.ts";
import { assertFlatParams } from "../model/params.ts";
import { Adam } from "./adam.ts";
import { type Batch, shuffledBatches } from "./batches.ts";
import { protectionForRound } from "../privacy/protection.ts";
import type { ProtectionSettings } from "../privacy/settings.ts";
import { DeviceSide, EdgeSide, type Release } from "./split_step.ts";

export interface LocalTrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Activation protection every device applies in split modes (none in the FedAvg baseline,
   * which sends no activations). */
  protection?: ProtectionSettings;
}

/** Sees every device's releases (the privacy experiment's capture of what the edge received). */
export type ReleaseObserver = (deviceIndex: number, release: Release) => void;

/** splitfed-v2 tasks run in turn against one server-side model: only an executor with
 * `sharedEdge` (the edge node) takes them; in process, the round loop runs v2 itself. */
export type LocalMode = "splitfed-v1" | "splitfed-v2" | "fedavg";

export interface LocalTask {
  deviceIndex: number;
  round: number;
  mode: LocalMode;
  /** Start weights (the round's global model). */
  device: Float32Array;
  edge: Float32Array;
}

export interface LocalResult {
  deviceIndex: number;
  round: number;
  device: Float32Array;
  edge: Float32Array;
  samples: number;
  steps: number;
  lossMean: number;
}

/** Seeded batch order of one device in one epoch of one round. */
export function batchSeed(seed: number, round: number, deviceIndex: number, epoch: number): number {
  return deriveSeed(seed, round, deviceIndex, epoch);
}

/** Split training of one device against one server-side model, over the wire codec.
 * Returns loss sum and step count; `stepStart` continues the step numbering in the round. */
export function trainSplitEpochs(
  device: DeviceSide,
  edge: EdgeSide,
  data: LabeledMatrix,
  labels: Int32Array,
  round: number,
  deviceIndex: number,
  options: LocalTrainOptions,
): { lossSum: number; steps: number; samples: number } {
  let lossSum = 0;
  let steps = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (
      const batch of shuffledBatches(
        data,
        labels,
        options.batchSize,
        batchSeed(options.seed, round, deviceIndex, epoch),
      )
    ) {
      const message = device.forward(batch, round, steps);
      const { reply, loss } = edge.step(message, `edge for device ${deviceIndex}`);
      device.backward(reply);
      lossSum += loss;
      steps++;
    }
  }
  return { lossSum, steps, samples: data.rows };
}

/** The unsplit model (FedAvg baseline, centralized reference): both halves in one tape. */
export class FullModelTrainer {
  readonly device: ParamSet;
  readonly edge: ParamSet;
  readonly #optimizers: [Adam, Adam];

  constructor(
    readonly config: ModelConfig,
    device: Float32Array,
    edge: Float32Array,
    learningRate: number,
    readonly name: string,
  ) {
    assertFlatParams(device, deviceLayout(config), `${name}: device parameters`);
    assertFlatParams(edge, edgeLayout(config), `${name}: edge parameters`);
    this.device = new ParamSet(deviceLayout(config), device);
    this.edge = new ParamSet(edgeLayout(config), edge);
    this.#optimizers = [
      new Adam(this.device, { learningRate }),
      new Adam(this.edge, { learningRate }),
    ];
  }

  /** Loss and gradients (device then edge, layout order); the caller disposes the gradients. */
  gradients(batch: Batch): { loss: number; device: tf.Tensor[]; edge: tf.Tensor[] } {
    const x = tf.tensor2d(batch.features, [batch.rows, this.config.features]);
    const y = tf.tensor1d(batch.labels, "int32");
    try {
      const params = [...this.device.tensors, ...this.edge.tensors];
      const { value, grads } = tf.engine().gradients(
        () =>
          lossFromLogits(
            this.config,
            edgeForward(
              this.config,
              this.edge.tensors,
              deviceForward(this.config, this.device.tensors, x),
            ),
            y,
          ),
        params,
      );
      const loss = value.dataSync()[0];
      value.dispose();
      const split = this.device.tensors.length;
      return { loss, device: grads.slice(0, split), edge: grads.slice(split) };
    } finally {
      tf.dispose([x, y]);
    }
  }

  step(batch: Batch): number {
    const { loss, device, edge } = this.gradients(batch);
    try {
      if (!Number.isFinite(loss)) throw new Error(`${this.name}: loss is ${loss}`);
      this.#optimizers[0].apply(device, `${this.name}: device update`);
      this.#optimizers[1].apply(edge, `${this.name}: edge update`);
    } finally {
      tf.dispose([...device, ...edge]);
    }
    return loss;
  }

  dispose(): void {
    this.#optimizers.forEach((o) => o.dispose());
    this.device.dispose();
    this.edge.dispose();
  }
}

/** One device's local round: SplitFed v1 (device + its own server-side copy, over the wire) or
 * the FedAvg baseline (the device trains the full model). */
export function runLocalTask(
  config: ModelConfig,
  data: LabeledMatrix,
  labels: Int32Array,
  task: LocalTask,
  options: LocalTrainOptions,
  observe?: ReleaseObserver,
): LocalResult {
  const name = `device ${task.deviceIndex}`;
  if (task.mode === "splitfed-v2") {
    throw new Error("runLocalTask: splitfed-v2 tasks share one server-side model (round loop)");
  }
  if (task.mode === "splitfed-v1") {
    const device = new DeviceSide(config, task.device, {
      learningRate: options.learningRate,
      name,
      protection: protectionForRound(
        options.protection,
        options.seed,
        task.round,
        task.deviceIndex,
      ),
      onRelease: observe ? (release) => observe(task.deviceIndex, release) : undefined,
    });
    const edge = new EdgeSide(config, task.edge, {
      learningRate: options.learningRate,
      name: `edge copy for ${name}`,
    });
    try {
      const r = trainSplitEpochs(device, edge, data, labels, task.round, task.deviceIndex, options);
      return {
        deviceIndex: task.deviceIndex,
        round: task.round,
        device: device.read(),
        edge: edge.read(),
        samples: r.samples,
        steps: r.steps,
        lossMean: r.lossSum / r.steps,
      };
    } finally {
      device.dispose();
      edge.dispose();
    }
  }
  const trainer = new FullModelTrainer(config, task.device, task.edge, options.learningRate, name);
  try {
    let lossSum = 0;
    let steps = 0;
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      for (
        const batch of shuffledBatches(
          data,
          labels,
          options.batchSize,
          batchSeed(options.seed, task.round, task.deviceIndex, epoch),
        )
      ) {
        lossSum += trainer.step(batch);
        steps++;
      }
    }
    return {
      deviceIndex: task.deviceIndex,
      round: task.round,
      device: trainer.device.read(),
      edge: trainer.edge.read(),
      samples: data.rows,
      steps,
      lossMean: lossSum / steps,
    };
  } finally {
    trainer.dispose();
  }
}
