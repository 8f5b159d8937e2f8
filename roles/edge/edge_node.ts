// The edge's state for split training: the server-side model copies the devices train against,
// the round's global weights served to devices, and the work queue. No HTTP here (edge_app.ts).
import { StepScheduler, StepSchedulerFull } from "./step_scheduler.ts";
import type { ModelConfig } from "../../ml/model/config.ts";
import type { DeviceExecutor } from "../../ml/train/executor.ts";
import type { LocalResult, LocalTask, LocalTrainOptions } from "../../ml/train/local.ts";
import { EdgeSide } from "../../ml/train/split_step.ts";
import { FRAME_HEADER_BYTES_MIN, FRAME_MAGIC } from "../../ml/wire/frame.ts";
import { encodeWeights, modelHash } from "../../ledger/app/blob.ts";
import { logger } from "../../util/log.ts";
import { deriveSeed, permutation } from "../../ml/model/random.ts";
import { type WorkItem, WorkQueue, type WorkResult } from "./work_queue.ts";

const log = logger("edge");

export interface RoundPolicy {
  /** A round ends when every device reported or this much time passed. */
  roundTimeoutMs: number;
  /** At the timeout, the round completes if at least this many devices reported. */
  minDevices: number;
}

/** Global weights kept for download, by SHA-256; only the current and previous round's. */
const MODEL_BLOBS_MAX = 4;

export class EdgeNode implements DeviceExecutor {
  readonly queue: WorkQueue;
  /** Runs splitfed-v2 rounds: devices in turn against one server-side model. */
  readonly sharedEdge = true;
  /** SplitFed v1: one server-side copy per device, alive while its task runs. */
  readonly #copies = new Map<
    string,
    { side: EdgeSide; taskId: string; round: number; nextStep: number; lossSum: number }
  >();
  readonly #blobs = new Map<string, Uint8Array>();
  #taskCounter = 0;
  /** Time in split steps (server-side forward, loss, backward) since the last take. */
  #computeMs = 0;
  readonly #scheduler: StepScheduler<Uint8Array>;
  #lastStepEndMs = Number.NEGATIVE_INFINITY;

  constructor(
    readonly config: ModelConfig,
    readonly deviceIds: readonly string[],
    readonly local: LocalTrainOptions,
    readonly policy: RoundPolicy,
  ) {
    this.queue = new WorkQueue(deviceIds);
    this.#scheduler = new StepScheduler(Math.max(1, deviceIds.length));
    if (policy.minDevices < 1 || policy.minDevices > deviceIds.length) {
      throw new Error(`edge: minDevices ${policy.minDevices} must be in 1..${deviceIds.length}`);
    }
  }

  /** Publishes weights for download; returns their SHA-256. */
  publish(weights: Float32Array): string {
    const hash = modelHash(weights);
    this.#blobs.set(hash, encodeWeights(weights));
    while (this.#blobs.size > MODEL_BLOBS_MAX) this.#blobs.delete(this.#blobs.keys().next().value!);
    return hash;
  }

  blob(sha256: string): Uint8Array | undefined {
    return this.#blobs.get(sha256);
  }

  /** DeviceExecutor: hand tasks to the devices and wait for results (bounded by the policy). */
  async run(tasks: readonly LocalTask[]): Promise<LocalResult[]> {
    if (tasks.length === 0) return [];
    if (tasks.some((t) => t.mode === "splitfed-v2")) {
      if (!tasks.every((t) => t.mode === "splitfed-v2")) {
        throw new Error("edge: a round mixes splitfed-v2 with other modes");
      }
      return await this.#runInTurn(tasks);
    }
    const round = tasks[0].round;
    const deviceHash = this.publish(tasks[0].device);
    const edgeHash = this.publish(tasks[0].edge);
    const pending = tasks.map((task) => {
      const { deviceId, taskId, item } = this.#workItem(task, deviceHash, edgeHash);
      if (task.mode === "splitfed-v1") {
        this.#copies.get(deviceId)?.side.dispose();
        this.#copies.set(deviceId, {
          side: new EdgeSide(this.config, task.edge, {
            learningRate: this.local.learningRate,
            name: `edge copy for ${deviceId}`,
          }),
          taskId,
          round,
          nextStep: 0,
          lossSum: 0,
        });
      }
      return { task, deviceId, item, result: this.queue.offer(deviceId, item) };
    });

