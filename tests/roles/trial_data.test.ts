// A `run` deployment carries the trial's data prepared once: every node config names the file,
// every role loads exactly what prepareDataset derives, and a missing or foreign file is an error
// naming the node and the file (never silently another trial's data).
import { assertEquals, assertRejects } from "../assert.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareDataset } from "../../ml/data/prepare.ts";
import { type NodeConfig, writeDeployment } from "../../roles/deployment.ts";
import { loadTrialData, PREPARED_DATA_FILE, prepareTrialData } from "../../roles/trial_data.ts";
import { prepareOptionsOf, type TrialSpec } from "../../roles/trial_spec.ts";

const trial: TrialSpec = {
  data: { synthetic: { rows: 2000, seed: 1 } },
  labelMode: "binary",
  seed: 2,
  devices: 3,
  partition: "iid",
  mode: "splitfed-v1",
  rounds: 1,
  localEpochs: 1,
  batchSize: 64,
  learningRate: 0.003,
  minDevices: 2,
  roundTimeoutMs: 60_000,
};
const root = mkdtempSync(join(tmpdir(), "iomt-trial-data-"));
globalThis.addEventListener("unload", () => rmSync(root, { recursive: true, force: true }));

async function deployment(name: string, preparedData?: Uint8Array) {
  return await writeDeployment({
    outDir: join(root, name),
    chainId: "trial-data-test",
    devices: 3,
    edges: 1,
    validators: 1,
    hosts: ["127.0.0.1"],
    validatorBasePort: 0,
    edgeBasePort: 0,
    validatorPorts: [40001],
    edgePorts: [40002],
    trial,
    adminToken: "t",
    ...(preparedData ? { preparedData } : {}),
  });
}

const configPath = (dir: string, id: string) => join(dir, "nodes", `${id}.json`);
const configOf = (dir: string, id: string): NodeConfig =>
  JSON.parse(readFileSync(configPath(dir, id), "utf8"));

Deno.test("trial data: every node of a run deployment loads the prepared file", async () => {
  const prepared = await prepareTrialData(trial);
  const { dir } = await deployment("prepared", prepared.bytes);
  const derived = await prepareDataset(prepareOptionsOf(trial));
  for (const id of ["validator-0", "edge-0", "device-0", "device-2"]) {
    const config = configOf(dir, id);
    assertEquals(config.prepared_data, PREPARED_DATA_FILE, id);
    const data = await loadTrialData(config, configPath(dir, id));
    assertEquals(data.validation.features, derived.validation.features, id);
    assertEquals(data.test.labels, derived.test.labels, id);
    assertEquals(data.devices[2].features, derived.devices[2].features, id);
  }
});

Deno.test("trial data: an init-style deployment (no file) derives the data itself", async () => {
  const { dir } = await deployment("derived");
  const config = configOf(dir, "device-1");
  assertEquals(config.prepared_data, undefined);
  const data = await loadTrialData(config, configPath(dir, "device-1"));
  const derived = await prepareDataset(prepareOptionsOf(trial));
  assertEquals(data.devices[1].labels, derived.devices[1].labels);
});

Deno.test("trial data: a missing or foreign prepared file names the node and the file", async () => {
  const prepared = await prepareTrialData(trial);
  const { dir } = await deployment("broken", prepared.bytes);
  const file = join(dir, PREPARED_DATA_FILE);
  const other = await prepareTrialData({ ...trial, seed: 3 });
  writeFileSync(file, other.bytes);
  await assertRejects(
    () => loadTrialData(configOf(dir, "device-0"), configPath(dir, "device-0")),
    Error,
    `device-0: ${file}: not a usable prepared data file: it was prepared for`,
  );
  rmSync(file);
  await assertRejects(
    () => loadTrialData(configOf(dir, "edge-0"), configPath(dir, "edge-0")),
    Error,
    `edge-0: cannot read the trial's prepared data ${file}`,
  );
});
