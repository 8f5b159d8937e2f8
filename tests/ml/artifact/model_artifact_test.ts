import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashLabeledMatrix, loadModel, saveModel } from "../../../ml/artifact/model_artifact.ts";
import { defaultModelConfig } from "../../../ml/model/config.ts";
import { deviceLayout, edgeLayout, initParams } from "../../../ml/model/split_model.ts";
import { Predictor } from "../../../ml/train/evaluate.ts";
import { makeFixture, tfForTests } from "../fixtures.ts";

await tfForTests();

Deno.test("a saved model loads back identical and predicts the same", async () => {
  const dir = await mkdtemp(join(tmpdir(), "iomt-model-"));
  try {
    const config = defaultModelConfig(6);
    const data = makeFixture({ rows: 20, features: 6, seed: 1 });
    const device = initParams(deviceLayout(config), 1);
    const edge = initParams(edgeLayout(config), 2);
    const datasetHash = await hashLabeledMatrix(data);
    await saveModel(dir, {
      config,
      device,
      edge,
      preprocessing: { version: 1, note: "opaque" },
      metadata: {
        createdAt: "2026-11-29T00:00:00Z",
        threshold: 0.4,
        classNames: ["normal", "attack"],
        featureNames: [...data.featureNames],
        datasetHash,
      },
    });
    const loaded = await loadModel(dir);
    assert.deepEqual(loaded.device, device);
    assert.deepEqual(loaded.edge, edge);
    assert.deepEqual(loaded.config, config);
    assert.equal(loaded.metadata.threshold, 0.4);
    assert.equal(loaded.metadata.datasetHash, datasetHash);
    assert.deepEqual(loaded.preprocessing, { version: 1, note: "opaque" });
    const a = new Predictor(config, device, edge);
    const b = new Predictor(loaded.config, loaded.device, loaded.edge);
    assert.deepEqual(
      a.probabilities(data.features, data.rows),
      b.probabilities(data.features, data.rows),
    );
    a.dispose();
    b.dispose();

    // Tampering is detected, naming the file.
    await writeFile(join(dir, "weights.bin"), new Uint8Array((device.length + edge.length) * 4));
    await assert.rejects(loadModel(dir), /weights.bin does not match its SHA-256/);
    await writeFile(join(dir, "weights.bin"), new Uint8Array(12));
    await assert.rejects(loadModel(dir), /weights.bin has 12 bytes/);
    await assert.rejects(loadModel(join(dir, "missing")), /cannot read .*model.json/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("saving refuses NaN weights and mismatched names", async () => {
  const config = defaultModelConfig(6);
  const device = initParams(deviceLayout(config), 1);
  device[3] = NaN;
  const base = {
    createdAt: "",
    threshold: 0.5,
    classNames: ["normal", "attack"],
    featureNames: ["a", "b", "c", "d", "e", "f"],
  };
  await assert.rejects(
    saveModel("/nonexistent/never", {
      config,
      device,
      edge: initParams(edgeLayout(config), 2),
      preprocessing: null,
      metadata: base,
    }),
    /device weights: non-finite parameter NaN in conv0.kernel at index 3/,
  );
  await assert.rejects(
    saveModel("/nonexistent/never", {
      config,
      device: initParams(deviceLayout(config), 1),
      edge: initParams(edgeLayout(config), 2),
      preprocessing: null,
      metadata: { ...base, featureNames: ["a"] },
    }),
    /1 feature names for a model of 6 features/,
  );
});
