// Adam over a ParamSet, with a finiteness gate: a NaN/Inf gradient is refused before it can touch
// the weights (the error names the parameter and `where`).
import * as tf from "@tensorflow/tfjs";
import type { ParamSet } from "../model/split_model.ts";
import { floatsView } from "../tf/views.ts";

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export class Adam {
  // Moments as plain arrays: the update is one fused loop per parameter (read gradient and
  // weights, update m, v and the weights in place, write the weights back) instead of ~10 tfjs
  // ops per parameter.
  readonly #m: Float32Array[];
  readonly #v: Float32Array[];
  #steps = 0;
  readonly #lr: number;
  readonly #beta1: number;
  readonly #beta2: number;
  readonly #epsilon: number;

  constructor(readonly params: ParamSet, options: AdamOptions) {
    if (!(options.learningRate > 0 && options.learningRate < 10)) {
      throw new Error(`Adam: learning rate ${options.learningRate} outside (0, 10)`);
    }
    this.#lr = options.learningRate;
    this.#beta1 = options.beta1 ?? 0.9;
    this.#beta2 = options.beta2 ?? 0.999;
    this.#epsilon = options.epsilon ?? 1e-7;
    this.#m = params.tensors.map((p) => new Float32Array(p.size));
    this.#v = params.tensors.map((p) => new Float32Array(p.size));
  }

  /** Applies one update; throws (weights and moments untouched) if any gradient has the wrong
   * shape or is not finite. */
  apply(grads: readonly tf.Tensor[], where: string): void {
    const vars = this.params.variables;
    const names = this.params.layout.entries.map((e) => e.name);
    if (grads.length !== vars.length) {
      throw new Error(`${where}: ${grads.length} gradients for ${vars.length} parameters`);
    }
    const gs: Float32Array[] = [];
    for (let k = 0; k < vars.length; k++) {
      if (!shapesEqual(grads[k].shape, vars[k].shape) || grads[k].dtype !== "float32") {
        throw new Error(
          `${where}: gradient of ${names[k]} has shape [${grads[k].shape}] (${grads[k].dtype})`,
        );
      }
      const g = grads[k].dataSync() as Float32Array;
      assertFinite(g, names[k], where);
      gs.push(g);
    }
    this.#update(gs);
  }

  /** apply() for gradients as plain arrays in layout order (each parameter's values in its
   * shape's row-major order): spares a gradient computed outside tfjs the round trip through a
   * tensor. Throws (weights and moments untouched) if any has the wrong length or is not finite. */
  applyArrays(grads: readonly Float32Array[], where: string): void {
    const entries = this.params.layout.entries;
    if (grads.length !== entries.length) {
      throw new Error(`${where}: ${grads.length} gradients for ${entries.length} parameters`);
    }
    for (let k = 0; k < entries.length; k++) {
      if (!(grads[k] instanceof Float32Array) || grads[k].length !== entries[k].size) {
        throw new Error(
          `${where}: gradient of ${entries[k].name} has ${grads[k]?.length} values, [${
            entries[k].shape
          }] needs ${entries[k].size}`,
        );
      }
      assertFinite(grads[k], entries[k].name, where);
    }
    this.#update(grads);
  }

  /** The update itself, for gradients already checked (count, shapes, finiteness). */
  #update(gs: readonly Float32Array[]): void {
    const vars = this.params.variables;
    this.#steps++;
    const t = this.#steps;
    const b1 = this.#beta1;
    const b2 = this.#beta2;
    const c1 = 1 - b1;
    const c2 = 1 - b2;
    const eps = this.#epsilon;
    const stepSize = this.#lr * Math.sqrt(1 - b2 ** t) / (1 - b1 ** t);
    for (let k = 0; k < vars.length; k++) {
      const g = gs[k];
      const m = this.#m[k];
      const v = this.#v[k];
      // Read-only, and only inside this loop: a view into the wasm heap (no copy), which the next
      // tfjs call may invalidate; the new weights go to a fresh array.
      const p = floatsView(vars[k], `adam: ${this.params.layout.entries[k].name}`);
      const next = new Float32Array(p.length);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        const mi = m[i] = b1 * m[i] + c1 * gi;
        const vi = v[i] = b2 * v[i] + c2 * gi * gi;
        next[i] = p[i] - stepSize * mi / (Math.sqrt(vi) + eps);
      }
      tf.tidy(() => vars[k].assign(tf.tensor(next, vars[k].shape, "float32")));
    }
  }

  dispose(): void {
    // Nothing held in tensors.
  }
}

function assertFinite(g: Float32Array, name: string, where: string) {
  for (let i = 0; i < g.length; i++) {
    // g - g is 0 for a finite g, NaN for NaN and +-Infinity.
    if (g[i] - g[i] !== 0) throw new Error(`${where}: gradient ${name} contains NaN or Inf`);
  }
}

function shapesEqual(a: readonly number[], b: readonly number[]) {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
