import assert from "node:assert/strict";
import {
  aggregate,
  type AggregationInput,
  AggregationTooFew,
  coordinateMedian,
  createRng,
  fedAvg,
  krumScores,
  multiKrum,
  trimmedMean,
} from "../../../ledger/app/mod.ts";

const u = (deviceId: string, values: number[], sampleCount = 1): AggregationInput => ({
  deviceId,
  delta: Float64Array.from(values),
  sampleCount,
});
const options = { trimFractionMicro: 200_000, krumByzantine: 1, multiKrumSelect: 3 };

Deno.test("fedavg weights by sample count", () => {
  // (1*1 + 3*3) / 4 = 2.5 ; (1*2 + 3*6) / 4 = 5
  assert.deepEqual([...fedAvg([u("b", [3, 6], 3), u("a", [1, 2], 1)])], [2.5, 5]);
});

Deno.test("fedavg rejects a non-positive sample count", () => {
  assert.throws(() => fedAvg([u("a", [1], 0)]), /sample count 0/);
});

Deno.test("coordinate-wise median, odd and even counts", () => {
  assert.deepEqual([...coordinateMedian([u("a", [1, 10]), u("b", [2, 20]), u("c", [3, -5])])], [
    2,
    10,
  ]);
  assert.deepEqual([...coordinateMedian([u("a", [1]), u("b", [2]), u("c", [3]), u("d", [10])])], [
    2.5,
  ]);
  assert.deepEqual([...coordinateMedian([u("a", [7, -1])])], [7, -1]);
});

Deno.test("trimmed mean drops floor(beta n) per end", () => {
  const five = [u("a", [1]), u("b", [2]), u("c", [3]), u("d", [4]), u("e", [100])];
  assert.deepEqual([...trimmedMean(five, 200_000)], [3]); // k = 1: mean(2, 3, 4)
  const four = five.slice(0, 4);
  assert.deepEqual([...trimmedMean(four, 200_000)], [2.5]); // k = floor(0.8) = 0: plain mean
  assert.deepEqual([...trimmedMean(five, 0)], [22]);
  assert.throws(() => trimmedMean(five, 500_000), /must be in \[0, 0.5\)/);
});

// Points 0, 1, 2, 3, 100 with f = 1: each scores its n - f - 2 = 2 nearest squared distances.
const line = [u("a", [0]), u("b", [1]), u("c", [2]), u("d", [3]), u("e", [100])];

Deno.test("krum scores by hand", () => {
  assert.deepEqual(krumScores(line, 1), [5, 2, 2, 5, 97 ** 2 + 98 ** 2]);
});

Deno.test("krum picks the lowest score; ties go to the smaller device id", () => {
  const { delta, selected } = multiKrum(line, 1, 1);
  assert.deepEqual(selected, ["b"]); // b and c both score 2
  assert.deepEqual([...delta], [1]);
});

Deno.test("multi-krum averages the m best (a before d on a tie)", () => {
  const { delta, selected } = multiKrum(line, 1, 3);
  assert.deepEqual(selected, ["a", "b", "c"]);
  assert.deepEqual([...delta], [1]);
});

Deno.test("krum needs n >= 2f + 3 and multi-krum m <= n - f", () => {
  assert.throws(() => krumScores(line.slice(0, 4), 1), AggregationTooFew);
  assert.throws(() => multiKrum(line, 1, 5), AggregationTooFew);
  assert.throws(() => krumScores(line.slice(0, 2), 0), AggregationTooFew);
});

Deno.test("aggregate falls back to the median when the rule needs more updates, and says so", () => {
  const r = aggregate(line.slice(0, 4), "krum", options);
  assert.equal(r.ruleUsed, "median");
  assert.match(r.fallback!, /krum needs at least 5 updates/);
  assert.deepEqual([...r.delta], [1.5]);
  assert.deepEqual(r.contributors, ["a", "b", "c", "d"]);
  const ok = aggregate(line, "krum", options);
  assert.equal(ok.fallback, null);
  assert.deepEqual(ok.contributors, ["b"]);
  assert.throws(() => aggregate([], "fedavg", options), AggregationTooFew);
});

Deno.test("aggregate refuses duplicate device ids and ragged deltas", () => {
  assert.throws(() => aggregate([u("a", [1]), u("a", [2])], "median", options), /device a twice/);
  assert.throws(
    () => aggregate([u("a", [1]), u("b", [2, 3])], "median", options),
    /b has 2 parameters/,
  );
});

Deno.test("every rule is bit-identical whatever the input order", () => {
  const rng = createRng(7);
  const inputs = Array.from(
    { length: 9 },
    (_, i) =>
      u(
        `d${i}`,
        Array.from(
          { length: 33 },
          () => rng.normal() * 1e-3 + 1e3 * (i % 2 === 0 ? 1 : -1) * rng.next(),
        ),
        1 + rng.int(500),
      ),
  );
  for (const rule of ["fedavg", "median", "trimmed-mean", "krum", "multi-krum"] as const) {
    const reference = aggregate(inputs, rule, options).delta;
    for (let t = 0; t < 5; t++) {
      const shuffled = [...inputs].sort(() => rng.next() - 0.5);
      const again = aggregate(shuffled, rule, options).delta;
      assert.deepEqual(new Uint8Array(again.buffer), new Uint8Array(reference.buffer), rule);
    }
  }
});
