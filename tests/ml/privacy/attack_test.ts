// The curious edge's tools on synthetic cases with known answers: a decoder inverts an invertible
// map and gains nothing from pure noise; label inference finds a separable label.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../../assert.ts";
import {
  inferLabels,
  labelInferenceMetrics,
  normalizedMse,
  reconstruct,
} from "../../../ml/privacy/attack.ts";
import { prng } from "../../../ml/model/random.ts";
import { tfForTests } from "../fixtures.ts";

await tfForTests();

function normals(n: number, seed: number): Float32Array {
  const random = prng(seed);
  return Float32Array.from(
    { length: n },
    () => Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random()),
  );
}

/** acts = relu-free invertible linear mix of raw (d -> 2d, full column rank). */
function mix(raw: Float32Array, rows: number, d: number): Float32Array {
  const out = new Float32Array(rows * 2 * d);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) {
      const a = raw[r * d + j], b = raw[r * d + ((j + 1) % d)];
      out[r * 2 * d + 2 * j] = a + 0.5 * b;
      out[r * 2 * d + 2 * j + 1] = a - 0.25 * b;
    }
  }
  return out;
}

const fast = { epochs: 20, batchSize: 64, learningRate: 1e-2, hidden: 0, seed: 3 };

Deno.test("attack: a decoder inverts an invertible map (nMSE ~ 0) and learns nothing from noise (nMSE ~ 1)", () => {
  const before = tf.memory().numTensors;
  const d = 4, aux = 400, target = 200;
  const auxRaw = normals(aux * d, 1), targetRaw = normals(target * d, 2);
  const guess = reconstruct(
    { data: mix(auxRaw, aux, d), rows: aux, columns: 2 * d },
    { data: auxRaw, rows: aux, columns: d },
    { data: mix(targetRaw, target, d), rows: target, columns: 2 * d },
    fast,
  );
  const nmse = normalizedMse({ data: targetRaw, rows: target, columns: d }, guess);
  assert(Array.from(nmse).every((v) => v < 0.02), `invertible map: nMSE ${Array.from(nmse)}`);

  // Activations independent of the raw rows: early stopping keeps the decoder near the mean.
  const noiseGuess = reconstruct(
    { data: normals(aux * 8, 3), rows: aux, columns: 8 },
    { data: auxRaw, rows: aux, columns: d },
    { data: normals(target * 8, 4), rows: target, columns: 8 },
    { ...fast, hidden: 32 },
  );
  const noiseNmse = normalizedMse({ data: targetRaw, rows: target, columns: d }, noiseGuess);
  assert(
    Array.from(noiseNmse).every((v) => v > 0.9 && v < 1.3),
    `independent activations: nMSE ${Array.from(noiseNmse)}`,
  );
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("attack: label inference separates a label carried by the activations", () => {
  const rows = 300, width = 6;
  const acts = normals(rows * width, 5);
  const labels = new Int32Array(rows).map((
    _,
    r,
  ) => (acts[r * width] + 0.5 * acts[r * width + 3] > 0 ? 1 : 0));
  const scores = inferLabels({ data: acts, rows, columns: width }, labels, {
    data: acts,
    rows,
    columns: width,
  }, fast);
  const m = labelInferenceMetrics(scores, labels, labels);
  assert(m.auc > 0.97 && m.accuracy > 0.9, `AUC ${m.auc}, accuracy ${m.accuracy}`);
  assert(m.majorityAccuracy >= 0.4 && m.majorityAccuracy <= 0.6);
});

Deno.test("attack: normalized MSE on a hand example; constant columns are NaN", () => {
  // Column 0: truth (0, 2), variance sum 2, guess (1, 1) -> squared errors 1 + 1 = 2 -> nMSE 1.
  // Column 1: truth (1, 3), guess exact -> 0. Column 2: constant -> NaN.
  const nmse = normalizedMse(
    { data: Float32Array.from([0, 1, 5, 2, 3, 5]), rows: 2, columns: 3 },
    Float32Array.from([1, 1, 0, 1, 3, 0]),
  );
  assertAlmostEquals(nmse[0], 1, 1e-12);
  assertEquals(nmse[1], 0);
  assert(Number.isNaN(nmse[2]));
});

Deno.test("attack: mismatched shapes and bad options are refused", () => {
  const m = { data: new Float32Array(20), rows: 10, columns: 2 };
  assertThrows(
    () => reconstruct(m, { data: new Float32Array(9), rows: 9, columns: 1 }, m, fast),
    RangeError,
    "rows",
  );
  assertThrows(
    () => reconstruct(m, m, { data: new Float32Array(30), rows: 10, columns: 3 }, fast),
    RangeError,
    "columns",
  );
  assertThrows(() => reconstruct(m, m, m, { ...fast, epochs: 0 }), RangeError, "epochs");
  assertThrows(() => inferLabels(m, new Int32Array(3), m, fast), RangeError, "labels");
  assertThrows(() => normalizedMse(m, new Float32Array(3)), RangeError);
});
