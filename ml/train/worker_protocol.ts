// Messages between WorkerExecutor and device_worker.ts. Plain structured-clone data only.
import type { LabeledMatrix } from "../data/types.ts";
import type { ModelConfig } from "../model/config.ts";
import type { LocalResult, LocalTask, LocalTrainOptions } from "./local.ts";

export type ToWorker =
  | {
    type: "init";
    config: ModelConfig;
    options: LocalTrainOptions;
    /** The partitions this worker trains, by device index. */
    partitions: { deviceIndex: number; data: LabeledMatrix }[];
    wasmBinaries?: Record<string, Uint8Array>;
  }
  | { type: "run"; id: number; tasks: LocalTask[] };

export type FromWorker =
  | { type: "ready" }
  | { type: "result"; id: number; results: LocalResult[] }
  | { type: "error"; id: number | null; message: string };
