// The split CNN-(Bi)LSTM as pure functions of parameter tensors. Device part: Conv1D -> ReLU ->
// MaxPool(2) (x convLayers) over the feature vector read as a 1-channel sequence; its output is the
// "smashed" activation [batch, steps, filters]. Edge part: fused (Bi)LSTM -> Dense(ReLU) -> logits.
import * as tf from "@tensorflow/tfjs";
import { type ModelConfig, outputUnits, smashedSteps, validateModelConfig } from "./config.ts";
import {
  convBlock,
  convBlockBackward,
  convBlockForward,
  type ConvBlockTrace,
} from "./conv_block.ts";
import { fusedRnn, type RnnOp } from "./fused_rnn.ts";
import { makeLayout, type ParamLayout } from "./params.ts";
import { glorotUniform, prng } from "./random.ts";

export function deviceLayout(config: ModelConfig): ParamLayout {
  validateModelConfig(config);
  const specs = [];
  for (let l = 0; l < config.convLayers; l++) {
    const inChannels = l === 0 ? 1 : config.convFilters;
    specs.push({
      name: `conv${l}.kernel`,
      shape: [config.convKernelSize, inChannels, config.convFilters],
    });
    specs.push({ name: `conv${l}.bias`, shape: [config.convFilters] });
  }
  return makeLayout(specs);
}

export function edgeLayout(config: ModelConfig): ParamLayout {
  validateModelConfig(config);
  const directions = config.bidirectional ? 2 : 1;
  const units = config.lstmUnits;
  const rnnOut = directions * units;
  const specs = [
    { name: "rnn.W", shape: [directions, config.convFilters, 4 * units] },
    { name: "rnn.U", shape: [directions, units, 4 * units] },
    { name: "rnn.b", shape: [directions, 4 * units] },
  ];
  const headIn = config.denseUnits > 0 ? config.denseUnits : rnnOut;
  if (config.denseUnits > 0) {
    specs.push({ name: "dense.kernel", shape: [rnnOut, config.denseUnits] });
    specs.push({ name: "dense.bias", shape: [config.denseUnits] });
  }
  specs.push({ name: "out.kernel", shape: [headIn, outputUnits(config)] });
  specs.push({ name: "out.bias", shape: [outputUnits(config)] });
  return makeLayout(specs);
}

/** Seeded initial parameters: Glorot-uniform kernels, zero biases, LSTM forget-gate bias 1. */
export function initParams(layout: ParamLayout, seed: number): Float32Array {
  const random = prng(seed);
  const flat = new Float32Array(layout.totalLength);
  for (const entry of layout.entries) {
    const view = flat.subarray(entry.offset, entry.offset + entry.size);
    const shape = entry.shape;
    if (entry.name.endsWith(".kernel") && shape.length === 3) {
      const receptive = shape[0];
      glorotUniform(view, receptive * shape[1], receptive * shape[2], random);
    } else if (entry.name.endsWith(".kernel") || entry.name === "rnn.W" || entry.name === "rnn.U") {
      const fanIn = shape[shape.length - 2];
      const fanOut = shape[shape.length - 1];
      glorotUniform(view, fanIn, fanOut, random);
    } else if (entry.name === "rnn.b") {
      const units = shape[1] / 4;
      for (let d = 0; d < shape[0]; d++) {
        view.fill(1, d * 4 * units + units, d * 4 * units + 2 * units);
      }
    }
  }
  return flat;
}

/** tf.Variables holding one parameter vector; read back or overwrite as a flat vector. */
export class ParamSet {
  readonly variables: tf.Variable[];
  #disposed = false;

  constructor(readonly layout: ParamLayout, flat: Float32Array) {
    if (flat.length !== layout.totalLength) {
      throw new Error(`ParamSet: ${flat.length} values for a layout of ${layout.totalLength}`);
    }
    this.variables = layout.entries.map((e) => {
      const initial = tf.tensor(
        flat.subarray(e.offset, e.offset + e.size),
        [...e.shape],
        "float32",
      );
      const variable = tf.variable(initial, true);
      initial.dispose(); // the variable holds its own reference to the data
      return variable;
    });
  }

