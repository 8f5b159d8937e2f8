// Gradient check: the fused (Bi)LSTM op against plain tfjs ops differentiated by autodiff.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { fusedRnn, referenceRnn } from "../../../ml/model/fused_rnn.ts";
import { prng } from "../../../ml/model/random.ts";
import { LSTM_INFERENCE_CHUNK_ROWS, lstmKernel } from "../../../ml/kernels/lstm_kernel.ts";
import { maxAbsDiff, tfForTests } from "../fixtures.ts";

await tfForTests();

function randomTensor(shape: number[], seed: number, scale = 0.5) {
  const random = prng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale), shape);
}

// [batch, steps, inputs, units]: batch 1, odd sizes, units not a multiple of the SIMD width (4),
// and the default model's edge at batch 256.
const CASES: [number, number, number, number][] = [
  [1, 3, 2, 5],
  [7, 5, 3, 3],
  [5, 7, 3, 4],
  [13, 6, 5, 9],
  [256, 22, 32, 64],
];

function runOp(
  op: typeof fusedRnn,
  inputs: { x: tf.Tensor; W: tf.Tensor; U: tf.Tensor; b: tf.Tensor; dy: tf.Tensor },
) {
  return tf.tidy(() => {
    const gradsOf = tf.grads((a, w, u, c) =>
      op(a as tf.Tensor3D, w as tf.Tensor3D, u as tf.Tensor3D, c as tf.Tensor2D)
    );
    const { x, W, U, b, dy } = inputs;
    const value = op(x as tf.Tensor3D, W as tf.Tensor3D, U as tf.Tensor3D, b as tf.Tensor2D);
    return [value, ...gradsOf([x, W, U, b], dy)];
  });
}

for (const directions of [1, 2]) {
  for (const [B, T, D, H] of CASES) {
    Deno.test(`fused rnn (${directions} direction${directions > 1 ? "s" : ""}, batch ${B}, steps ${T}, inputs ${D}, units ${H}) matches reference value and gradients`, () => {
      const scale = 1 / Math.sqrt(H);
      const inputs = {
        x: randomTensor([B, T, D], 1, 1),
        W: randomTensor([directions, D, 4 * H], 2, 2 * scale),
        U: randomTensor([directions, H, 4 * H], 3, 2 * scale),
        b: randomTensor([directions, 4 * H], 4),
        // dL/dh of a batch-mean loss shrinks with the batch; at batch 256 with |dy| ~ 1 the weight
        // gradients reach ~7 and float32 summation order alone differs by ~2e-5 (relative 3e-6).
        dy: randomTensor([B, directions * H], 5, Math.min(1, 16 / B)),
      };
      const before = tf.memory().numTensors;
      const fused = runOp(fusedRnn, inputs);
      const reference = runOp(referenceRnn, inputs);
      const names = ["value", "dx", "dW", "dU", "db"];
      for (let k = 0; k < names.length; k++) {
        assert.deepEqual(fused[k].shape, reference[k].shape, names[k]);
        const values = fused[k].dataSync();
        assert.ok(values.every(Number.isFinite), `${names[k]}: not finite`);
        const diff = maxAbsDiff(values, reference[k].dataSync());
        assert.ok(diff <= 1e-5, `${names[k]}: max abs diff ${diff} > 1e-5 (seeds 1..5)`);
      }
      // The check can fail: the gradients are not trivially zero.
      assert.ok(maxAbsDiff(fused[2].dataSync(), new Float32Array(fused[2].size)) > 1e-3);
      tf.dispose([...fused, ...reference]);
      assert.equal(tf.memory().numTensors, before, "fused op leaks tensors");
      tf.dispose(Object.values(inputs));
    });
  }
}

