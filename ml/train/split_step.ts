// The two halves of a split learning step, as separate objects that only exchange bytes
// (Uint8Array frames), so that the network shell can put HTTP between them unchanged:
//
//   device.forward(batch)  --activations+labels-->  edge.step(message)
//   device.backward(reply) <--gradients of activations--
//
// Every tensor step runs in tf.tidy; both sides refuse NaN/Inf before it reaches their weights.
import * as tf from "@tensorflow/tfjs";
import { type ModelConfig, smashedSteps } from "../model/config.ts";
import { assertFlatParams } from "../model/params.ts";
import {
  clipActivations,
  deviceConvBackward,
  deviceConvForward,
  type DeviceConvPass,
  deviceLayout,
  edgeForward,
  edgeLayout,
  lossFromLogits,
  ParamSet,
} from "../model/split_model.ts";
import { decodeMessage, DEFAULT_FRAME_LIMITS, encodeMessage, expectFrame } from "../wire/frame.ts";
import type { ActivationProtection } from "../privacy/protection.ts";
import { floatsView } from "../tf/views.ts";
import { Adam } from "./adam.ts";
import type { Batch } from "./batches.ts";

export interface SideOptions {
  learningRate: number;
  /** Names this side in errors and logs, e.g. "device 3". */
  name: string;
}

/** What a device released for one batch: its input rows and the exact activation values put on
 * the wire (the privacy experiment audits these). */
export interface Release {
  round: number;
  step: number;
  /** Standardized feature rows [rows, features]. */
  features: Float32Array;
  labels: Int32Array;
  rows: number;
  /** Activations as sent [rows, steps, filters], after the protection. */
  activations: Float32Array;
  shape: number[];
}

export interface DeviceSideOptions extends SideOptions {
  /** Applied to the activations before they leave the device (clipping, noise, NoPeek). */
  protection?: ActivationProtection;
  /** Sees every release (test and experiment hook); must not keep the arrays' owner busy. */
  onRelease?: (release: Release) => void;
}

/** What the backward needs from a forward, kept across the round trip to the edge: the conv
 * blocks' traces (plain arrays; no tfjs tape stays alive) and, only when clipping or a protection
 * puts tfjs ops after the conv blocks, their output and the input rows as tensors. */
interface Pending {
  round: number;
  step: number;
  shape: [number, number, number];
  pass: DeviceConvPass;
  /** The conv blocks' output, when tfjs ops (clipping, protection) follow it. */
  h: tf.Tensor3D | null;
  /** The input rows, when the protection has an extra device loss on them (NoPeek). */
  x: tf.Tensor2D | null;
}

export class DeviceSide {
  readonly params: ParamSet;
  readonly #optimizer: Adam;
  #pending: Pending | null = null;

  constructor(
    readonly config: ModelConfig,
    initial: Float32Array,
    readonly options: DeviceSideOptions,
  ) {
    const layout = deviceLayout(config);
    assertFlatParams(initial, layout, `${options.name}: initial device parameters`);
    this.params = new ParamSet(layout, initial);
    this.#optimizer = new Adam(this.params, { learningRate: options.learningRate });
  }

  /** Device forward: returns the message for the edge (activations + labels frames). */
  forward(batch: Batch, round: number, step: number): Uint8Array {
    if (this.#pending) {
      throw new Error(`${this.options.name}: forward called before the previous backward`);
    }
    const { features, rows } = batch;
    if (
      rows < 1 || features.length !== rows * this.config.features || batch.labels.length !== rows
    ) {
      throw new Error(
        `${this.options.name}: batch of ${features.length} values / ${batch.labels.length} labels for ${rows} x ${this.config.features}`,
      );
    }
    // The conv blocks on plain arrays (the same arithmetic as deviceForward's fused ops); their
    // traces stay for the backward, which then needs no second forward under a tape.
    const weights = this.params.tensors.map((t) => t.dataSync() as Float32Array);
    const pass = deviceConvForward(this.config, weights, features, rows);
    const protection = this.options.protection;
    const shape = pass.shape;
    let data = pass.out;
    let h: tf.Tensor3D | null = null;
    let x: tf.Tensor2D | null = null;
    if (protection || this.config.activationClipNorm !== undefined) {
      // The release: clipped (config) and, with a protection, clipped and noised here, before
      // anything is encoded.
      const hIn = h = tf.tensor3d(pass.out, shape);
      try {
        const smashed = tf.tidy(() => {
          const acts = clipActivations(this.config, hIn);
          return protection ? protection.transform(acts, step) : acts;
        });
        data = smashed.dataSync() as Float32Array;
        if (smashed !== hIn) smashed.dispose(); // an identity protection returns h itself
        if (protection?.extraDeviceLoss) x = tf.tensor2d(features, [rows, this.config.features]);
      } catch (error) {
        hIn.dispose();
        throw error;
      }
    }
    this.#pending = { round, step, shape, pass, h, x };
    this.options.onRelease?.({
      round,
      step,
      features,
      labels: batch.labels,
      rows,
      activations: data,
      shape,
    });
    try {
      return encodeMessage([
        { kind: "activations", round, step, shape, dtype: "float32", data },
        { kind: "labels", round, step, shape: [rows], dtype: "int32", data: batch.labels },
      ]);
    } catch (error) {
      this.#dropPending();
      throw new Error(
        `${this.options.name}: device forward produced bad activations: ${
          (error as Error).message
        }`,
      );
    }
  }