  get tensors(): tf.Tensor[] {
    if (this.#disposed) throw new Error("ParamSet used after dispose");
    return this.variables;
  }

  /** A copy of the parameters as one flat vector. */
  read(): Float32Array {
    const flat = new Float32Array(this.layout.totalLength);
    this.layout.entries.forEach((entry, k) =>
      flat.set(this.tensors[k].dataSync() as Float32Array, entry.offset)
    );
    return flat;
  }

  assign(flat: Float32Array): void {
    if (flat.length !== this.layout.totalLength) {
      throw new Error(
        `ParamSet.assign: ${flat.length} values for a layout of ${this.layout.totalLength}`,
      );
    }
    this.layout.entries.forEach((e, k) => {
      tf.tidy(() =>
        this.variables[k].assign(
          tf.tensor(flat.subarray(e.offset, e.offset + e.size), [...e.shape]),
        )
      );
    });
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const v of this.variables) v.dispose();
  }
}

/** x [batch, features] -> smashed activations [batch, smashedSteps, convFilters]. */
export function deviceForward(
  config: ModelConfig,
  params: readonly tf.Tensor[],
  x: tf.Tensor2D,
): tf.Tensor3D {
  if (x.rank !== 2 || x.shape[1] !== config.features) {
    throw new Error(
      `device forward: input shape [${x.shape}], model expects [batch, ${config.features}]`,
    );
  }
  const batch = x.shape[0];
  let h: tf.Tensor3D = x.reshape([batch, config.features, 1]);
  for (let l = 0; l < config.convLayers; l++) {
    // Conv1D "same" + bias + ReLU + MaxPool(2) as one fused op (ml/model/conv_block.ts).
    h = convBlock(h, params[2 * l] as tf.Tensor3D, params[2 * l + 1] as tf.Tensor1D);
  }
  return clipActivations(config, h);
}

/** The device's optional row-wise L2 clipping (config.activationClipNorm) of the conv blocks'
 * output, as tfjs ops; the identity without a clip norm. */
export function clipActivations(config: ModelConfig, h: tf.Tensor3D): tf.Tensor3D {
  const clip = config.activationClipNorm;
  if (clip === undefined) return h;
  // Row-wise L2 clipping (as ml/privacy clipRows): the floor only matters for an all-zero row.
  const flat = h.reshape([h.shape[0], -1]);
  const norms = flat.square().sum(1, true).add(1e-24).sqrt();
  return flat.mul(tf.minimum(tf.scalar(1), tf.scalar(clip).div(norms))).reshape(h.shape);
}

/** The device's conv blocks run on plain arrays, with what their backward needs. */
export interface DeviceConvPass {
  /** Conv blocks' output [rows, smashedSteps, convFilters], before clipActivations. */
  out: Float32Array;
  shape: [number, number, number];
  /** One per conv layer, for deviceConvBackward. */
  traces: ConvBlockTrace[];
}

/** The conv blocks of deviceForward (the same float operations in the same order) on plain
 * arrays: `features` [rows, config.features], `params` the device parameters in layout order (not
 * modified, and kept by the traces: do not change them before the backward). */
export function deviceConvForward(
  config: ModelConfig,
  params: readonly Float32Array[],
  features: Float32Array,
  rows: number,
): DeviceConvPass {
  if (params.length !== 2 * config.convLayers) {
    throw new Error(
      `device forward: ${params.length} parameter arrays for ${config.convLayers} conv layers`,
    );
  }
  if (!(Number.isInteger(rows) && rows >= 1) || features.length !== rows * config.features) {
    throw new Error(
      `device forward: ${features.length} values for ${rows} rows of ${config.features} features`,
    );
  }
  let h = features;
  let length = config.features;
  let channels = 1;
  const traces: ConvBlockTrace[] = [];
  for (let l = 0; l < config.convLayers; l++) {
    const dims = {
      batch: rows,
      length,
      channels,
      size: config.convKernelSize,
      filters: config.convFilters,
    };
    const { out, trace } = convBlockForward(dims, h, params[2 * l], params[2 * l + 1]);
    traces.push(trace);
    h = out;
    length = Math.floor(length / 2);
    channels = config.convFilters;
  }
  return { out: h, shape: [rows, length, channels], traces };
}

/** Gradients of the device parameters (layout order) given the gradient `dOut` of the conv
 * blocks' output of `pass`: the fused blocks' backward, last layer first. */
