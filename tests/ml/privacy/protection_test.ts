// Clipping, seeded noise that is never reused, the accountant's parameters, NoPeek's loss and the
// label randomized response.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../../assert.ts";
import {
  clipRows,
  createProtection,
  gaussianNoise,
  randomizedResponse,
  validateProtectionOptions,
} from "../../../ml/privacy/protection.ts";
import { epsilonOf } from "../../../ml/privacy/rdp.ts";
import { tfForTests } from "../fixtures.ts";

await tfForTests();

const rowNorms = (t: tf.Tensor) =>
  tf.tidy(() => Array.from(t.reshape([t.shape[0], -1]).square().sum(1).sqrt().dataSync()));

Deno.test("protection: clipping bounds every row's L2 norm and leaves short rows alone", () => {
  const acts = tf.tensor3d([3, 4, 0, 0, 0.3, 0.4, 0, 0, 0, 0, 0, 0], [3, 2, 2]);
  const clipped = clipRows(acts, 1);
  const norms = rowNorms(clipped);
  assertAlmostEquals(norms[0], 1, 1e-6); // 5 -> 1
  assertAlmostEquals(norms[1], 0.5, 1e-6); // below the clip norm: unchanged
  assertEquals(norms[2], 0); // all-zero row stays zero, no NaN
  assertEquals(Array.from(clipped.dataSync()).slice(0, 2).map((v) => Math.round(v * 1e6) / 1e6), [
    0.6,
    0.8,
  ]);
  tf.dispose([acts, clipped]);
});

Deno.test("protection: noise is seeded, has std σ·C, and is fresh on every release", () => {
  const before = tf.memory().numTensors;
  const acts = tf.zeros([64, 22, 32]) as tf.Tensor3D;
  const release = (seed: number) => {
    const p = createProtection({ clipNorm: 2, noiseMultiplier: 0.5, seed });
    const a = tf.tidy(() => Array.from(p.transform(acts, 0).dataSync()));
    const b = tf.tidy(() => Array.from(p.transform(acts, 0).dataSync()));
    return [a, b];
  };
  const [a1, b1] = release(7);
  const [a2] = release(7);
  assertEquals(a1, a2, "same seed, same call sequence: same noise");
  assert(a1.some((v, i) => v !== b1[i]), "second release with the same step reused the noise");
  const mean = a1.reduce((s, v) => s + v, 0) / a1.length;
  const std = Math.sqrt(a1.reduce((s, v) => s + (v - mean) ** 2, 0) / a1.length);
  assertAlmostEquals(mean, 0, 0.01);
  assertAlmostEquals(std, 0.5 * 2, 0.02);
  acts.dispose();
  assertEquals(tf.memory().numTensors, before);
  const g = gaussianNoise(100_001, 3);
  assertEquals(g.length, 100_001);
  assert(g.every(Number.isFinite));
});

Deno.test("protection: identity without options; differentiable part is the clipping", () => {
  const acts = tf.tensor3d([3, 4, 1, 0], [2, 1, 2]);
  const none = createProtection({ seed: 1 });
  tf.tidy(() => assertEquals(Array.from(none.transform(acts, 0).dataSync()), [3, 4, 1, 0]));
  assertEquals(none.describe().name, "none");
  assertEquals(none.account(5, 1e-5), null);
  assertEquals(none.extraDeviceLoss, undefined);
  const clip = createProtection({ clipNorm: 1, noiseMultiplier: 1, seed: 1 });
  tf.tidy(() =>
    assertEquals(rowNorms(clip.differentiable(acts)).map((v) => Math.round(v * 1e5) / 1e5), [1, 1])
  );
  // Gradient through the clipped release equals the gradient of the differentiable part.
  const g = tf.tidy(() =>
    tf.grad((a: tf.Tensor) => clip.differentiable(a as tf.Tensor3D).sum())(acts).dataSync()
  );
  assert(Array.from(g).every(Number.isFinite));
  acts.dispose();
});

