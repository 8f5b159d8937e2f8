// Device-side protection of the smashed activations before they leave the device:
//   clipping    each row's activations scaled to L2 norm <= clipNorm (bounds the sensitivity);
//   noise       + N(0, (noiseMultiplier * clipNorm)²) per element, from a seeded stream;
//   NoPeek      an extra device loss alpha * dCor(x, activations) (Vepakomma et al. 2020) that
//               trains the device to make its activations less dependent on the raw row.
// The training loop calls it through ActivationProtection (see docs/privacy.md, "Integration").
//
// What the noise guarantees (accountant below): each release of one row's activation vector is
// the Gaussian mechanism with L2 sensitivity 2 * clipNorm (replacing the row by any other row moves
// the clipped vector by at most twice the clip norm), so its effective noise multiplier against
// the edge is noiseMultiplier / 2. A row is released once per epoch and once per detection, and
// the edge sees every batch, so there is no subsampling to amplify: steps = releases per row,
// sampling rate 1. Labels and everything computed from unnoised data (device weight updates,
// FedAvg of device halves) are outside this guarantee.
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, prng } from "../model/random.ts";
import { DCOR_ROWS_MAX } from "./dcor.ts";
import { epsilonOf, type EpsilonResult } from "./rdp.ts";
import { PROTECTION_LIMITS } from "./protection_limits.ts";

export { PROTECTION_LIMITS };

export interface ProtectionOptions {
  /** Per-row L2 clip norm of the activations; required when noiseMultiplier > 0. */
  clipNorm?: number;
  /** Noise std / clipNorm. 0 or absent = no noise. */
  noiseMultiplier?: number;
  /** NoPeek weight alpha; 0 or absent = no decorrelation loss. */
  nopeekWeight?: number;
  /** Seeds the noise stream; use one seed per device and run. */
  seed: number;
}

export interface ProtectionDescription {
  name: string;
  clipNorm: number | null;
  noiseMultiplier: number;
  /** Per-element noise standard deviation = noiseMultiplier * clipNorm. */
  noiseStd: number;
  nopeekWeight: number;
  /** Noise multiplier against the edge for one release (sensitivity 2 * clipNorm). */
  effectiveNoiseMultiplier: number;
}

/** What a training loop needs from a device-side protection. All tensor methods must be called
 * inside tf.tidy (or a gradient function); they dispose nothing they did not create. */
export interface ActivationProtection {
  /** The release: activations [batch, steps, filters] as sent to the edge. Draws fresh noise on
   * every call (never reused: two releases with the same noise would cancel it). */
  transform(acts: tf.Tensor3D, step: number): tf.Tensor3D;
  /** The deterministic, differentiable part of transform (the clipping). The noise is additive
   * and independent of the activations, so d transform / d acts = d differentiable / d acts:
   * the device's recomputed backward uses this instead of transform. */
  differentiable(acts: tf.Tensor3D): tf.Tensor3D;
  /** Extra device-side loss on the raw batch x [batch, features] and its activations (NoPeek).
   * Added to the device's objective: device gradient = vjp(acts, edge gradient) + d extra. */
  extraDeviceLoss?(x: tf.Tensor2D, acts: tf.Tensor3D): tf.Scalar;
  /** (ε, δ) of the noise for a row released `releasesPerRow` times; null without noise. */
  account(releasesPerRow: number, delta: number): EpsilonResult | null;
  describe(): ProtectionDescription;
}

function checkRange(
  name: string,
  value: number | undefined,
  min: number,
  max: number,
  exclusiveMin: boolean,
) {
  if (value === undefined) return;
  const below = exclusiveMin ? value <= min : value < min;
  if (typeof value !== "number" || !Number.isFinite(value) || below || value > max) {
    throw new RangeError(
      `${name} ${value} must be a number ${
        exclusiveMin ? "greater than" : "from"
      } ${min} to ${max}`,
    );
  }
}

/** Throws RangeError naming the first parameter out of range (the CLI maps it to exit 2). */
export function validateProtectionOptions(options: ProtectionOptions): void {
  checkRange("clip norm", options.clipNorm, 0, PROTECTION_LIMITS.clipNormMax, true);
  checkRange(
    "noise multiplier",
    options.noiseMultiplier,
    0,
    PROTECTION_LIMITS.noiseMultiplierMax,
    false,
  );
  checkRange("NoPeek weight", options.nopeekWeight, 0, PROTECTION_LIMITS.nopeekWeightMax, false);
  if ((options.noiseMultiplier ?? 0) > 0 && options.clipNorm === undefined) {
    throw new RangeError("noise needs a clip norm: without clipping the sensitivity is unbounded");
  }
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) {
    throw new RangeError(`protection seed ${options.seed} must be an integer in 0..2^32-1`);
  }
}

