// The fused Adam (ml/train/adam.ts: one loop per parameter) against the tfjs-op Adam it replaced
// (kept here as the reference): weights within 1e-6 over several steps; the NaN/Inf gate refuses a
// non-finite gradient before it touches weights or moments; no tensors leak.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Adam } from "../../../ml/train/adam.ts";
import { makeLayout } from "../../../ml/model/params.ts";
import { ParamSet } from "../../../ml/model/split_model.ts";
import { prng } from "../../../ml/model/random.ts";
import { maxAbsDiff, tfForTests } from "../fixtures.ts";

await tfForTests();

/** The previous implementation: ~10 tfjs ops per parameter. */
class ReferenceAdam {
  #m: tf.Tensor[];
  #v: tf.Tensor[];
  #steps = 0;
  constructor(
    readonly params: ParamSet,
    readonly lr: number,
    readonly b1 = 0.9,
    readonly b2 = 0.999,
  ) {
    this.#m = params.tensors.map((p) => tf.keep(tf.zerosLike(p)));
    this.#v = params.tensors.map((p) => tf.keep(tf.zerosLike(p)));
  }
  apply(grads: readonly tf.Tensor[]) {
    const vars = this.params.variables;
    this.#steps++;
    const t = this.#steps;
    const stepSize = this.lr * Math.sqrt(1 - this.b2 ** t) / (1 - this.b1 ** t);
    for (let k = 0; k < vars.length; k++) {
      const [m, v] = tf.tidy(() => {
        const g = grads[k];
        const m = this.#m[k].mul(this.b1).add(g.mul(1 - this.b1));
        const v = this.#v[k].mul(this.b2).add(g.square().mul(1 - this.b2));
        vars[k].assign(vars[k].sub(m.mul(stepSize).div(v.sqrt().add(1e-7))));
        return [m, v];
      });
      tf.dispose([this.#m[k], this.#v[k]]);
      this.#m[k] = tf.keep(m);
      this.#v[k] = tf.keep(v);
    }
  }
  dispose() {
    tf.dispose([...this.#m, ...this.#v]);
  }
}

const layout = makeLayout([
  { name: "a.kernel", shape: [3, 1, 32] },
  { name: "a.bias", shape: [32] },
  { name: "b.kernel", shape: [128, 33] },
  { name: "b.bias", shape: [1] },
]);

function initial(seed: number) {
  const random = prng(seed);
  return Float32Array.from({ length: layout.totalLength }, () => (random() * 2 - 1) * 0.5);
}

function randomGrads(seed: number, scale: number) {
  const random = prng(seed);
  return layout.entries.map((e) =>
    tf.tensor(Float32Array.from({ length: e.size }, () => (random() * 2 - 1) * scale), [...e.shape])
  );
}

Deno.test("fused Adam equals the tfjs-op Adam within 1e-6 over 20 steps", () => {
  for (const lr of [1e-3, 3e-2]) {
    const fusedParams = new ParamSet(layout, initial(1));
    const referenceParams = new ParamSet(layout, initial(1));
    const fused = new Adam(fusedParams, { learningRate: lr });
    const reference = new ReferenceAdam(referenceParams, lr);
    const before = tf.memory().numTensors;
    for (let step = 0; step < 20; step++) {
      // Gradient scales from tiny to large, and exact zeros (step 5).
      const grads = randomGrads(100 + step, step === 5 ? 0 : 10 ** ((step % 7) - 4));
      fused.apply(grads, "test");
      reference.apply(grads);
      tf.dispose(grads);
      const d = maxAbsDiff(fusedParams.read(), referenceParams.read());
      assert.ok(d <= 1e-6, `lr ${lr} step ${step}: weights differ by ${d}`);
    }
    assert.equal(tf.memory().numTensors, before, "leaked tensors");
    assert.notDeepEqual(fusedParams.read(), initial(1), "no update happened");
    fused.dispose();
    reference.dispose();
    fusedParams.dispose();
    referenceParams.dispose();
  }
});

Deno.test("fused Adam refuses a NaN/Inf or misshaped gradient before touching weights or moments", () => {
  const params = new ParamSet(layout, initial(2));
  const twin = new ParamSet(layout, initial(2));
  const adam = new Adam(params, { learningRate: 1e-2 });
  const twinAdam = new Adam(twin, { learningRate: 1e-2 });
  const first = randomGrads(7, 0.1);
  adam.apply(first, "device 2: device update");
  twinAdam.apply(first, "twin");
  tf.dispose(first);
  const weights = params.read();
  for (const bad of [NaN, Infinity, -Infinity]) {
    const grads = randomGrads(8, 0.1);
    const values = grads[2].dataSync().slice();
    values[17] = bad;
    grads[2].dispose();
    grads[2] = tf.tensor(values, [128, 33]);
    assert.throws(
      () => adam.apply(grads, "device 2: device update"),
      /device 2: device update: gradient b.kernel contains NaN or Inf/,
    );
    tf.dispose(grads);
    assert.deepEqual(params.read(), weights);
  }
  const misshaped = randomGrads(9, 0.1);
  misshaped[3].dispose();
  misshaped[3] = tf.zeros([2]);
  assert.throws(() => adam.apply(misshaped, "edge"), /edge: gradient of b.bias has shape \[2\]/);
  tf.dispose(misshaped);
  const short = randomGrads(9, 0.1);
  assert.throws(() => adam.apply(short.slice(0, 2), "edge"), /2 gradients for 4/);
  tf.dispose(short);
  assert.deepEqual(params.read(), weights);
  // The refused steps left no trace: the next step equals the twin's, which never saw them.
  const next = randomGrads(10, 0.1);
  adam.apply(next, "device 2");
  twinAdam.apply(next, "twin");
  tf.dispose(next);
  assert.deepEqual(params.read(), twin.read());
  params.dispose();
  twin.dispose();
});

Deno.test("applyArrays equals apply bit for bit and refuses NaN/Inf or misshaped arrays untouched", () => {
  const viaTensors = new ParamSet(layout, initial(3));
  const viaArrays = new ParamSet(layout, initial(3));
  const a = new Adam(viaTensors, { learningRate: 1e-2 });
  const b = new Adam(viaArrays, { learningRate: 1e-2 });
  const before = tf.memory().numTensors;
  for (let step = 0; step < 5; step++) {
    const grads = randomGrads(200 + step, 10 ** (step - 3));
    a.apply(grads, "tensors");
    b.applyArrays(grads.map((g) => g.dataSync() as Float32Array), "arrays");
    tf.dispose(grads);
    assert.deepEqual(viaArrays.read(), viaTensors.read(), `step ${step}`);
  }
  assert.equal(tf.memory().numTensors, before, "leaked tensors");
  const weights = viaArrays.read();
  const arrays = () => {
    const grads = randomGrads(300, 0.1);
    const values = grads.map((g) => g.dataSync().slice() as Float32Array);
    tf.dispose(grads);
    return values;
  };
  for (const bad of [NaN, Infinity, -Infinity]) {
    const grads = arrays();
    grads[1][31] = bad;
    assert.throws(
      () => b.applyArrays(grads, "device 4: device update"),
      /device 4: device update: gradient a.bias contains NaN or Inf/,
    );
  }
  const long = arrays();
  long[3] = new Float32Array(2);
  assert.throws(() => b.applyArrays(long, "edge"), /edge: gradient of b.bias has 2 values, \[1\]/);
  assert.throws(() => b.applyArrays(arrays().slice(0, 3), "edge"), /3 gradients for 4/);
  assert.deepEqual(viaArrays.read(), weights);
  // The refused steps left no trace in the moments either.
  const next = arrays();
  a.applyArrays(next, "tensors");
  b.applyArrays(next, "arrays");
  assert.deepEqual(viaArrays.read(), viaTensors.read());
  viaTensors.dispose();
  viaArrays.dispose();
});