Deno.test("protection: the accountant sees sensitivity 2C (σ/2), sampling rate 1, one step per release", () => {
  const p = createProtection({ clipNorm: 1, noiseMultiplier: 2, seed: 0 });
  const r = p.account(5, 1e-5)!;
  assertEquals(
    r.epsilon,
    epsilonOf({ noiseMultiplier: 1, samplingRate: 1, steps: 5 }, 1e-5).epsilon,
  );
  assertEquals(p.describe().effectiveNoiseMultiplier, 1);
  assertEquals(p.describe().noiseStd, 2);
  assert(p.account(10, 1e-5)!.epsilon > r.epsilon, "more releases must cost more");
});

Deno.test("protection: NoPeek adds α·dCor(x, acts) with a finite, non-zero device gradient", () => {
  const p = createProtection({ nopeekWeight: 0.5, seed: 0 });
  const x = tf.randomNormal([16, 8], 0, 1, "float32", 1) as tf.Tensor2D;
  const w = tf.variable(tf.randomNormal([8, 12], 0, 1, "float32", 2));
  const { value, grads } = tf.variableGrads(() =>
    p.extraDeviceLoss!(x, tf.relu(tf.matMul(x, w)).reshape([16, 3, 4]) as tf.Tensor3D)
  );
  const loss = value.dataSync()[0];
  assert(loss > 0 && loss <= 0.5 + 1e-6, `α·dCor = ${loss}`);
  const g = grads[w.name].dataSync();
  assert(g.every(Number.isFinite) && g.some((v) => v !== 0));
  tf.dispose([x, w, value, ...Object.values(grads)]);
});

Deno.test("protection: out-of-range parameters are refused", () => {
  assertThrows(() => validateProtectionOptions({ clipNorm: 0, seed: 0 }), RangeError, "clip norm");
  assertThrows(() => validateProtectionOptions({ clipNorm: -1, seed: 0 }), RangeError, "clip norm");
  assertThrows(
    () => validateProtectionOptions({ clipNorm: 1, noiseMultiplier: -0.1, seed: 0 }),
    RangeError,
    "noise multiplier",
  );
  assertThrows(
    () => validateProtectionOptions({ clipNorm: 1, noiseMultiplier: NaN, seed: 0 }),
    RangeError,
    "noise multiplier",
  );
  assertThrows(
    () => validateProtectionOptions({ noiseMultiplier: 1, seed: 0 }),
    RangeError,
    "clip norm",
  );
  assertThrows(
    () => validateProtectionOptions({ nopeekWeight: -1, seed: 0 }),
    RangeError,
    "NoPeek",
  );
  assertThrows(() => validateProtectionOptions({ seed: -1 }), RangeError, "seed");
  assertThrows(() => gaussianNoise(-1, 0), RangeError);
  assertThrows(() => randomizedResponse(new Int32Array([0]), 2, 0, 0), RangeError, "epsilon");
  assertThrows(() => randomizedResponse(new Int32Array([2]), 2, 1, 0), RangeError, "label");
});

Deno.test("protection: randomized response keeps a label with probability e^ε / (e^ε + k - 1)", () => {
  const labels = new Int32Array(20_000).map((_, i) => i % 2);
  const noisy = randomizedResponse(labels, 2, Math.log(3), 5); // keep 3/4
  const kept = noisy.reduce((n, y, i) => n + (y === labels[i] ? 1 : 0), 0) / labels.length;
  assertAlmostEquals(kept, 0.75, 0.015);
  const four = randomizedResponse(new Int32Array(20_000).fill(2), 4, Math.log(3), 6); // keep 3/6
  const counts = [0, 0, 0, 0];
  four.forEach((y) => counts[y]++);
  assertAlmostEquals(counts[2] / 20_000, 0.5, 0.015);
  for (const c of [0, 1, 3]) assertAlmostEquals(counts[c] / 20_000, 1 / 6, 0.015);
});