Deno.test("fused rnn: saturated gates (pre-activations up to +-60) match the reference", () => {
  // Past the kernel's clamps (tanh at +-7.9, exp at -87.3..88.3) the values and gradients must still
  // be those of the exact functions: gates at 0 or 1, gradients vanishing, nothing NaN.
  const [B, T, D, H] = [9, 5, 3, 6];
  const inputs = {
    x: randomTensor([B, T, D], 21, 1),
    W: randomTensor([2, D, 4 * H], 22, 20),
    U: randomTensor([2, H, 4 * H], 23, 20),
    b: randomTensor([2, 4 * H], 24, 20),
    dy: randomTensor([B, 2 * H], 25, 1),
  };
  const fused = runOp(fusedRnn, inputs);
  const reference = runOp(referenceRnn, inputs);
  for (let k = 0; k < fused.length; k++) {
    const values = fused[k].dataSync();
    assert.ok(values.every(Number.isFinite), `output ${k}: not finite`);
    const ref = reference[k].dataSync();
    const diff = maxAbsDiff(values, ref);
    const magnitude = (ref as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    // dx reaches ~10 here (W up to +-20): float32 summation order alone differs by ~4e-5 there.
    assert.ok(diff <= 1e-5 * Math.max(1, magnitude), `output ${k}: max abs diff ${diff}`);
  }
  const h = fused[0].dataSync();
  assert.ok(h.some((v) => Math.abs(v) > 0.99), "no unit saturated: the test lost its point");
  tf.dispose([...fused, ...reference, ...Object.values(inputs)]);
});

Deno.test("fused rnn: interleaved differentiable passes keep their own saved state", () => {
  // Two forward passes under one tape before either backward pass: the kernel spills the first
  // pass's state out of its memory and restores it for the first backward pass.
  const [B, T, D, H] = [6, 4, 3, 5];
  const a = randomTensor([B, T, D], 11, 1);
  const c = randomTensor([B, T, D], 12, 1);
  const W = randomTensor([2, D, 4 * H], 13);
  const U = randomTensor([2, H, 4 * H], 14);
  const b = randomTensor([2, 4 * H], 15);
  const f = (op: typeof fusedRnn) =>
    tf.tidy(() =>
      tf.grads((x1, x2, w, u, bb) => {
        const y1 = op(x1 as tf.Tensor3D, w as tf.Tensor3D, u as tf.Tensor3D, bb as tf.Tensor2D);
        const y2 = op(x2 as tf.Tensor3D, w as tf.Tensor3D, u as tf.Tensor3D, bb as tf.Tensor2D);
        return y1.mul(y2).sum();
      })([a, c, W, U, b])
    );
  const fused = f(fusedRnn);
  const reference = f(referenceRnn);
  for (let k = 0; k < fused.length; k++) {
    const diff = maxAbsDiff(fused[k].dataSync(), reference[k].dataSync());
    assert.ok(diff <= 1e-5, `gradient ${k}: max abs diff ${diff}`);
  }
  tf.dispose([...fused, ...reference, a, c, W, U, b]);
});

Deno.test("fused rnn: forward-only passes are chunked over the batch and equal the taped pass", () => {
  const B = LSTM_INFERENCE_CHUNK_ROWS + 37; // two chunks
  const [T, D, H] = [3, 4, 6];
  const shape = { batch: B, steps: T, inputs: D, units: H, directions: 2 };
  const random = prng(21);
  const make = (n: number) => Float32Array.from({ length: n }, () => random() - 0.5);
  const x = make(B * T * D);
  const W = make(2 * D * 4 * H);
  const U = make(2 * H * 4 * H);
  const bias = make(2 * 4 * H);
  const kernel = lstmKernel();
  const chunked = kernel.forward(shape, x, W, U, bias, false);
  const taped = kernel.forward(shape, x, W, U, bias, true);
  assert.equal(chunked.tape, null);
  assert.ok(taped.tape);
  assert.equal(maxAbsDiff(chunked.h, taped.h), 0);
});

Deno.test("lstm kernel rejects wrong buffer sizes and oversized passes", () => {
  const kernel = lstmKernel();
  const shape = { batch: 2, steps: 3, inputs: 4, units: 5, directions: 1 };
  const ok = (n: number) => new Float32Array(n);
  assert.throws(
    () => kernel.forward(shape, ok(23), ok(80), ok(100), ok(20), true),
    /x has 23 values, expected 24/,
  );
  assert.throws(
    () => kernel.forward({ ...shape, directions: 3 }, ok(24), ok(80), ok(100), ok(20), true),
    /directions=3/,
  );
  const big = { batch: 65536, steps: 22, inputs: 32, units: 256, directions: 2 };
  assert.throws(
    () =>
      kernel.forward(
        big,
        ok(65536 * 22 * 32),
        ok(2 * 32 * 1024),
        ok(2 * 256 * 1024),
        ok(2048),
        true,
      ),
    /MB of wasm memory, limit 1024 MB/,
  );
  const run = kernel.forward(shape, ok(24), ok(80), ok(100), ok(20), true);
  assert.throws(() => kernel.backward(run.tape!, ok(9)), /dy has 9 values, expected 10/);
  kernel.backward(run.tape!, ok(10));
  assert.throws(() => kernel.backward(run.tape!, ok(10)), /already differentiated/);
});

Deno.test("fused rnn rejects inconsistent shapes", () => {
  tf.tidy(() => {
    const x = tf.zeros([2, 3, 4]) as tf.Tensor3D;
    const W = tf.zeros([1, 5, 8]) as tf.Tensor3D; // 5 inputs != 4
    const U = tf.zeros([1, 2, 8]) as tf.Tensor3D;
    const b = tf.zeros([1, 8]) as tf.Tensor2D;
    assert.throws(() => fusedRnn(x, W, U, b), /inconsistent/);
  });
});

Deno.test("fused rnn does not keep intermediates outside a gradient tape", () => {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const out = fusedRnn(
      tf.ones([2, 4, 3]) as tf.Tensor3D,
      tf.ones([2, 3, 8]).mul(0.1) as tf.Tensor3D,
      tf.ones([2, 2, 8]).mul(0.1) as tf.Tensor3D,
      tf.zeros([2, 8]) as tf.Tensor2D,
    );
    out.dataSync();
  });
  assert.equal(tf.memory().numTensors, before);
});
