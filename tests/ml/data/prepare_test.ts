// prepareDataset end to end on synthetic data: splits, device partitions, scaling fit on train
// only, the leak guard, and the saved preprocessor reproducing the features for detection.
import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareDataset } from "../../../ml/data/prepare.ts";
import { Preprocessor } from "../../../ml/data/preprocess.ts";
import { partitionRows, splitRows } from "../../../ml/data/split.ts";
import { readFeatureBatches } from "../../../ml/data/stream.ts";
import { writeSyntheticCsv } from "../../../ml/data/synthetic.ts";
import { assertLabeledMatrix } from "../../../ml/data/types.ts";
import { Rng } from "../../../ml/data/random.ts";

const dir = mkdtempSync(join(tmpdir(), "iomt-prepare-"));
const csv = join(dir, "synthetic.csv");
writeSyntheticCsv(csv, { rows: 6000, seed: 5 });
globalThis.addEventListener("unload", () => rmSync(dir, { recursive: true, force: true }));

Deno.test("split: stratified, seeded, disjoint and complete; time split keeps order", () => {
  const rng = new Rng(1);
  const labels = Int32Array.from({ length: 1000 }, () => (rng.chance(0.2) ? 1 + rng.int(2) : 0));
  const a = splitRows(labels, 3, {}, 7);
  const b = splitRows(labels, 3, {}, 7);
  const c = splitRows(labels, 3, {}, 8);
  assertEquals(a, b);
  assert(JSON.stringify(a.train) !== JSON.stringify(c.train), "another seed, another split");
  const all = [...a.train, ...a.validation, ...a.test].sort((x, y) => x - y);
  assertEquals(all, Array.from({ length: 1000 }, (_, i) => i));
  for (let k = 0; k < 3; k++) {
    const share = (rows: Int32Array) => rows.filter((r) => labels[r] === k).length / rows.length;
    assert(Math.abs(share(a.test) - share(a.train)) < 0.03, `class ${k} stratified`);
  }
  const time = Float64Array.from({ length: 1000 }, (_, i) => 1000 - i); // reversed in the file
  const t = splitRows(labels, 3, { mode: "time" }, 0, time);
  const latestTrain = Math.max(...Array.from(t.train, (r) => time[r]));
  const earliestTest = Math.min(...Array.from(t.test, (r) => time[r]));
  assert(latestTrain < earliestTest, "time split: all training rows come before the test rows");
  assertEquals(t.train.length, 700);
});

Deno.test("devices: iid, dirichlet and quantity partitions cover the training rows once", () => {
  const rng = new Rng(2);
  const labels = Int32Array.from({ length: 5000 }, () => rng.int(4));
  const rows = Int32Array.from({ length: 4000 }, (_, i) => i);
  for (const partition of ["iid", "dirichlet", "quantity"] as const) {
    const parts = partitionRows(rows, labels, 4, { count: 8, partition, alpha: 0.2 }, 3);
    assertEquals(parts.length, 8);
    const union = parts.flatMap((p) => Array.from(p)).sort((a, b) => a - b);
    assertEquals(union, Array.from(rows), partition);
    assert(parts.every((p) => p.length > 0), `${partition}: no empty device`);
  }
  const iid = partitionRows(rows, labels, 4, { count: 8 }, 3);
  assert(iid.every((p) => p.length === 500));
  // Label skew: with alpha 0.1 most devices are dominated by one or two classes.
  const skewed = partitionRows(
    rows,
    labels,
    4,
    { count: 8, partition: "dirichlet", alpha: 0.1 },
    3,
  );
  const dominant = skewed.map((p) => {
    const counts = [0, 0, 0, 0];
    for (const r of p) counts[labels[r]]++;
    return Math.max(...counts) / p.length;
  });
  assert(
    dominant.filter((d) => d > 0.6).length >= 4,
    `dirichlet(0.1) should skew labels: ${dominant}`,
  );
  const sizes = partitionRows(rows, labels, 4, { count: 8, partition: "quantity", alpha: 0.3 }, 3)
    .map((p) => p.length);
  assert(Math.max(...sizes) > 3 * Math.min(...sizes), `quantity skew: ${sizes}`);
});

Deno.test("prepare: matrices, devices as views of train, report per device", async () => {
  const data = await prepareDataset({
    source: { path: csv },
    labelMode: "multiclass",
    devices: { count: 4, partition: "dirichlet", alpha: 0.5 },
    seed: 1,
  });
  assertLabeledMatrix(data.train, "train");
  assertLabeledMatrix(data.validation, "validation");
  assertLabeledMatrix(data.test, "test");
  assertEquals(data.train.classNames[0], "normal");
  assertEquals(data.train.classNames.length, 6);
  assertEquals(data.train.rows + data.validation.rows + data.test.rows, 6000);
  assertEquals(data.devices.reduce((n, d) => n + d.rows, 0), data.train.rows);
  assertEquals(data.report.devices.rows, data.devices.map((d) => d.rows));
  data.devices.forEach((device, i) => {
    assertLabeledMatrix(device, `device ${i}`);
    const counts = new Array(6).fill(0);
    for (const l of device.labels) counts[l]++;
    assertEquals(counts, data.report.devices.classCounts[i]);
  });
  // Identity columns are never features by default.
  for (const name of data.train.featureNames) {
    assert(!/^(SrcMac|DstMac|SrcAddr|Sport|Packet_num|StartTime)/.test(name), name);
  }
  assert(data.report.dropped.some((d) => d.column === "Dir" && d.reason.startsWith("constant")));
});

