// Where devices' local rounds run. The round loop hands a list of independent tasks to an
// executor: in-process and sequential (tests, one core), or in workers (one wasm instance per
// worker: tfjs' wasm threads are disabled under Deno/Bun). Results must not depend on the executor.
import type { LabeledMatrix } from "../data/types.ts";
import type { ModelConfig } from "../model/config.ts";
import { checkMatrixForModel } from "./batches.ts";
import {
  type LocalResult,
  type LocalTask,
  type LocalTrainOptions,
  type ReleaseObserver,
  runLocalTask,
} from "./local.ts";

export interface DeviceExecutor {
  /** Runs independent local tasks; results in task order. */
  run(tasks: readonly LocalTask[]): Promise<LocalResult[]>;
  /** True when it runs splitfed-v2 tasks: devices in turn against one server-side model, every
   * result carrying that model's final weights as `edge` (the networked edge does). */
  readonly sharedEdge?: boolean;
  close(): Promise<void>;
}

export class InProcessExecutor implements DeviceExecutor {
  readonly #labels: Int32Array[];

  constructor(
    readonly config: ModelConfig,
    readonly partitions: readonly LabeledMatrix[],
    readonly options: LocalTrainOptions,
    readonly observe?: ReleaseObserver,
  ) {
    this.#labels = partitions.map((p, k) => checkMatrixForModel(config, p, `device ${k}`));
  }

  run(tasks: readonly LocalTask[]): Promise<LocalResult[]> {
    try {
      return Promise.resolve(tasks.map((task) => {
        const data = this.partitions[task.deviceIndex];
        if (!data) throw new Error(`no partition for device ${task.deviceIndex}`);
        return runLocalTask(
          this.config,
          data,
          this.#labels[task.deviceIndex],
          task,
          this.options,
          this.observe,
        );
      }));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
