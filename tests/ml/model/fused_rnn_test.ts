// Gradient check: the fused (Bi)LSTM op against plain tfjs ops differentiated by autodiff.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { fusedRnn, referenceRnn } from "../../../ml/model/fused_rnn.ts";
import { prng } from "../../../ml/model/random.ts";
import { maxAbsDiff, tfForTests } from "../fixtures.ts";

await tfForTests();

function randomTensor(shape: number[], seed: number, scale = 0.5) {
  const random = prng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale), shape);
}

for (const directions of [1, 2]) {
  Deno.test(`fused rnn (${directions} direction${directions > 1 ? "s" : ""}) matches reference value and gradients`, () => {
    const [B, T, D, H] = [5, 7, 3, 4];
    const x = randomTensor([B, T, D], 1, 1);
    const W = randomTensor([directions, D, 4 * H], 2);
    const U = randomTensor([directions, H, 4 * H], 3);
    const b = randomTensor([directions, 4 * H], 4);
    const dy = randomTensor([B, directions * H], 5, 1);
    const run = (op: typeof fusedRnn) =>
      tf.tidy(() => {
        const gradsOf = tf.grads((a, w, u, c) =>
          op(a as tf.Tensor3D, w as tf.Tensor3D, u as tf.Tensor3D, c as tf.Tensor2D)
        );
        const value = op(x as tf.Tensor3D, W as tf.Tensor3D, U as tf.Tensor3D, b as tf.Tensor2D);
        return [value, ...gradsOf([x, W, U, b], dy)];
      });
    const before = tf.memory().numTensors;
    const fused = run(fusedRnn);
    const reference = run(referenceRnn);
    const names = ["value", "dx", "dW", "dU", "db"];
    for (let k = 0; k < names.length; k++) {
      assert.deepEqual(fused[k].shape, reference[k].shape, names[k]);
      const diff = maxAbsDiff(fused[k].dataSync(), reference[k].dataSync());
      assert.ok(diff <= 1e-5, `${names[k]}: max abs diff ${diff} > 1e-5 (seeds 1..5)`);
    }
    tf.dispose([...fused, ...reference]);
    assert.equal(tf.memory().numTensors, before, "fused op leaks tensors");
    tf.dispose([x, W, U, b, dy]);
  });
}

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
