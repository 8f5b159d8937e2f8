// What `iomt-sfl run` shows about the protection: the ε column and line under the round table,
// the report's protection section and the privacy-utility table, and the ε a multi-process row
// gets from the trial's settings (the edge's report does not know the devices' protection).
import { assert, assertEquals } from "../../assert.ts";
import { epsilonSpent } from "../../../ml/privacy/settings.ts";
import {
  privacyExperiment,
  privacyExperimentTable,
  protectionNote,
  withEpsilon,
} from "../../../roles/run/privacy_trial.ts";
import { renderHtml } from "../../../roles/run/report.ts";
import { formatTable, type RoundRow, type TrialResult } from "../../../roles/run/results.ts";
import type { TrialSpec } from "../../../roles/trial_spec.ts";
import { tableHtml, tableText } from "../../../ml/privacy/report.ts";

const spec: TrialSpec = {
  data: { synthetic: { rows: 1000, seed: 0 } },
  labelMode: "binary",
  seed: 0,
  devices: 2,
  partition: "iid",
  mode: "splitfed-v1",
  rounds: 2,
  localEpochs: 3,
  batchSize: 64,
  learningRate: 0.003,
  minDevices: 2,
  roundTimeoutMs: 60_000,
  protection: { clipNorm: 1, noiseMultiplier: 2, delta: 1e-5 },
};

function row(round: number): RoundRow {
  return {
    mode: "splitfed",
    round,
    accuracy: 0.9,
    precision: 0.8,
    recall: 0.7,
    f1: 0.75,
    fpr: 0.01,
    rocAuc: 0.88,
    trainLoss: 0.3,
    validationLoss: 0.31,
    threshold: 0.5,
    participants: 2,
    seconds: 1,
    confusion: [[90, 1], [3, 6]],
    peakRssMB: 100,
  };
}

Deno.test("withEpsilon: ε of (round + 1) × local epochs releases; none for FedAvg or no noise", () => {
  const r = withEpsilon(row(1), spec);
  assertEquals(r.epsilon, epsilonSpent(spec.protection, 6)!.epsilon);
  assertEquals(r.delta, 1e-5);
  assertEquals(withEpsilon(row(1), { ...spec, mode: "fedavg" }).epsilon, undefined);
  assertEquals(
    withEpsilon(row(1), { ...spec, protection: { clipNorm: 1, delta: 1e-5 } }).epsilon,
    undefined,
  );
});

Deno.test("round table: ε column and protection line only when a trial spent budget", () => {
  const plain: TrialResult = { mode: "splitfed", rows: [row(0), row(1)], wallSeconds: 2 };
  assert(!formatTable([plain]).includes("ε"), "the default table must not change");
  const rows = [withEpsilon(row(0), spec), withEpsilon(row(1), spec)];
  const noised: TrialResult = {
    ...plain,
    rows,
    protection: { name: "clip 1 + noise σ=2", settings: spec.protection! },
  };
  const table = formatTable([noised]);
  const header = table.split("\n")[0];
  assert(header.trim().endsWith("ε"), header);
  assert(table.includes(rows[1].epsilon!.toFixed(2)), table);
  assert(/protection clip 1 \+ noise σ=2: ε = [\d.]+ at δ = 0\.00001/.test(table), table);
  const note = protectionNote([noised])!;
  assert(note.includes(`round 2: ${rows[1].epsilon!.toFixed(2)}`), note);
  assert(note.includes("Labels"), note);
  assertEquals(protectionNote([plain]), null);
});

Deno.test("privacy experiment: its settings, its table in text, HTML and the report", () => {
  const trials = privacyExperiment({ ...spec, protection: undefined });
  assertEquals(trials.map((t) => t.label), [
    "none",
    "clip1-noise0.1",
    "clip1-noise0.5",
    "nopeek0.5",
  ]);
  assertEquals(trials[0].spec.protection, undefined);
  const audit = {
    auxRows: 300,
    targetRows: 200,
    round: 1,
    nmseMean: 0.123,
    biometricWithin: 0.9,
    biometricBaseline: 0.6,
    biometrics: [],
    dcor: 0.95,
    dcor2BiasCorrected: 0.9,
    labelAuc: 0.85,
  };
  const results: TrialResult[] = trials.map((t) => ({
    mode: "splitfed",
    label: t.label,
    rows: [withEpsilon(row(0), t.spec), withEpsilon(row(1), t.spec)],
    wallSeconds: 1,
    privacyAudit: audit,
    ...(t.spec.protection ? { protection: { name: t.label, settings: t.spec.protection } } : {}),
  }));
  const table = privacyExperimentTable(results, "fixture data", spec);
  assertEquals(table.rows.map((r) => r.epsilon === null), [true, false, false, true]);
  const text = tableText(table);
  assert(text.includes("0.123") && text.includes("90.0% (60.0%)"), text);
  const html = renderHtml({
    title: "t",
    createdAt: "now",
    version: "0",
    data: "fixture data",
    settings: {},
    results,
    notes: [{ heading: "Privacy and utility", text, html: tableHtml(table) }],
    privacyUtility: table,
  });
  assert(html.includes('<section class="privacy-utility">'), "HTML section missing");
  assert(!html.includes("<pre>fixture data;"), "the text version replaced the HTML table");
});
