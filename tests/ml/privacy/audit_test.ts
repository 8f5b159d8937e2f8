// The audit end to end on a small fixture with a tiny model: structure of the result, the
// biometric columns in clinical units, the table and its renderings, no tensor leak.
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "../../assert.ts";
import {
  DEFAULT_AUDIT,
  privacyUtilityTable,
  runAudit,
  tableSettings,
} from "../../../ml/privacy/audit.ts";
import { type PrivacyData, unscale } from "../../../ml/privacy/dataset.ts";
import { auditText, tableHtml, tableMarkdown, tableText } from "../../../ml/privacy/report.ts";
import type { ModelConfig } from "../../../ml/model/config.ts";
import { makeFixture, sliceRows, tfForTests } from "../fixtures.ts";

await tfForTests();

const FEATURES = 8;
const names = ["SrcBytes", "DstBytes", "Load", "Rate", "Heart_rate", "SpO2", "Temp", "Dur"];
const model: ModelConfig = {
  features: FEATURES,
  classes: 2,
  convFilters: 4,
  convKernelSize: 3,
  convLayers: 1,
  lstmUnits: 4,
  bidirectional: false,
  denseUnits: 0,
};

function fixtureData(): PrivacyData {
  const all = makeFixture({ rows: 600, features: FEATURES, seed: 21, separation: 2 });
  const named = { ...all, featureNames: names };
  return {
    name: "fixture",
    train: sliceRows(named, 0, 360),
    validation: sliceRows(named, 360, 480),
    test: sliceRows(named, 480, 600),
    scales: names.map((name, index) => ({
      name,
      index,
      mean: name === "Heart_rate" ? 75 : 97,
      std: 6,
      log1p: false,
    })),
  };
}

const small = {
  ...DEFAULT_AUDIT,
  model,
  epochs: 1,
  batchSize: 32,
  auxRows: 100,
  targetRows: 100,
  dcorRows: 60,
  attack: { epochs: 5, batchSize: 50, learningRate: 5e-3, hidden: 16, seed: 1 },
};

Deno.test("audit: unprotected and noised runs report leakage, utility and (ε, δ)", () => {
  const data = fixtureData();
  const before = tf.memory().numTensors;
  const plain = runAudit(data, { ...small, protection: {} });
  assertEquals(tf.memory().numTensors, before, "tensors leaked by an audit");
  assertEquals(plain.privacy, null);
  assertEquals(plain.samples, { auxRows: 100, targetRows: 100, dcorRows: 60 });
  assertEquals(plain.reconstruction.features.length, FEATURES);
  // Three biometric columns of the tolerance list are in the data, in the list's order.
  assertEquals(plain.reconstruction.biometrics.map((b) => [b.column, b.tolerance, b.unit]), [
    ["Temp", 0.3, "°C"],
    ["SpO2", 2, "%"],
    ["Heart_rate", 5, "bpm"],
  ]);
  for (const b of plain.reconstruction.biometrics) {
    assert(
      b.withinTolerance >= 0 && b.withinTolerance <= 1 && b.baselineWithinTolerance >= 0 &&
        b.baselineWithinTolerance <= 1,
    );
  }
  assert(plain.dcor > 0 && plain.dcor <= 1, `dCor ${plain.dcor}`);
  assert(plain.utility.auc >= 0 && plain.utility.auc <= 1);
  assert(plain.labelInference.labelsSent);
  assertStringIncludes(plain.labelInference.note, "U-shaped");

  const noised = runAudit(data, { ...small, protection: { clipNorm: 1, noiseMultiplier: 2 } });
  assert(
    noised.privacy !== null && Number.isFinite(noised.privacy.epsilon) &&
      noised.privacy.releasesPerRow === 1,
  );
  // σ = 2 on clipped rows of 16 values: the activations say much less about the raw rows.
  assert(noised.dcor < plain.dcor, `dCor noised ${noised.dcor} vs plain ${plain.dcor}`);
  const text = auditText(noised);
  assertStringIncludes(text, "ε = ");
  assertStringIncludes(text, "Heart_rate");
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("audit: the privacy-utility table as data, Markdown, text and HTML", () => {
  const data = fixtureData();
  const settings = [tableSettings(1)[0], tableSettings(1)[3], tableSettings(1)[5]];
  const table = privacyUtilityTable(data, small, settings);
  assertEquals(table.rows.map((r) => r.protection), ["none", "clip 1 + noise σ=1", "NoPeek α=0.1"]);
  assertEquals(table.rows[0].epsilon, null);
  assert(table.rows[1].epsilon! > 0);
  const md = tableMarkdown(table);
  assertStringIncludes(md, "| protection | ε | F1 |");
  assert(table.rows.every((r) => Number.isFinite(r.dcor2BiasCorrected)));
  assertEquals(md.split("\n").filter((l) => l.startsWith("| ")).length, 4);
  assertStringIncludes(tableText(table), "NoPeek α=0.1");
  const html = tableHtml(table);
  assertStringIncludes(html, "<table>");
  assertEquals((html.match(/<tr>/g) ?? []).length, 4);
  assertEquals(tableSettings(1).length, 7);
});

Deno.test("audit: out-of-range settings are refused before any training", () => {
  const data = fixtureData();
  assertThrows(
    () => runAudit(data, { ...small, protection: { clipNorm: 0 } }),
    RangeError,
    "clip norm",
  );
  assertThrows(
    () => runAudit(data, { ...small, protection: { clipNorm: 1, noiseMultiplier: -1 } }),
    RangeError,
    "noise",
  );
  assertThrows(() => runAudit(data, { ...small, protection: {}, delta: 0 }), RangeError, "delta");
  assertThrows(
    () => runAudit(data, { ...small, protection: {}, auxRows: 5 }),
    RangeError,
    "auxiliary",
  );
  assertEquals(
    Math.round(unscale({ name: "x", index: 0, mean: 75, std: 6, log1p: false }, 0.5)),
    78,
  );
  assertAlmostEquals(
    unscale({ name: "x", index: 0, mean: Math.log1p(9), std: 1, log1p: true }, 0),
    9,
    1e-12,
  );
});