export function deviceConvBackward(pass: DeviceConvPass, dOut: Float32Array): Float32Array[] {
  if (dOut.length !== pass.out.length) {
    throw new Error(
      `device backward: ${dOut.length} gradient values for activations [${pass.shape}]`,
    );
  }
  const grads: Float32Array[] = new Array(2 * pass.traces.length);
  let dy = dOut;
  for (let l = pass.traces.length - 1; l >= 0; l--) {
    const { dx, dKernel, dBias } = convBlockBackward(pass.traces[l], dy, l > 0);
    grads[2 * l] = dKernel;
    grads[2 * l + 1] = dBias;
    if (dx !== null) dy = dx;
  }
  return grads;
}

/** Smashed activations [batch, steps, filters] -> logits [batch, outputUnits]. */
export function edgeForward(
  config: ModelConfig,
  params: readonly tf.Tensor[],
  smashed: tf.Tensor3D,
  rnn: RnnOp = fusedRnn,
): tf.Tensor2D {
  const steps = smashedSteps(config);
  if (smashed.rank !== 3 || smashed.shape[1] !== steps || smashed.shape[2] !== config.convFilters) {
    throw new Error(
      `edge forward: activations [${smashed.shape}], model expects [batch, ${steps}, ${config.convFilters}]`,
    );
  }
  const [W, U, b] = params as [tf.Tensor3D, tf.Tensor3D, tf.Tensor2D];
  let h: tf.Tensor2D = rnn(smashed, W, U, b);
  let k = 3;
  if (config.denseUnits > 0) {
    h = tf.relu(tf.matMul(h, params[k] as tf.Tensor2D).add(params[k + 1])) as tf.Tensor2D;
    k += 2;
  }
  return tf.matMul(h, params[k] as tf.Tensor2D).add(params[k + 1]) as tf.Tensor2D;
}

/** Mean cross-entropy of logits against integer labels (binary: 0 normal / 1 attack). */
export function lossFromLogits(
  config: ModelConfig,
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
): tf.Scalar {
  if (config.classes === 2) {
    const z = logits.reshape([-1]);
    const y = labels.toFloat();
    // max(z, 0) - z*y + log(1 + exp(-|z|)): stable for large |z|.
    return tf.relu(z).sub(z.mul(y)).add(tf.log1p(tf.exp(tf.neg(tf.abs(z))))).mean() as tf.Scalar;
  }
  const logp = tf.logSoftmax(logits);
  const onehot = tf.oneHot(labels.toInt(), config.classes).toFloat();
  return tf.neg(onehot.mul(logp).sum(1).mean()) as tf.Scalar;
}

/** Logits -> class probabilities [batch, classes] (binary: [P(normal), P(attack)]). */
export function probabilities(config: ModelConfig, logits: tf.Tensor2D): tf.Tensor2D {
  if (config.classes === 2) {
    const p = tf.sigmoid(logits.reshape([-1, 1]));
    return tf.concat([tf.scalar(1).sub(p), p], 1) as tf.Tensor2D;
  }
  return tf.softmax(logits) as tf.Tensor2D;
}

export function describeModel(config: ModelConfig): string {
  const dev = deviceLayout(config);
  const edge = edgeLayout(config);
  const lines = [
    `device CNN: ${config.convLayers} x Conv1D(${config.convFilters}, k=${config.convKernelSize}) + ReLU + MaxPool(2); ` +
    `input [batch, ${config.features}] -> smashed [batch, ${
      smashedSteps(config)
    }, ${config.convFilters}]; ${dev.totalLength} parameters`,
    `edge: ${config.bidirectional ? "BiLSTM" : "LSTM"}(${config.lstmUnits}) -> ` +
    `${config.denseUnits > 0 ? `Dense(${config.denseUnits}, relu) -> ` : ""}Dense(${
      outputUnits(config)
    }, ` +
    `${config.classes === 2 ? "sigmoid" : "softmax"}); ${edge.totalLength} parameters`,
  ];
  for (const e of [...dev.entries, ...edge.entries]) {
    lines.push(`  ${e.name.padEnd(14)} [${e.shape.join(", ")}]`);
  }
  return lines.join("\n");
}