    log.info(`round ${round}: waiting for ${pending.length} device(s)`, {
      timeoutMs: this.policy.roundTimeoutMs,
      minDevices: this.policy.minDevices,
    });
    const results = new Map<string, WorkResult>();
    const all = Promise.all(pending.map(async (p) => {
      const result = await p.result;
      if (result) results.set(p.deviceId, result);
    }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), this.policy.roundTimeoutMs)
    );
    const outcome = await Promise.race([all.then(() => "done" as const), timeout]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      const missing = pending.filter((p) => !results.has(p.deviceId)).map((p) => p.deviceId);
      for (const p of pending) {
        if (!results.has(p.deviceId)) this.queue.cancel(p.deviceId, p.item.taskId);
      }
      if (results.size < this.policy.minDevices) {
        this.#dropCopies();
        throw new Error(
          `round ${round}: only ${results.size} of ${pending.length} devices reported within ${this.policy.roundTimeoutMs} ms ` +
            `(minimum ${this.policy.minDevices}); missing: ${missing.join(", ")}`,
        );
      }
      log.warn(`round ${round}: completing without ${missing.length} straggler(s)`, {
        missing: missing.join(","),
      });
    }

    const out: LocalResult[] = [];
    for (const p of pending) {
      const result = results.get(p.deviceId);
      if (!result) continue;
      const copy = this.#copies.get(p.deviceId);
      const split = p.task.mode === "splitfed-v1";
      const edge = split ? copy!.side.read() : result.edge;
      if (!edge) {
        throw new Error(`round ${round}: ${p.deviceId} sent no edge weights in FedAvg mode`);
      }
      out.push({
        deviceIndex: p.task.deviceIndex,
        round,
        device: result.device,
        edge,
        samples: result.samples,
        steps: result.steps,
        // In split mode only the edge computes the loss.
        lossMean: split ? copy!.lossSum / Math.max(copy!.nextStep, 1) : result.lossMean,
      });
    }
    this.#dropCopies();
    return out;
  }

  /**
   * SplitFed v2: one server-side model; devices take turns in the seeded order the in-process
   * loop uses, each running all its local epochs before the next one starts. Each turn may take
   * an even share of the round's remaining time; a device that does not finish in its share is
   * skipped (steps it took stay in the shared model) so that one straggler cannot starve the
   * devices after it. The round needs `minDevices` finished devices.
   */
  async #runInTurn(tasks: readonly LocalTask[]): Promise<LocalResult[]> {
    const round = tasks[0].round;
    const deviceHash = this.publish(tasks[0].device);
    const edgeHash = this.publish(tasks[0].edge);
    const shared = new EdgeSide(this.config, tasks[0].edge, {
      learningRate: this.local.learningRate,
      name: "shared server-side model",
    });
    const deadline = performance.now() + this.policy.roundTimeoutMs;
    const finished: { task: LocalTask; result: WorkResult; lossSum: number; steps: number }[] = [];
    const missing: string[] = [];
    try {
      const order = permutation(tasks.length, deriveSeed(this.local.seed, round, 0x5f2));
      for (const [turn, index] of order.entries()) {
        const task = tasks[index];
        const { deviceId, taskId, item } = this.#workItem(task, deviceHash, edgeHash);
        this.#copies.set(deviceId, {
          side: shared,
          taskId,
          round,
          nextStep: 0,
          lossSum: 0,
        });
        const remainingMs = Math.max(0, deadline - performance.now()) / (tasks.length - turn);
        log.info(`round ${round}: ${deviceId}'s turn (${turn + 1}/${tasks.length})`, {
          waitMs: Math.round(remainingMs),
        });
        const offered = this.queue.offer(deviceId, item);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const result = await Promise.race([
          offered,
          new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), remainingMs)),
        ]);
        clearTimeout(timer);
        const copy = this.#copies.get(deviceId)!;
        this.#copies.delete(deviceId);
        if (!result) {
          this.queue.cancel(deviceId, taskId);
          missing.push(deviceId);
          log.warn(
            `round ${round}: ${deviceId} did not finish its turn within ${
              Math.round(remainingMs)
            } ms; skipped`,
          );
          continue;
        }
        finished.push({ task, result, lossSum: copy.lossSum, steps: copy.nextStep });
      }
      if (finished.length < this.policy.minDevices) {
        throw new Error(
          `round ${round}: only ${finished.length} of ${tasks.length} devices finished their turn ` +
            `within ${this.policy.roundTimeoutMs} ms (minimum ${this.policy.minDevices}); ` +
            `missing: ${missing.join(", ")}`,
        );
      }
      const edge = shared.read();
      return finished
        .sort((a, b) => a.task.deviceIndex - b.task.deviceIndex)
        .map(({ task, result, lossSum, steps }) => ({
          deviceIndex: task.deviceIndex,
          round,
          device: result.device,
          edge,
          samples: result.samples,
          steps: result.steps,
          lossMean: lossSum / Math.max(steps, 1),
        }));
    } finally {
      for (const [id, copy] of this.#copies) if (copy.side === shared) this.#copies.delete(id);
      shared.dispose();
    }
  }

  /** The work a device fetches for its task: the round's settings and the models by hash. */
  #workItem(task: LocalTask, deviceHash: string, edgeHash: string) {
    const deviceId = this.deviceIds[task.deviceIndex];
    if (!deviceId) throw new Error(`edge: no device for index ${task.deviceIndex}`);
    const taskId = `r${task.round}-${task.deviceIndex}-${++this.#taskCounter}`;
    const item: WorkItem = {
      taskId,
      round: task.round,
      mode: task.mode,
      epochs: this.local.epochs,
      batchSize: this.local.batchSize,
      learningRate: this.local.learningRate,
      seed: this.local.seed,
      deviceModelSha256: deviceHash,
      edgeModelSha256: edgeHash,
    };
    return { deviceId, taskId, item };
  }

  /** `step` in the scheduler's order: the device furthest into its round first (see
   * step_scheduler.ts). What the HTTP handler calls. */
  async stepInTurn(deviceId: string, message: Uint8Array): Promise<Uint8Array> {
    const priority = this.#copies.get(deviceId)?.nextStep ?? 0;
    try {
      return await this.#scheduler.submit(deviceId, priority, () => this.step(deviceId, message));
    } catch (error) {
      if (error instanceof StepSchedulerFull) throw new EdgeRefusal("bad_frame", error.message);
      throw error;
    }
  }

  /** One split step for a device's current task; the frame's round/step must be the next one. */
  step(deviceId: string, message: Uint8Array): Uint8Array {
    const copy = this.#copies.get(deviceId);
    const work = this.queue.current(deviceId);
    if (!copy || !work || work.taskId !== copy.taskId) {
      throw new EdgeRefusal("no_task", `${deviceId} has no split-learning task in progress`);
    }
    const where = `split step from ${deviceId} (round ${copy.round}, step ${copy.nextStep})`;
    const header = peekRoundStep(message);
    if (!header || header.round !== copy.round || header.step !== copy.nextStep) {
      // A replayed, reordered or stale frame must not train the model twice.
      throw new EdgeRefusal(
        "bad_frame",
        `${where}: frame is for round ${header?.round} step ${header?.step}`,
      );
    }
    const started = performance.now();
    try {
      const { reply, loss } = copy.side.step(message, where);
      this.#lastStepEndMs = performance.now();
      this.#computeMs += this.#lastStepEndMs - started;
      copy.nextStep++;
      copy.lossSum += loss;
      return reply;
    } catch (error) {
      throw new EdgeRefusal("bad_frame", (error as Error).message);
    }
  }

  /** Resolves once no split step has run for `quietMs`, or after `maxWaitMs` at the latest:
   * background work (the last round's evaluation) goes between the devices' steps, not before. */
  async idle(quietMs: number, maxWaitMs: number): Promise<void> {
    const started = performance.now();
    for (;;) {
      const now = performance.now();
      const quietFor = now - this.#lastStepEndMs;
      if (quietFor >= quietMs || now - started >= maxWaitMs) return;
      const waitMs = Math.min(quietMs - quietFor, maxWaitMs - (now - started));
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, waitMs)));
    }
  }

  /** Seconds spent computing split steps since the last call (a round's edge compute). */
  takeComputeSeconds(): number {
    const seconds = this.#computeMs / 1000;
    this.#computeMs = 0;
    return seconds;
  }

  #dropCopies() {
    for (const copy of this.#copies.values()) copy.side.dispose();
    this.#copies.clear();
  }

  close(): Promise<void> {
    this.#dropCopies();
    return Promise.resolve();
  }
}

/** Round and step of a message's first frame (see ml/wire/frame.ts), or null if no frame. */
function peekRoundStep(message: Uint8Array): { round: number; step: number } | null {
  if (message.length < FRAME_HEADER_BYTES_MIN) return null;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  if (view.getUint32(0, true) !== FRAME_MAGIC) return null;
  return { round: view.getUint32(8, true), step: view.getUint32(12, true) };
}

/** An expected refusal the HTTP layer maps to a 4xx. */
export class EdgeRefusal extends Error {
  constructor(readonly code: "no_task" | "bad_frame" | "round_over", message: string) {
    super(message);
    this.name = "EdgeRefusal";
  }
}
