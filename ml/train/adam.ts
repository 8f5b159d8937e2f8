// Adam over a ParamSet, with a finiteness gate: a NaN/Inf gradient is refused before it can touch
// the weights (the error names the parameter and `where`).
import * as tf from "@tensorflow/tfjs";
import type { ParamSet } from "../model/split_model.ts";

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export class Adam {
  readonly #m: tf.Tensor[];
  readonly #v: tf.Tensor[];
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
    this.#m = params.tensors.map((p) => tf.keep(tf.zerosLike(p)));
    this.#v = params.tensors.map((p) => tf.keep(tf.zerosLike(p)));
  }

  /** Applies one update; throws (weights untouched) if any gradient is not finite. */
  apply(grads: readonly tf.Tensor[], where: string): void {
    const vars = this.params.variables;
    if (grads.length !== vars.length) {
      throw new Error(`${where}: ${grads.length} gradients for ${vars.length} parameters`);
    }
    assertFiniteTensors(grads, this.params.layout.entries.map((e) => e.name), `${where}: gradient`);
    this.#steps++;
    const t = this.#steps;
    const stepSize = this.#lr * Math.sqrt(1 - this.#beta2 ** t) / (1 - this.#beta1 ** t);
    for (let k = 0; k < vars.length; k++) {
      if (!shapesEqual(grads[k].shape, vars[k].shape)) {
        throw new Error(
          `${where}: gradient of ${this.params.layout.entries[k].name} has shape [${
            grads[k].shape
          }]`,
        );
      }
      const [m, v] = tf.tidy(() => {
        const g = grads[k];
        const m = this.#m[k].mul(this.#beta1).add(g.mul(1 - this.#beta1));
        const v = this.#v[k].mul(this.#beta2).add(g.square().mul(1 - this.#beta2));
        vars[k].assign(vars[k].sub(m.mul(stepSize).div(v.sqrt().add(this.#epsilon))));
        return [m, v];
      });
      this.#m[k].dispose();
      this.#v[k].dispose();
      this.#m[k] = tf.keep(m);
      this.#v[k] = tf.keep(v);
    }
  }

  dispose(): void {
    tf.dispose([...this.#m, ...this.#v]);
  }
}

function shapesEqual(a: readonly number[], b: readonly number[]) {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** One device sync for all tensors: sum(x * 0) is 0 iff every element of x is finite. */
export function assertFiniteTensors(
  tensors: readonly tf.Tensor[],
  names: readonly string[],
  where: string,
): void {
  const flags = tf.tidy(() => tf.stack(tensors.map((t) => t.mul(0).sum())));
  const values = flags.dataSync();
  flags.dispose();
  for (let k = 0; k < values.length; k++) {
    if (values[k] !== 0) throw new Error(`${where} ${names[k] ?? k} contains NaN or Inf`);
  }
}
