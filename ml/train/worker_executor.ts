// Runs devices' local rounds in parallel workers (one wasm instance each). Device k always runs
// on worker k % workers, so its computation, and therefore the result, does not depend on
// scheduling. Create workers with `new Worker(url, { type: "module" })` (Deno and Bun) or hand in
// the runtime adapter's factory.
import type { LabeledMatrix } from "../data/types.ts";
import type { ModelConfig } from "../model/config.ts";
import { checkMatrixForModel } from "./batches.ts";
import type { DeviceExecutor } from "./executor.ts";
import type { LocalResult, LocalTask, LocalTrainOptions } from "./local.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";

export const WORKERS_MAX = 64;

export interface WorkerExecutorOptions {
  workers: number;
  createWorker?: (moduleUrl: URL, name: string) => Worker;
  /** For the compiled binary, which has no wasm files beside it. */
  wasmBinaries?: Record<string, Uint8Array>;
}

interface Pending {
  resolve: (results: LocalResult[]) => void;
  reject: (error: Error) => void;
}

export class WorkerExecutor implements DeviceExecutor {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  private constructor(readonly workerCount: number) {}

  static async start(
    config: ModelConfig,
    partitions: readonly LabeledMatrix[],
    options: LocalTrainOptions,
    executorOptions: WorkerExecutorOptions,
  ): Promise<WorkerExecutor> {
    const count = Math.min(executorOptions.workers, partitions.length);
    if (!Number.isInteger(count) || count < 1 || count > WORKERS_MAX) {
      throw new Error(
        `worker executor: ${executorOptions.workers} workers, limit 1..${WORKERS_MAX}`,
      );
    }
    partitions.forEach((p, k) => checkMatrixForModel(config, p, `device ${k}`));
    const create = executorOptions.createWorker ??
      ((url: URL, name: string) => new Worker(url, { type: "module", name }));
    const executor = new WorkerExecutor(count);
    const url = new URL("./device_worker.ts", import.meta.url);
    const ready: Promise<void>[] = [];
    for (let w = 0; w < count; w++) {
      const worker = create(url, `device-worker-${w}`);
      executor.#workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (event: MessageEvent<FromWorker>) => {
            const m = event.data;
            if (m.type === "ready") resolve();
            else if (m.type === "error" && m.id === null) {
              reject(new Error(`device worker ${w}: ${m.message}`));
            } else executor.#settle(w, m);
          };
          worker.onerror = (event: ErrorEvent) => {
            event.preventDefault?.();
            const error = new Error(`device worker ${w} crashed: ${event.message}`);
            reject(error);
            executor.#failAll(error);
          };
        }),
      );
      const message: ToWorker = {
        type: "init",
        config,
        options,
        partitions: partitions.flatMap((
          data,
          deviceIndex,
        ) => (deviceIndex % count === w ? [{ deviceIndex, data }] : [])),
        wasmBinaries: executorOptions.wasmBinaries,
      };
      worker.postMessage(message);
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      await executor.close();
      throw error;
    }
    return executor;
  }

  #settle(worker: number, m: FromWorker) {
    if (m.type === "ready") return;
    const pending = m.id === null ? undefined : this.#pending.get(m.id);
    if (!pending) return;
    this.#pending.delete(m.id!);
    if (m.type === "result") pending.resolve(m.results);
    else pending.reject(new Error(`device worker ${worker}: ${m.message}`));
  }

  #failAll(error: Error) {
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }

  async run(tasks: readonly LocalTask[]): Promise<LocalResult[]> {
    if (this.#closed) throw new Error("worker executor is closed");
    const byWorker: LocalTask[][] = this.#workers.map(() => []);
    for (const task of tasks) byWorker[task.deviceIndex % this.workerCount].push(task);
    const batches = await Promise.all(byWorker.map((list, w) => {
      if (list.length === 0) return Promise.resolve([]);
      const id = this.#nextId++;
      return new Promise<LocalResult[]>((resolve, reject) => {
        this.#pending.set(id, { resolve, reject });
        const message: ToWorker = { type: "run", id, tasks: list };
        this.#workers[w].postMessage(message);
      });
    }));
    const byDevice = new Map(batches.flat().map((r) => [r.deviceIndex, r]));
    return tasks.map((t) => {
      const r = byDevice.get(t.deviceIndex);
      if (!r) throw new Error(`worker executor: no result for device ${t.deviceIndex}`);
      return r;
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#failAll(new Error("worker executor closed"));
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
    return Promise.resolve();
  }
}
