import assert from "node:assert/strict";
import {
  binaryMetrics,
  chooseThreshold,
  multiclassMetrics,
  rocAuc,
} from "../../../ml/metrics/classification.ts";

Deno.test("ROC-AUC by rank statistic, with ties", () => {
  assert.equal(rocAuc(Float32Array.of(0.1, 0.4, 0.35, 0.8), Int32Array.of(0, 0, 1, 1)), 0.75);
  assert.equal(rocAuc(Float32Array.of(0.5, 0.5), Int32Array.of(0, 1)), 0.5);
  assert.equal(rocAuc(Float32Array.of(0.1, 0.9), Int32Array.of(0, 1)), 1);
  assert.equal(rocAuc(Float32Array.of(0.1, 0.9), Int32Array.of(1, 1)), 0.5);
});

Deno.test("binary metrics and confusion matrix at a threshold", () => {
  const m = binaryMetrics(
    Float32Array.of(0.9, 0.8, 0.3, 0.6, 0.1),
    Int32Array.of(1, 1, 1, 0, 0),
    0.5,
  );
  assert.deepEqual(m.confusion, [[1, 1], [1, 2]]);
  assert.equal(m.precision, 2 / 3);
  assert.equal(m.recall, 2 / 3);
  assert.equal(m.fpr, 0.5);
  assert.equal(m.accuracy, 0.6);
  assert.throws(
    () => binaryMetrics(Float32Array.of(NaN), Int32Array.of(1), 0.5),
    /score NaN at row 0/,
  );
});

Deno.test("threshold maximises F1 between distinct scores", () => {
  const t = chooseThreshold(Float32Array.of(0.9, 0.7, 0.2, 0.1), Int32Array.of(1, 1, 0, 0));
  assert.ok(t > 0.2 && t < 0.7, `threshold ${t}`);
  assert.equal(
    binaryMetrics(Float32Array.of(0.9, 0.7, 0.2, 0.1), Int32Array.of(1, 1, 0, 0), t).f1,
    1,
  );
});

Deno.test("multi-class confusion and per-class metrics", () => {
  const probs = Float32Array.of(0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.2, 0.7, 0.6, 0.3, 0.1);
  const m = multiclassMetrics(probs, Int32Array.of(0, 1, 2, 2), ["normal", "a", "b"]);
  assert.deepEqual(m.confusion, [[1, 0, 0], [0, 1, 0], [1, 0, 1]]);
  assert.equal(m.accuracy, 0.75);
  assert.equal(m.perClass[2].recall, 0.5);
  assert.equal(m.perClass[0].precision, 0.5);
});