/** Standard normal float32 values from a seeded stream (Box-Muller, both outputs used). */
export function gaussianNoise(count: number, seed: number): Float32Array {
  if (!Number.isInteger(count) || count < 0 || count > PROTECTION_LIMITS.elementsMax) {
    throw new RangeError(
      `noise buffer of ${count} values outside 0..${PROTECTION_LIMITS.elementsMax}`,
    );
  }
  const random = prng(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = Math.max(random(), 1e-300);
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * random();
    out[i] = r * Math.cos(theta);
    if (i + 1 < count) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

/** Rows scaled to L2 norm <= clipNorm: a * min(1, C / ||a||), norm over all of a row's elements. */
export function clipRows(acts: tf.Tensor, clipNorm: number): tf.Tensor {
  const rows = acts.shape[0];
  const flat = acts.reshape([rows, -1]);
  // The floor only matters for an all-zero row, whose scale is then C / 1e-12 times 0 = 0.
  const norms = flat.square().sum(1, true).add(1e-24).sqrt();
  const scale = tf.minimum(tf.scalar(1), tf.scalar(clipNorm).div(norms));
  return flat.mul(scale).reshape(acts.shape);
}

/** Distance correlation of x [n, ...] and z [n, ...] as a differentiable scalar (V-statistic, as
 * distanceCorrelation in dcor.ts computes it in float64). */
export function dcorTensor(x: tf.Tensor, z: tf.Tensor): tf.Scalar {
  const n = x.shape[0];
  if (n < 2 || z.shape[0] !== n) {
    throw new RangeError(`dcorTensor: rows ${n} and ${z.shape[0]} (need equal, >= 2)`);
  }
  if (n > DCOR_ROWS_MAX) throw new RangeError(`dcorTensor: ${n} rows exceed ${DCOR_ROWS_MAX}`);
  const A = doubleCentre(pairwiseDistances(x.reshape([n, -1]) as tf.Tensor2D));
  const B = doubleCentre(pairwiseDistances(z.reshape([n, -1]) as tf.Tensor2D));
  const dcov2 = A.mul(B).mean();
  const dvar = tf.sqrt(A.square().mean().mul(B.square().mean()).add(1e-18));
  // The floor keeps sqrt's gradient finite when the dependence is exactly 0.
  return tf.sqrt(tf.relu(dcov2.div(dvar)).add(1e-12)) as tf.Scalar;
}

function pairwiseDistances(z: tf.Tensor2D): tf.Tensor2D {
  const n = z.shape[0];
  const squares = z.square().sum(1, true);
  const d2 = squares.add(squares.transpose()).sub(tf.matMul(z, z, false, true).mul(2));
  // sqrt has an infinite derivative at 0 (the diagonal): floor inside, then mask the diagonal so
  // its gradient is exactly 0 rather than 0 * 1/sqrt(tiny).
  const offDiagonal = tf.scalar(1).sub(tf.eye(n));
  return tf.sqrt(tf.relu(d2).add(1e-12)).mul(offDiagonal) as tf.Tensor2D;
}

function doubleCentre(a: tf.Tensor2D): tf.Tensor2D {
  return a.sub(a.mean(0, true)).sub(a.mean(1, true)).add(a.mean()) as tf.Tensor2D;
}

class DeviceProtection implements ActivationProtection {
  readonly #clipNorm: number | null;
  readonly #sigma: number;
  readonly #alpha: number;
  readonly #seed: number;
  /** Noise draws so far: the noise seed depends on it, not on `step`, because step numbering
   * restarts every round and a repeated seed would repeat the noise. */
  #draws = 0;
  readonly extraDeviceLoss?: (x: tf.Tensor2D, acts: tf.Tensor3D) => tf.Scalar;

  constructor(options: ProtectionOptions) {
    validateProtectionOptions(options);
    this.#clipNorm = options.clipNorm ?? null;
    this.#sigma = options.noiseMultiplier ?? 0;
    this.#alpha = options.nopeekWeight ?? 0;
    this.#seed = options.seed;
    if (this.#alpha > 0) {
      this.extraDeviceLoss = (x, acts) => {
        if (x.shape[0] !== acts.shape[0]) {
          throw new Error(`NoPeek: ${x.shape[0]} rows of x vs ${acts.shape[0]} of acts`);
        }
        return dcorTensor(x, acts).mul(this.#alpha) as tf.Scalar;
      };
    }
  }

  differentiable(acts: tf.Tensor3D): tf.Tensor3D {
    return this.#clipNorm === null ? acts : clipRows(acts, this.#clipNorm) as tf.Tensor3D;
  }

  transform(acts: tf.Tensor3D, step: number): tf.Tensor3D {
    if (acts.rank !== 3) {
      throw new Error(`protection: activations of rank ${acts.rank}, expected 3`);
    }
    const clipped = this.differentiable(acts);
    if (this.#sigma === 0) return clipped;
    const seed = deriveSeed(this.#seed, this.#draws++, step);
    const noise = tf.tensor(gaussianNoise(acts.size, seed), acts.shape);
    return clipped.add(noise.mul(this.#sigma * this.#clipNorm!)) as tf.Tensor3D;
  }

  account(releasesPerRow: number, delta: number): EpsilonResult | null {
    if (this.#sigma === 0) return null;
    return epsilonOf(
      { noiseMultiplier: this.#sigma / 2, samplingRate: 1, steps: releasesPerRow },
      delta,
    );
  }

  describe(): ProtectionDescription {
    const parts = [];
    if (this.#clipNorm !== null) parts.push(`clip ${this.#clipNorm}`);
    if (this.#sigma > 0) parts.push(`noise σ=${this.#sigma}`);
    if (this.#alpha > 0) parts.push(`NoPeek α=${this.#alpha}`);
    return {
      name: parts.length > 0 ? parts.join(" + ") : "none",
      clipNorm: this.#clipNorm,
      noiseMultiplier: this.#sigma,
      noiseStd: this.#sigma * (this.#clipNorm ?? 0),
      nopeekWeight: this.#alpha,
      effectiveNoiseMultiplier: this.#sigma / 2,
    };
  }
}

/** The protection a device applies; `{ seed }` alone is the identity (vanilla split learning). */
export function createProtection(options: ProtectionOptions): ActivationProtection {
  return new DeviceProtection(options);
}

/** Randomized response on labels (label DP, Ghazi et al. 2021): keep the true label with
 * probability e^ε / (e^ε + k - 1), else report one of the other k-1 classes uniformly. ε-label-DP
 * per release. For vanilla split learning, where the device must send labels to the edge. */
export function randomizedResponse(
  labels: Int32Array,
  classes: number,
  epsilon: number,
  seed: number,
): Int32Array {
  if (!Number.isInteger(classes) || classes < 2) {
    throw new RangeError(`randomized response: ${classes} classes`);
  }
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`label epsilon ${epsilon} must be > 0`);
  }
  const random = prng(seed);
  const keep = Math.exp(epsilon) / (Math.exp(epsilon) + classes - 1);
  return labels.map((y) => {
    if (!(y >= 0 && y < classes)) {
      throw new RangeError(`randomized response: label ${y} outside 0..${classes - 1}`);
    }
    if (random() < keep) return y;
    const other = Math.floor(random() * (classes - 1));
    return other >= y ? other + 1 : other;
  });
}

/** The protection one device applies in one round of a training with `settings`, or undefined
 * when there is nothing to apply. The round is in the seed because a device's protection is
 * created afresh each round (in workers too): noise must never repeat across rounds. */
export function protectionForRound(
  settings:
    | {
      clipNorm?: number;
      noiseMultiplier?: number;
      nopeekWeight?: number;
    }
    | null
    | undefined,
  seed: number,
  round: number,
  deviceIndex: number,
): ActivationProtection | undefined {
  if (!settings) return undefined;
  const { clipNorm, noiseMultiplier, nopeekWeight } = settings;
  if (clipNorm === undefined && !(noiseMultiplier! > 0) && !(nopeekWeight! > 0)) return undefined;
  return createProtection({
    clipNorm,
    noiseMultiplier,
    nopeekWeight,
    seed: deriveSeed(seed, round, deviceIndex, 0x9f1),
  });
}
