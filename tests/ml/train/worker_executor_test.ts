// Devices trained in workers give bit-identical results to devices trained in-process.
import assert from "node:assert/strict";
import { defaultModelConfig, type ModelConfig } from "../../../ml/model/config.ts";
import { type TrainingOptions, trainRounds } from "../../../ml/train/loop.ts";
import { WorkerExecutor } from "../../../ml/train/worker_executor.ts";
import { makeFixture, partition, tfForTests } from "../fixtures.ts";

await tfForTests();

Deno.test("worker executor matches in-process training bit for bit", async () => {
  const model: ModelConfig = {
    ...defaultModelConfig(8),
    convFilters: 4,
    lstmUnits: 4,
    denseUnits: 4,
  };
  const partitions = partition(makeFixture({ rows: 120, features: 8, seed: 1 }), 3);
  const validation = makeFixture({ rows: 40, features: 8, seed: 2 });
  const test = makeFixture({ rows: 40, features: 8, seed: 3 });
  for (const mode of ["splitfed-v1"] as const) {
    const options: TrainingOptions = {
      mode,
      rounds: 1,
      localEpochs: 1,
      batchSize: 16,
      learningRate: 0.01,
      seed: 5,
      model,
    };
    const local = { epochs: 1, batchSize: 16, learningRate: 0.01, seed: 5 };
    const executor = await WorkerExecutor.start(model, partitions, local, { workers: 2 });
    try {
      const inWorkers = await trainRounds({ options, partitions, validation, test, executor });
      const inProcess = await trainRounds({ options, partitions, validation, test });
      assert.deepEqual(inWorkers.model.device, inProcess.model.device, mode);
      assert.deepEqual(inWorkers.model.edge, inProcess.model.edge, mode);
    } finally {
      await executor.close();
    }
  }
});