  /** Gradients of the device parameters for the pending batch, given the edge's reply. */
  gradients(reply: Uint8Array): tf.Tensor[] {
    const grads = this.#gradientArrays(reply);
    return this.params.layout.entries.map((e, k) => tf.tensor(grads[k], [...e.shape], "float32"));
  }

  /** The device parameters' gradients as plain arrays in layout order. */
  #gradientArrays(reply: Uint8Array): Float32Array[] {
    const pending = this.#pending;
    if (!pending) throw new Error(`${this.options.name}: backward without a pending forward`);
    this.#pending = null;
    try {
      const where = `${this.options.name}: gradient reply`;
      // Payloads as views, not copies: the reply is used right here and not kept.
      const frames = decodeMessage(reply, where, DEFAULT_FRAME_LIMITS, { views: true });
      const frame = expectFrame(frames, "gradients", {
        round: pending.round,
        step: pending.step,
        rank: 3,
        dtype: "float32",
      }, where);
      if (frame.shape.join() !== pending.shape.join()) {
        throw new Error(`${where}: shape [${frame.shape}], activations were [${pending.shape}]`);
      }
      const dy = frame.data as Float32Array;
      // Without clipping or protection the reply is the gradient of the conv blocks' output.
      const dOut = pending.h === null ? dy : this.#throughRelease(pending, pending.h, dy);
      return deviceConvBackward(pending.pass, dOut);
    } finally {
      pending.h?.dispose();
      pending.x?.dispose();
    }
  }

  /** The gradient of the conv blocks' output `h` through what follows it on the device (the
   * clipping, the protection's differentiable part and extra loss), given the edge's gradient `dy`
   * of the release: a tfjs tape over those ops only, from `h` as a leaf. */
  #throughRelease(pending: Pending, h: tf.Tensor3D, dy: Float32Array): Float32Array {
    const dyT = tf.tensor3d(dy, pending.shape);
    try {
      const protection = this.options.protection;
      if (!protection) {
        const { value, grads } = tf.engine().gradients(
          () => clipActivations(this.config, h),
          [h],
          dyT,
        );
        value.dispose();
        return takeFloats(grads[0]);
      }
      // With a protection: the noise is additive and independent of the weights, so the
      // vjp goes through its differentiable part (the clipping); sum(r * dy) has gradient dy
      // w.r.t. r, so one tape also takes the device's extra loss (NoPeek). NoPeek needs pairs
      // of rows: a last batch of one row trains on the edge's gradient alone.
      const x = pending.x;
      const { value, grads } = tf.engine().gradients(() => {
        const acts = clipActivations(this.config, h);
        const surrogate = protection.differentiable(acts).mul(dyT).sum() as tf.Scalar;
        const extra = x !== null && x.shape[0] >= 2
          ? protection.extraDeviceLoss?.(x, acts)
          : undefined;
        return extra ? surrogate.add(extra) as tf.Scalar : surrogate;
      }, [h]);
      value.dispose();
      return takeFloats(grads[0]);
    } finally {
      dyT.dispose();
    }
  }

  /** Device backward: applies the gradient that came back from the edge. */
  backward(reply: Uint8Array): void {
    this.#optimizer.applyArrays(this.#gradientArrays(reply), `${this.options.name}: device update`);
  }

  #dropPending() {
    this.#pending?.h?.dispose();
    this.#pending?.x?.dispose();
    this.#pending = null;
  }

  read(): Float32Array {
    return this.params.read();
  }

  dispose(): void {
    this.#dropPending();
    this.#optimizer.dispose();
    this.params.dispose();
  }
}

