// The round loop: every mode learns a separable fixture, is deterministic, and does not leak.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { defaultModelConfig, type ModelConfig } from "../../../ml/model/config.ts";
import { InProcessExecutor } from "../../../ml/train/executor.ts";
import {
  type RoundReport,
  TRAINING_MODES,
  type TrainingOptions,
  trainRounds,
} from "../../../ml/train/loop.ts";
import { makeFixture, partition, tfForTests } from "../fixtures.ts";

await tfForTests();

// Small model and data so that the whole folder stays fast on 2 shared cores.
const model: ModelConfig = {
  ...defaultModelConfig(10),
  convFilters: 8,
  lstmUnits: 8,
  denseUnits: 8,
};
const train = makeFixture({ rows: 240, features: 10, seed: 1 });
const validation = makeFixture({ rows: 80, features: 10, seed: 2 });
const test = makeFixture({ rows: 120, features: 10, seed: 3 });

function options(
  mode: TrainingOptions["mode"],
  overrides: Partial<TrainingOptions> = {},
): TrainingOptions {
  return {
    mode,
    rounds: 3,
    localEpochs: 1,
    batchSize: 16,
    learningRate: 0.01,
    seed: 7,
    model,
    ...overrides,
  };
}

const summary = (r: RoundReport) =>
  JSON.stringify({ loss: r.trainLoss, thr: r.threshold, test: r.test });

for (const mode of TRAINING_MODES) {
  Deno.test(`${mode}: learns the fixture, same seed gives the same metrics`, async () => {
    const run = () =>
      trainRounds({ options: options(mode), partitions: partition(train, 4), validation, test });
    const first = await run();
    const second = await run();
    assert.equal(first.rounds.length, 3);
    const last = first.rounds[2];
    assert.ok(
      last.test.binary.rocAuc > 0.9,
      `${mode}: AUC ${last.test.binary.rocAuc} <= 0.9 (seed 7)`,
    );
    assert.ok(last.trainLoss < first.rounds[0].trainLoss, `${mode}: loss did not fall`);
    assert.deepEqual(
      first.rounds.map(summary),
      second.rounds.map(summary),
      `${mode}: not deterministic (seed 7)`,
    );
    assert.deepEqual(first.model.device, second.model.device);
  });
}

Deno.test("tensor count does not grow across rounds", async () => {
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  await trainRounds({
    options: options("splitfed-v1", { rounds: 4 }),
    partitions: partition(train, 3),
    validation,
    test,
    onRound: (r) => void counts.push(r.numTensors),
  });
  assert.ok(counts.every((c) => c === counts[0]), `numTensors per round: ${counts}`);
  assert.equal(tf.memory().numTensors, before, "tensors left after training");
});

Deno.test("background evaluation: same reports as inline, in order, one round behind", async () => {
  const inline = await trainRounds({
    options: options("splitfed-v1"),
    partitions: partition(train, 3),
    validation,
    test,
  });
  const events: string[] = [];
  let pauses = 0;
  const background = await trainRounds({
    options: options("splitfed-v1"),
    partitions: partition(train, 3),
    validation,
    test,
    beforeRound: async (round, reportsDone) => {
      events.push(`start ${round}`);
      if (round === 2) {
        await reportsDone(); // what a pausing edge does
        events.push("reports done before round 2");
      }
    },
    afterAggregate: (training) => void events.push(`aggregated ${training.round}`),
    onRound: async (report) => {
      events.push(`report ${report.round}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
    background: {
      pause: async () => {
        pauses++;
        await new Promise((resolve) => setTimeout(resolve, 0));
      },
    },
  });
  assert.deepEqual(background.rounds.map(summary), inline.rounds.map(summary));
  assert.deepEqual(background.model, inline.model);
  assert.ok(pauses >= 2 * 3, `pause() awaited between blocks: ${pauses}`);
  // Each report comes after its aggregation and before the next aggregation; all before the end.
  for (let r = 0; r < 3; r++) {
    const reported = events.indexOf(`report ${r}`);
    assert.ok(reported > events.indexOf(`aggregated ${r}`), events.join(", "));
    if (r < 2) assert.ok(reported < events.indexOf(`aggregated ${r + 1}`), events.join(", "));
  }
  assert.equal(events.at(-1), "report 2");
  assert.ok(
    events.indexOf("report 1") < events.indexOf("reports done before round 2"),
    events.join(", "),
  );
});

Deno.test("background evaluation: a failing report surfaces and nothing is left running", async () => {
  const before = tf.memory().numTensors;
  await assert.rejects(
    trainRounds({
      options: options("splitfed-v1"),
      partitions: partition(train, 2),
      validation,
      test,
      onRound: (report) => {
        if (report.round === 0) throw new Error("disk full while saving round 0");
      },
      background: { pause: () => Promise.resolve() },
    }),
    /disk full while saving round 0/,
  );
  assert.equal(tf.memory().numTensors, before, "tensors left after the failure");
});

Deno.test("multi-class SplitFed v2 reports per-class metrics", async () => {
  const config = { ...model, classes: 3 };
  const data = makeFixture({ rows: 240, features: 10, classes: 3, seed: 4, separation: 2 });
  const result = await trainRounds({
    options: { ...options("splitfed-v2"), model: config },
    partitions: partition(data, 3),
    validation: makeFixture({ rows: 60, features: 10, classes: 3, seed: 5, separation: 2 }),
    test: makeFixture({ rows: 90, features: 10, classes: 3, seed: 6, separation: 2 }),
  });
  const multi = result.rounds[2].test.multiclass!;
  assert.equal(multi.perClass.length, 3);
  assert.equal(multi.confusion.flat().reduce((a, b) => a + b, 0), 90);
  assert.ok(multi.accuracy > 0.6, `accuracy ${multi.accuracy}`);
});

Deno.test("bad input: feature mismatch, NaN, empty partition name what and where", async () => {
  const base = { options: options("splitfed-v1", { rounds: 1 }), validation, test };
  const narrow = makeFixture({ rows: 20, features: 9, seed: 1 });
  await assert.rejects(
    trainRounds({ ...base, partitions: [train, narrow] }),
    /device 1 partition: data has 9 features, model expects 10/,
  );
  const poisoned = { ...train, features: train.features.slice() };
  poisoned.features[10 * 5 + 3] = NaN;
  await assert.rejects(
    trainRounds({ ...base, partitions: [poisoned] }),
    /device 0 partition: non-finite value NaN at row 5, column f3/,
  );
  const empty = { ...train, rows: 0, features: new Float32Array(0), labels: new Int32Array(0) };
  await assert.rejects(
    trainRounds({ ...base, partitions: [train, empty] }),
    /device 1 partition: empty partition/,
  );
  await assert.rejects(
    trainRounds({ ...base, test: narrow, partitions: [train] }),
    /test split: data has 9 features/,
  );
  assert.throws(
    () =>
      new InProcessExecutor(model, [empty], {
        epochs: 1,
        batchSize: 8,
        learningRate: 0.01,
        seed: 1,
      }),
    /device 0: empty/,
  );
});
