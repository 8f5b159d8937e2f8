// The embedded synthetic IoMT set: reproducible, in the WUSTL-EHMS schema, with classes that
// overlap (a linear model stays clearly below 100%) and room for a nonlinear model to do better.
import { assert, assertEquals, assertNotEquals } from "../../assert.ts";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareDataset } from "../../../ml/data/prepare.ts";
import {
  generateSyntheticRows,
  SYNTHETIC_CLASSES,
  SYNTHETIC_HEADER,
  writeSyntheticCsv,
} from "../../../ml/data/synthetic.ts";
import { loadTable } from "../../../ml/data/table.ts";
import { accuracy, trainLogistic, trainMlp } from "./tiny_models.ts";

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

Deno.test("synthetic: the same seed gives a byte-identical CSV, another seed a different one", () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-synth-"));
  try {
    const a = join(dir, "a.csv");
    const b = join(dir, "b.csv");
    const c = join(dir, "c.csv");
    writeSyntheticCsv(a, { rows: 3000, seed: 42 });
    writeSyntheticCsv(b, { rows: 3000, seed: 42 });
    writeSyntheticCsv(c, { rows: 3000, seed: 43 });
    assertEquals(
      sha256(a),
      sha256(b),
      "seed 42 twice: rerun with `deno test -A tests/ml/data/synthetic_test.ts`",
    );
    assertNotEquals(sha256(a), sha256(c));
    // Atomic write: no temp file left behind.
    assertEquals(readdirSync(dir).sort(), ["a.csv", "b.csv", "c.csv"]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("synthetic: a failed write leaves no file", () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-synth-"));
  try {
    const out = join(dir, "x.csv");
    let threw = false;
    try {
      writeSyntheticCsv(out, { rows: 0, seed: 1 }); // rejected by the generator after the temp file opened
    } catch {
      threw = true;
    }
    assert(threw);
    assertEquals(readdirSync(dir), []);
    assert(!existsSync(out));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("synthetic: WUSTL-EHMS schema, all six classes, time-ordered, loads as wustl-ehms", async () => {
  const rows = [...generateSyntheticRows({ rows: 20_000, seed: 3 })];
  assertEquals(rows.length, 20_000);
  for (const row of rows.slice(0, 50)) assertEquals(row.length, SYNTHETIC_HEADER.length);
  const classes = new Set(rows.map((row) => row[SYNTHETIC_HEADER.indexOf("Attack Category")]));
  assertEquals([...classes].sort(), [...SYNTHETIC_CLASSES].sort());
  const times = rows.map((row) => Number(row[0]));
  for (let i = 1; i < times.length; i++) {
    assert(times[i] >= times[i - 1], `time goes back at row ${i}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "iomt-synth-"));
  try {
    const path = join(dir, "s.csv");
    writeSyntheticCsv(path, { rows: 2000, seed: 3 });
    const table = await loadTable({ path });
    assertEquals(table.format, "wustl-ehms");
    assertEquals(table.rows, 2000);
    assertEquals(table.timeColumn, "StartTime");
    assert(table.dropped.some((d) => d.column === "SrcMac"));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("synthetic: logistic regression clearly below 100%, a nonlinear model does better", async () => {
  const seed = 1;
  const data = await prepareDataset({
    source: { synthetic: { rows: 14_000, seed } },
    labelMode: "binary",
    seed,
  });
  assertEquals(data.report.leaks, [], "no single column may give the label away");
  const linear = trainLogistic(data.train, seed);
  const nonlinear = trainMlp(data.train, seed, 16, 12);
  const linearAccuracy = accuracy(linear, data.test);
  const nonlinearAccuracy = accuracy(nonlinear, data.test);
  const majority = data.test.labels.filter((l) => l === 0).length / data.test.rows;
  const context =
    `seed ${seed}: majority ${majority.toFixed(3)}, logistic ${linearAccuracy.toFixed(3)}, ` +
    `MLP ${nonlinearAccuracy.toFixed(3)} (deno test -A tests/ml/data/synthetic_test.ts)`;
  console.log(context);
  assert(linearAccuracy > majority + 0.03, `logistic must learn something: ${context}`);
  assert(linearAccuracy < 0.94, `logistic must stay clearly below 100%: ${context}`);
  assert(
    nonlinearAccuracy > linearAccuracy + 0.02,
    `a nonlinear model must beat the linear one: ${context}`,
  );
});
