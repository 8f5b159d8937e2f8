// Distance correlation: a hand-computed example, its defining properties, and the differentiable
// tfjs version (NoPeek) against the float64 reference.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../../assert.ts";
import { DCOR_ROWS_MAX, distanceCorrelation, sampleRowIndexes } from "../../../ml/privacy/dcor.ts";
import { dcorTensor } from "../../../ml/privacy/protection.ts";
import { prng } from "../../../ml/model/random.ts";
import { tfForTests } from "../fixtures.ts";

await tfForTests();

function gaussian(n: number, d: number, seed: number): Float64Array {
  const random = prng(seed);
  return Float64Array.from(
    { length: n * d },
    () => Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random()),
  );
}

Deno.test("dcor: hand-computed example x = (1, 2, 3), y = (1, 3, 2) gives sqrt(0.7)", () => {
  // Distances a = [[0,1,2],[1,0,1],[2,1,0]], b = [[0,2,1],[2,0,1],[1,1,0]]; both have row means
  // (1, 2/3, 1) resp. (1, 1, 2/3) and grand mean 8/9. Double-centred:
  //   A = 1/9 [[-10, 2, 8], [2, -4, 2], [8, 2, -10]],  B = 1/9 [[-10, 8, 2], [8, -10, 2], [2, 2, -4]]
  // Σ A∘B = 252/81, Σ A∘A = Σ B∘B = 360/81, so dCov² = 252/729, dVar² = 360/729, dCor² = 0.7.
  const r = distanceCorrelation({ data: [1, 2, 3], rows: 3, columns: 1 }, {
    data: [1, 3, 2],
    rows: 3,
    columns: 1,
  });
  assertAlmostEquals(r.dcov2, 252 / 729, 1e-12);
  assertAlmostEquals(r.dvarX2, 360 / 729, 1e-12);
  assertAlmostEquals(r.dvarY2, 360 / 729, 1e-12);
  assertAlmostEquals(r.dcor, Math.sqrt(0.7), 1e-12);
});

Deno.test("dcor: 1 for a linear (similarity) map, symmetric, ~0 for independent samples", () => {
  const n = 300;
  const x = gaussian(n, 3, 1);
  // Scalar affine map of one column.
  const col = Float64Array.from({ length: n }, (_, i) => x[i * 3]);
  assertAlmostEquals(
    distanceCorrelation({ data: col, rows: n, columns: 1 }, {
      data: col.map((v) => -3 * v + 2),
      rows: n,
      columns: 1,
    }).dcor,
    1,
    1e-9,
  );
  // Rotation by 90° in the first two coordinates, scaled by 2.5, shifted.
  const y = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    y[i * 3] = 2.5 * -x[i * 3 + 1] + 1;
    y[i * 3 + 1] = 2.5 * x[i * 3];
    y[i * 3 + 2] = 2.5 * x[i * 3 + 2] - 4;
  }
  const X = { data: x, rows: n, columns: 3 }, Y = { data: y, rows: n, columns: 3 };
  assertAlmostEquals(distanceCorrelation(X, Y).dcor, 1, 1e-9);
  const Z = { data: gaussian(n, 5, 2), rows: n, columns: 5 };
  assertAlmostEquals(distanceCorrelation(X, Z).dcor, distanceCorrelation(Z, X).dcor, 1e-12);
  // Independent: 0 in the population; the V-statistic's bias shrinks like 1/sqrt(n), so the sample
  // value must fall (about halve) from n = 300 to n = 1200 and be small there.
  const small = distanceCorrelation(X, Z).dcor;
  const big = distanceCorrelation(
    { data: gaussian(1200, 3, 11), rows: 1200, columns: 3 },
    { data: gaussian(1200, 5, 12), rows: 1200, columns: 5 },
  ).dcor;
  assert(
    big < 0.15 && big < 0.7 * small,
    `independent samples: dCor ${small} at n=300, ${big} at n=1200`,
  );
  // The bias-corrected statistic is ~0 for independent samples at any dimension, 1 for linear.
  const highDim = distanceCorrelation(
    { data: gaussian(300, 36, 13), rows: 300, columns: 36 },
    { data: gaussian(300, 704, 14), rows: 300, columns: 704 },
  );
  assert(highDim.dcor > 0.5, `V-statistic bias in high dimension: ${highDim.dcor}`);
  assert(
    Math.abs(highDim.dcor2BiasCorrected) < 0.02,
    `bias-corrected: ${highDim.dcor2BiasCorrected}`,
  );
  assertAlmostEquals(distanceCorrelation(X, Y).dcor2BiasCorrected, 1, 1e-9);
  // Nonlinear dependence that Pearson correlation misses (y = x²) is detected.
  const square = { data: col.map((v) => v * v), rows: n, columns: 1 };
  assert(distanceCorrelation({ data: col, rows: n, columns: 1 }, square).dcor > 0.4);
});

