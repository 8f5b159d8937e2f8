import assert from "node:assert/strict";
import {
  coordinateMedianOf,
  cosine,
  createRng,
  decide,
  DEFAULT_PARAMS,
  leaveOneOutMedianCosines,
  quantizeEvaluation,
  quantizeMicro,
  scoreGeometry,
  sortColumn,
  type UpdateScores,
} from "../../../ledger/app/mod.ts";

Deno.test("leave-one-out median cosines equal the brute-force ones, bit for bit", () => {
  const rng = createRng(11);
  for (const n of [2, 3, 4, 7, 10]) {
    const deltas = Array.from(
      { length: n },
      () => Float64Array.from({ length: 37 }, () => (rng.int(4) === 0 ? 0.5 : rng.normal())),
    );
    const fast = leaveOneOutMedianCosines(deltas);
    const slow = deltas.map((d, i) =>
      cosine(d, coordinateMedianOf(deltas.filter((_, k) => k !== i)))
    );
    assert.deepEqual(fast, slow, `n = ${n}`);
  }
  assert.deepEqual(leaveOneOutMedianCosines([Float64Array.of(1, 2)]), [null]);
});

Deno.test("geometry by hand: norms, ratio to the median norm, cosine, clone distance, staleness", () => {
  const inputs = [
    { deviceId: "a", seq: 0, baseRound: 3, delta: Float64Array.of(3, 4) }, // norm 5
    { deviceId: "b", seq: 1, baseRound: 3, delta: Float64Array.of(6, 8) }, // norm 10
    { deviceId: "c", seq: 2, baseRound: 2, delta: Float64Array.of(3, 4.00001) }, // copy of a
  ];
  const g = scoreGeometry(inputs, 3, DEFAULT_PARAMS);
  assert.equal(g.medianNormMicro, quantizeMicro(Math.hypot(3, 4.00001)));
  assert.deepEqual(g.scores.map((s) => s.l2NormMicro), [
    5_000_000,
    10_000_000,
    quantizeMicro(Math.hypot(3, 4.00001)),
  ]);
  assert.deepEqual(g.scores.map((s) => s.staleness), [0, 0, 1]);
  assert.equal(g.scores[0].cloneDistanceMicro, null); // first in ledger order
  assert.equal(g.scores[1].cloneDistanceMicro, 500_000); // |b - a| / max(|a|, |b|) = 5 / 10
  assert.equal(g.scores[2].cloneDistanceMicro, 2); // 1e-5 / 5
  assert.ok(g.scores.every((s) => s.cosineMicro! > 999_000));
  assert.deepEqual(scoreGeometry([], 1, DEFAULT_PARAMS), { medianNormMicro: 0, scores: [] });
});

const base: UpdateScores = {
  l2NormMicro: 1_000_000,
  normRatioMicro: 1_000_000,
  cosineMicro: 500_000,
  cloneDistanceMicro: 800_000,
  staleness: 0,
  lossMicro: null,
  accuracyMicro: null,
};

Deno.test("decision rules at and across their thresholds", () => {
  const p = DEFAULT_PARAMS;
  const d = (s: Partial<UpdateScores>) => decide({ ...base, ...s }, null, p);
  assert.deepEqual(d({}), []);
  assert.deepEqual(d({ l2NormMicro: 1, normRatioMicro: 0, cosineMicro: 0 }), [
    "zero_delta",
    "norm_too_small",
    "cosine_too_low",
  ]);
  assert.deepEqual(d({ normRatioMicro: p.maxNormRatioMicro }), []);
  assert.deepEqual(d({ normRatioMicro: p.maxNormRatioMicro + 1 }), ["norm_too_large"]);
  assert.deepEqual(d({ normRatioMicro: p.minNormRatioMicro }), []);
  assert.deepEqual(d({ normRatioMicro: p.minNormRatioMicro - 1 }), ["norm_too_small"]);
  assert.deepEqual(d({ cosineMicro: p.minCosineMicro }), []);
  assert.deepEqual(d({ cosineMicro: p.minCosineMicro - 1 }), ["cosine_too_low"]);
  assert.deepEqual(d({ cosineMicro: null }), []);
  assert.deepEqual(d({ cloneDistanceMicro: p.cloneDistanceMaxMicro }), ["near_duplicate"]);
  assert.deepEqual(d({ cloneDistanceMicro: p.cloneDistanceMaxMicro + 1 }), []);
  assert.deepEqual(d({ staleness: p.maxStalenessRounds + 1 }), ["stale"]);
  const ev = { lossMicro: 1_000_000, accuracyMicro: 900_000 };
  const e = (s: Partial<UpdateScores>) => decide({ ...base, ...s }, ev, p);
  assert.deepEqual(e({ lossMicro: 1_250_000, accuracyMicro: 800_000 }), []);
  assert.deepEqual(e({ lossMicro: 1_250_001, accuracyMicro: 799_999 }), [
    "loss_too_high",
    "accuracy_too_low",
  ]);
  assert.deepEqual(decide(base, null, { ...p, requireEvaluation: true }), ["not_evaluated"]);
});

Deno.test("quantization: micro-units, no -0, clamps, evaluation sanitized", () => {
  assert.equal(quantizeMicro(0.1234565), 123_457);
  assert.ok(Object.is(quantizeMicro(-1e-9), 0));
  assert.equal(quantizeMicro(1e300), Number.MAX_SAFE_INTEGER);
  assert.equal(quantizeMicro(-Infinity), -Number.MAX_SAFE_INTEGER);
  assert.throws(() => quantizeMicro(NaN), /NaN/);
  assert.deepEqual(quantizeEvaluation({ loss: NaN, accuracy: 1.5 }), {
    lossMicro: Number.MAX_SAFE_INTEGER,
    accuracyMicro: 1_000_000,
  });
  assert.deepEqual(quantizeEvaluation({ loss: 0.25, accuracy: NaN }), {
    lossMicro: 250_000,
    accuracyMicro: 0,
  });
});

Deno.test("sortColumn orders exactly like Float64Array.prototype.sort, signed zeros included", () => {
  const rng = createRng(12);
  for (const n of [0, 1, 2, 5, 17, 48, 49, 100]) {
    for (let t = 0; t < 20; t++) {
      const column = Float64Array.from(
        { length: n },
        () => [0, -0, 1, -1, rng.normal()][rng.int(5)],
      );
      const expected = Float64Array.from(column).sort();
      const actual = sortColumn(Float64Array.from(column));
      assert.ok(actual.every((v, i) => Object.is(v, expected[i])), `n = ${n}`);
    }
  }
});