Deno.test("prepare: scaling statistics come from the training split only", async () => {
  const data = await prepareDataset({ source: { path: csv }, labelMode: "binary", seed: 2 });
  const width = data.train.featureNames.length;
  const column = data.train.featureNames.indexOf("SrcJitter");
  assert(column >= 0);
  const stats = (m: typeof data.train) => {
    let sum = 0;
    let squares = 0;
    for (let r = 0; r < m.rows; r++) {
      const v = m.features[r * width + column];
      sum += v;
      squares += v * v;
    }
    const mean = sum / m.rows;
    return { mean, sd: Math.sqrt(squares / m.rows - mean * mean) };
  };
  const train = stats(data.train);
  assert(
    Math.abs(train.mean) < 1e-4 && Math.abs(train.sd - 1) < 1e-3,
    `train is standardised: ${JSON.stringify(train)}`,
  );
  const test = stats(data.test);
  assert(
    Math.abs(test.mean) > 1e-4,
    `test is scaled with the train statistics, not its own: ${JSON.stringify(test)}`,
  );
});

Deno.test("prepare: the saved preprocessor reproduces the features from a file and from stdin", async () => {
  const data = await prepareDataset({
    source: { path: csv },
    labelMode: "binary",
    split: { validation: 0, test: 0 },
    seed: 3,
  });
  // With no validation/test and one device, train is every row in file order.
  const saved = JSON.parse(JSON.stringify(data.preprocessor.toJSON()));
  const restored = Preprocessor.fromJSON(saved);
  assertEquals(restored.featureNames, data.preprocessor.featureNames);
  const collect = async (input: Parameters<typeof readFeatureBatches>[0]) => {
    const features: number[] = [];
    const labels: number[] = [];
    const lines: number[] = [];
    for await (const batch of readFeatureBatches(input, restored, { batchRows: 500 })) {
      features.push(...batch.features);
      labels.push(...batch.labels);
      lines.push(...batch.lines);
    }
    return { features, labels, lines };
  };
  const fromFile = await collect({ path: csv });
  assertEquals(fromFile.labels, Array.from(data.train.labels));
  assertEquals(fromFile.lines.slice(0, 3), [2, 3, 4]);
  assertEquals(fromFile.features.length, data.train.features.length);
  let maxDiff = 0;
  for (let i = 0; i < fromFile.features.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(fromFile.features[i] - data.train.features[i]));
  }
  assertEquals(maxDiff, 0);
  const bytes = readFileSync(csv);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 4096) controller.enqueue(bytes.subarray(i, i + 4096));
      controller.close();
    },
  });
  const fromStdin = await collect({ stream, name: "<stdin>" });
  assertEquals(fromStdin.features.length, fromFile.features.length);
  assertEquals(fromStdin.labels, fromFile.labels);
});

Deno.test("prepare: detection input missing a model column fails naming the column", async () => {
  const data = await prepareDataset({ source: { path: csv }, labelMode: "binary", seed: 3 });
  const header = "SrcBytes,DstBytes\n1,2\n";
  await assertRejects(
    async () => {
      for await (
        const _ of readFeatureBatches(
          { lines: header.split("\n"), name: "<stdin>" },
          data.preprocessor,
          { format: "generic" },
        )
      ) {
        /* drain */
      }
    },
    Error,
    "column needed by the model is missing",
  );
});

Deno.test("leak guard: a re-enabled MAC on synthetic data is caught, and --allow-leaky keeps it", async () => {
  const guarded = await prepareDataset({
    source: { path: csv, keep: ["SrcMac"] },
    labelMode: "binary",
    seed: 4,
  });
  assertEquals(guarded.report.leaks.map((l) => l.column), ["SrcMac"]);
  assert(guarded.report.dropped.some((d) => d.column === "SrcMac" && d.reason.startsWith("leaky")));
  assert(!guarded.train.featureNames.some((n) => n.startsWith("SrcMac")));
  const allowed = await prepareDataset({
    source: { path: csv, keep: ["SrcMac"] },
    labelMode: "binary",
    seed: 4,
    allowLeaky: ["SrcMac"],
  });
  assertEquals(allowed.report.leaksAllowed, ["SrcMac"]);
  assert(allowed.train.featureNames.some((n) => n.startsWith("SrcMac=")));
});

Deno.test("leak guard: AUC and balanced accuracy helpers", async () => {
  const { rocAuc, balancedAccuracy } = await import("../../../ml/data/leak.ts");
  assertEquals(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  assertEquals(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
  assertEquals(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
  assertEquals(rocAuc([1, 2, 3], [1, 1, 1]), 0.5, "one class only");
  // 95% normal: always answering "normal" is 95% accurate but 0.5 balanced.
  const truth = Array.from({ length: 100 }, (_, i) => (i < 95 ? 0 : 1));
  assertEquals(balancedAccuracy(truth, new Array(100).fill(0), 2), 0.5);
});

Deno.test("prepare: hashed categoricals, time split, and binary labels for unseen attack classes", async () => {
  const data = await prepareDataset({
    source: { path: csv },
    labelMode: "binary",
    split: { mode: "time" },
    categoricalEncoding: "hash",
    seed: 6,
  });
  assert(data.train.featureNames.includes("Flgs#0"));
  assertEquals(data.report.split.mode, "time");
  assertLabeledMatrix(data.test, "test");
  const restored = Preprocessor.fromJSON(data.preprocessor.toJSON());
  assertEquals(restored.classIndex("normal"), 0);
  assertEquals(restored.classIndex("Ransomware"), 1, "binary: an unseen class is an attack");
  const multi = await prepareDataset({ source: { path: csv }, labelMode: "multiclass", seed: 6 });
  assertEquals(multi.preprocessor.classIndex("Ransomware"), -1, "multiclass: unknown");
});