/** A gradient tensor's values, the tensor disposed. */
function takeFloats(t: tf.Tensor): Float32Array {
  try {
    return t.dataSync() as Float32Array;
  } finally {
    t.dispose();
  }
}

export interface EdgeStepResult {
  /** The message for the device: gradients of its activations. */
  reply: Uint8Array;
  loss: number;
  rows: number;
}

export class EdgeSide {
  readonly params: ParamSet;
  readonly #optimizer: Adam;

  constructor(readonly config: ModelConfig, initial: Float32Array, readonly options: SideOptions) {
    const layout = edgeLayout(config);
    assertFlatParams(initial, layout, `${options.name}: initial edge parameters`);
    this.params = new ParamSet(layout, initial);
    this.#optimizer = new Adam(this.params, { learningRate: options.learningRate });
  }

  /** Forward + loss + backward for one device message, without updating the weights. The
   * caller owns (and must dispose) `grads`: edge parameter gradients in layout order, not yet
   * checked for NaN/Inf (Adam.apply refuses non-finite ones before any weight changes). */
  gradients(message: Uint8Array, where: string): EdgeStepResult & { grads: tf.Tensor[] } {
    // Payloads as views, not copies: they are copied into tensors below and not kept.
    const frames = decodeMessage(message, where, DEFAULT_FRAME_LIMITS, { views: true });
    const first = frames[0];
    const activations = expectFrame(frames, "activations", {
      round: first.round,
      step: first.step,
      rank: 3,
      dtype: "float32",
    }, where);
    const labels = expectFrame(frames, "labels", {
      round: first.round,
      step: first.step,
      rank: 1,
      dtype: "int32",
    }, where);
    const [rows, steps, channels] = activations.shape;
    if (steps !== smashedSteps(this.config) || channels !== this.config.convFilters) {
      throw new Error(
        `${where}: activations [${activations.shape}], edge model expects [batch, ${
          smashedSteps(this.config)
        }, ${this.config.convFilters}]`,
      );
    }
    if (labels.shape[0] !== rows) {
      throw new Error(`${where}: ${labels.shape[0]} labels for ${rows} activation rows`);
    }
    const labelCount = this.config.classes === 2 ? 2 : this.config.classes;
    for (let i = 0; i < rows; i++) {
      const y = labels.data[i];
      if (!(y >= 0 && y < labelCount)) {
        throw new Error(`${where}: label ${y} at row ${i} outside 0..${labelCount - 1}`);
      }
    }
    const smashed = tf.tensor3d(activations.data as Float32Array, [rows, steps, channels]);
    const y = tf.tensor1d(labels.data as Int32Array, "int32");
    try {
      const { value, grads } = tf.engine().gradients(
        () =>
          lossFromLogits(this.config, edgeForward(this.config, this.params.tensors, smashed), y),
        [smashed, ...this.params.tensors],
      );
      const loss = value.dataSync()[0];
      value.dispose();
      const [dSmashed, ...edgeGrads] = grads;
      try {
        if (!Number.isFinite(loss)) throw new Error(`${where}: loss is ${loss}`);
        // A non-finite edge gradient is refused by Adam before it touches a weight (step()); a
        // second check here cost a tfjs reduction and a sync on every step.
        const reply = encodeMessage([{
          kind: "gradients",
          round: first.round,
          step: first.step,
          shape: dSmashed.shape,
          dtype: "float32",
          // A heap view (no allocation): encodeMessage checks and copies it before any tfjs call.
          data: floatsView(dSmashed, `${where}: activation gradients`),
        }]);
        return { reply, loss, rows, grads: edgeGrads };
      } catch (error) {
        tf.dispose(edgeGrads);
        throw error;
      } finally {
        dSmashed.dispose();
      }
    } finally {
      tf.dispose([smashed, y]);
    }
  }

  /** One edge training step: forward, loss, backward, update; returns the device's reply. */
  step(message: Uint8Array, where = this.options.name): EdgeStepResult {
    const { grads, ...result } = this.gradients(message, where);
    try {
      this.#optimizer.apply(grads, `${where}: edge update`);
    } finally {
      tf.dispose(grads);
    }
    return result;
  }

  read(): Float32Array {
    return this.params.read();
  }

  dispose(): void {
    this.#optimizer.dispose();
    this.params.dispose();
  }
}