Deno.test("dcor: bad input", () => {
  const ok = { data: [1, 2, 3], rows: 3, columns: 1 };
  assertThrows(
    () => distanceCorrelation(ok, { data: [1, 2], rows: 2, columns: 1 }),
    RangeError,
    "rows",
  );
  assertThrows(
    () =>
      distanceCorrelation({ data: [1], rows: 1, columns: 1 }, { data: [1], rows: 1, columns: 1 }),
    RangeError,
    "at least 2",
  );
  assertThrows(
    () => distanceCorrelation(ok, { data: [1, NaN, 3], rows: 3, columns: 1 }),
    RangeError,
    "non-finite",
  );
  assertThrows(
    () => distanceCorrelation(ok, { data: [1, 2], rows: 3, columns: 1 }),
    RangeError,
    "values",
  );
  const big = { data: new Float64Array(DCOR_ROWS_MAX + 1), rows: DCOR_ROWS_MAX + 1, columns: 1 };
  assertThrows(() => distanceCorrelation(big, big), RangeError, "exceed");
  // A constant sample carries no dependence.
  assertEquals(distanceCorrelation(ok, { data: [5, 5, 5], rows: 3, columns: 1 }).dcor, 0);
  assertEquals(Array.from(sampleRowIndexes(10, 4)), [0, 2, 5, 7]);
  assertEquals(sampleRowIndexes(3, 10).length, 3);
});

Deno.test("dcor: the tfjs version equals the float64 one and has finite gradients", () => {
  const n = 40;
  const x = gaussian(n, 6, 3);
  const zValues = Float64Array.from(
    { length: n * 8 },
    (_, i) => Math.tanh(x[Math.floor(i / 8) * 6 + (i % 6)]) + 0.3 * gaussian(1, 1, i)[0],
  );
  const reference =
    distanceCorrelation({ data: x, rows: n, columns: 6 }, { data: zValues, rows: n, columns: 8 })
      .dcor;
  const before = tf.memory().numTensors;
  const xt = tf.tensor2d(Float32Array.from(x), [n, 6]);
  const zt = tf.tensor3d(Float32Array.from(zValues), [n, 2, 4]);
  const value = tf.tidy(() => dcorTensor(xt, zt).dataSync()[0]);
  assertAlmostEquals(value, reference, 1e-4);
  const g = tf.tidy(() => tf.grad((z: tf.Tensor) => dcorTensor(xt, z))(zt));
  const gv = g.dataSync();
  assert(gv.every(Number.isFinite), "gradient has NaN/Inf");
  assert(gv.some((e) => e !== 0), "gradient is all zero");
  // Finite difference on one element.
  const h = 1e-2;
  const bump = (delta: number) =>
    tf.tidy(() => {
      const values = Float32Array.from(zValues);
      values[5] += delta;
      return dcorTensor(xt, tf.tensor3d(values, [n, 2, 4])).dataSync()[0];
    });
  const numeric = (bump(h) - bump(-h)) / (2 * h);
  assertAlmostEquals(gv[5], numeric, 2e-3);
  tf.dispose([g, xt, zt]);
  assertEquals(tf.memory().numTensors, before);
});
