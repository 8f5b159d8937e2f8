// Worker entry point: trains the local rounds of the devices assigned to this worker, each with
// its own wasm instance (tfjs wasm threads are disabled under Deno and Bun, so parallelism across
// cores comes from workers). Same code path as InProcessExecutor, so the results are identical.
import type { LabeledMatrix } from "../data/types.ts";
import type { ModelConfig } from "../model/config.ts";
import { initTensorflow } from "../tf/backend.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";

// deno-lint-ignore no-explicit-any
const scope = globalThis as any as {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage: (message: FromWorker, transfer?: Transferable[]) => void;
};

let state: {
  config: ModelConfig;
  options: import("./local.ts").LocalTrainOptions;
  data: Map<number, { matrix: LabeledMatrix; labels: Int32Array }>;
  runLocalTask: typeof import("./local.ts").runLocalTask;
} | null = null;

scope.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.type === "init") {
      await initTensorflow({ backend: "wasm", wasmBinaries: message.wasmBinaries });
      const { checkMatrixForModel } = await import("./batches.ts");
      const { runLocalTask } = await import("./local.ts");
      const data = new Map<number, { matrix: LabeledMatrix; labels: Int32Array }>();
      for (const p of message.partitions) {
        data.set(p.deviceIndex, {
          matrix: p.data,
          labels: checkMatrixForModel(message.config, p.data, `device ${p.deviceIndex}`),
        });
      }
      state = { config: message.config, options: message.options, data, runLocalTask };
      scope.postMessage({ type: "ready" });
      return;
    }
    if (!state) throw new Error("device worker: run before init");
    const s = state;
    const results = message.tasks.map((task) => {
      const entry = s.data.get(task.deviceIndex);
      if (!entry) {
        throw new Error(`device worker: device ${task.deviceIndex} is not assigned to this worker`);
      }
      return s.runLocalTask(s.config, entry.matrix, entry.labels, task, s.options);
    });
    scope.postMessage(
      { type: "result", id: message.id, results },
      results.flatMap((r) => [r.device.buffer, r.edge.buffer]) as Transferable[],
    );
  } catch (error) {
    scope.postMessage({
      type: "error",
      id: message.type === "run" ? message.id : null,
      message: (error as Error).message,
    });
  }
};
