// A device: holds its own flow records, runs the CNN half, and talks to the edge only through
// signed requests carrying activations, labels and (back) gradients. Raw rows never leave it.
import type { LabeledMatrix } from "../../ml/data/types.ts";
import type { ModelConfig } from "../../ml/model/config.ts";
import { checkMatrixForModel, shuffledBatches } from "../../ml/train/batches.ts";
import { batchSeed, FullModelTrainer } from "../../ml/train/local.ts";
import { DeviceSide } from "../../ml/train/split_step.ts";
import { protectionForRound } from "../../ml/privacy/protection.ts";
import {
  describeProtection,
  epsilonSpent,
  type ProtectionSettings,
  releasesPerRow,
} from "../../ml/privacy/settings.ts";
import { encodeMessage } from "../../ml/wire/frame.ts";
import { decodeWeights, modelHash } from "../../ledger/app/blob.ts";
import { expectOk, type Fetcher, sendWithRetry } from "../../net/http_client.ts";
import { nonceCounter, type RequestSigner, signRequest } from "../../net/signed_request.ts";
import { logger } from "../../util/log.ts";
import type { WorkItem } from "../edge/work_queue.ts";
import { residentMemoryMB } from "../../ml/train/memory.ts";

export interface DeviceNodeOptions {
  id: string;
  chainId: string;
  signer: RequestSigner;
  /** Base URL of the edge, e.g. http://127.0.0.1:7200 */
  edgeUrl: string;
  fetcher: Fetcher;
  config: ModelConfig;
  /** This device's own training rows. */
  data: LabeledMatrix;
  /** Called after local training with the update, before reporting done (the ledger hook). */
  onUpdate?: (update: { round: number; weights: Float32Array; samples: number }) => Promise<void>;
  /** Called before training; throws to refuse a global model without a valid commit certificate
   * (roles/ledger_link UpdateSubmitter.checkModel). */
  checkModel?: (work: WorkItem) => Promise<void>;
  /** `run --attack` only: replaces the honest device-side update (weights, global, round). */
  poison?: (update: Float32Array, global: Float32Array, round: number) => Float32Array;
  onRoundDone?: (round: number, steps: number, seconds: number, timing: DeviceRoundTiming) => void;
  /** Clipping + noise of the activations before they leave, NoPeek in the device loss (split
   * modes; FedAvg sends no activations). */
  protection?: ProtectionSettings;
  /** Test hook: every request body this device sends (the raw-rows-never-leave test). */
  onSend?: (path: string, body: Uint8Array) => void;
}

export const WORK_POLL_MS = 10_000;

/** Where a device's round went: its own compute, waiting on the edge's split steps (network,
 * queueing and the edge's compute), and the ledger (certificate check, update submission). */
export interface DeviceRoundTiming {
  computeSeconds: number;
  edgeWaitSeconds: number;
  ledgerSeconds: number;
  peakRssMB?: number;
}

/** After its start, a device waits this long for its edge before unreachability is a warning. */
const EDGE_STARTUP_GRACE_MS = 120_000;

export class DeviceNode {
  #timing: DeviceRoundTiming = { computeSeconds: 0, edgeWaitSeconds: 0, ledgerSeconds: 0 };
  readonly #labels: Int32Array;
  readonly #nextNonce = nonceCounter();
  readonly #log;
  /** Work already attempted: a failed task is not retried from step 0 (the edge moved on). */
  #lastTaskId = "";

  constructor(readonly options: DeviceNodeOptions) {
    this.#labels = checkMatrixForModel(options.config, options.data, `device ${options.id} data`);
    if (options.data.rows === 0) throw new Error(`device ${options.id}: its partition is empty`);
    this.#log = logger(`device/${options.id}`);
  }

  /** Polls for work and does it, until the signal aborts. */
  async loop(signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    let reached = false;
    let lastNoteAt = 0;
    while (!signal.aborted) {
      let work: WorkItem | null;
      try {
        work = await this.nextWork(signal);
        reached = true;
      } catch (error) {
        if (signal.aborted) return;
        const message = (error as Error).message;
        if (!reached && Date.now() - startedAt < EDGE_STARTUP_GRACE_MS) {
          // Started together with the edge: it is still loading. Say so now and then, calmly.
          if (Date.now() - lastNoteAt >= 10_000) {
            this.#log.info(`waiting for the edge at ${this.options.edgeUrl} to start`);
            lastNoteAt = Date.now();
          }
        } else this.#log.warn(`cannot reach the edge; retrying`, { error: message });
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      if (!work) continue;
      if (work.taskId === this.#lastTaskId) {
        // Still offered because we failed it; the edge will cancel it at the round timeout.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      this.#lastTaskId = work.taskId;
      try {
        await this.doWork(work, signal);
      } catch (error) {
        if (signal.aborted) return;
        // The edge may have closed the round (we were too slow): wait for the next one.
        this.#log.warn(`round ${work.round} failed on this device`, {
          error: (error as Error).message,
        });
      }
    }
  }

  async nextWork(signal?: AbortSignal): Promise<WorkItem | null> {
    const path = `/v1/edge/work?wait_ms=${WORK_POLL_MS}`;
    const response = await this.#send(
      "GET",
      path,
      new Uint8Array(0),
      signal,
      WORK_POLL_MS + 10_000,
    );
    if (response.status === 204) return null;
    return await (await expectOk(response, "edge work")).json() as WorkItem;
  }

  async doWork(work: WorkItem, signal?: AbortSignal): Promise<void> {
    const started = performance.now();
    this.#timing = { computeSeconds: 0, edgeWaitSeconds: 0, ledgerSeconds: 0 };
    const ledgerStarted = performance.now();
    await this.options.checkModel?.(work);
    this.#timing.ledgerSeconds += (performance.now() - ledgerStarted) / 1000;
    const device = await this.#fetchModel(work.deviceModelSha256, signal);
    let result: { weights: Float32Array; edge?: Float32Array; steps: number; lossSum: number };
    if (work.mode !== "fedavg") {
      result = await this.#trainSplit(work, device, signal);
    } else {
      const edge = await this.#fetchModel(work.edgeModelSha256, signal);
      result = this.#trainFull(work, device, edge);
    }
    const samples = this.options.data.rows;
    if (this.options.poison) {
      // Simulated attacker (`run --attack`): what it reports instead of its honest update.
      result = { ...result, weights: this.options.poison(result.weights, device, work.round) };
    }
    const submitStarted = performance.now();
    try {
      await this.options.onUpdate?.({ round: work.round, weights: result.weights, samples });
    } catch (error) {
      // E.g. this round's update is already on the ledger from before a restart (one per device
      // per round). The validators' record decides what counts; still report to the edge.
      this.#log.warn(`round ${work.round}: update not submitted to the ledger`, {
        error: (error as Error).message,
      });
    }
    this.#timing.ledgerSeconds += (performance.now() - submitStarted) / 1000;
    const frames = [{
      kind: "parameters" as const,
      round: work.round,
      step: 0,
      shape: [result.weights.length],
      dtype: "float32" as const,
      data: result.weights,
    }];
    if (result.edge) {
      frames.push({
        kind: "parameters",
        round: work.round,
        step: 1,
        shape: [result.edge.length],
        dtype: "float32",
        data: result.edge,
      });
    }
    const lossMicro = Math.max(0, Math.round((result.lossSum / Math.max(result.steps, 1)) * 1e6));
    const path =
      `/v1/edge/done?task=${
        encodeURIComponent(work.taskId)
      }&round=${work.round}&samples=${samples}` +
      `&steps=${result.steps}&loss_micro=${lossMicro}`;
    await expectOk(await this.#send("POST", path, encodeMessage(frames), signal), "report done");
    this.options.onRoundDone?.(
      work.round,
      result.steps,
      (performance.now() - started) / 1000,
      { ...this.#timing, peakRssMB: residentMemoryMB().peakRssMB },
    );
    // ε per row after this round, as if every earlier round had been trained here too (a device
    // that missed rounds has spent less).
    const spent = work.mode !== "fedavg"
      ? epsilonSpent(this.options.protection, releasesPerRow(work.round + 1, work.epochs))
      : null;
    this.#log.info(`round ${work.round} done`, {
      mode: work.mode,
      ...(this.options.protection && work.mode !== "fedavg"
        ? { protection: describeProtection(this.options.protection) }
        : {}),
      ...(spent ? { epsilon: spent.epsilon.toFixed(3), delta: spent.delta } : {}),
      steps: result.steps,
      loss: (result.lossSum / Math.max(result.steps, 1)).toFixed(4),
      seconds: ((performance.now() - started) / 1000).toFixed(1),
    });
  }

  async #trainSplit(work: WorkItem, initial: Float32Array, signal?: AbortSignal) {
    const side = new DeviceSide(this.options.config, initial, {
      learningRate: work.learningRate,
      name: `device ${this.options.id}`,
      protection: protectionForRound(
        this.options.protection,
        work.seed,
        work.round,
        this.#index(),
      ),
    });
    let steps = 0;
    try {
      for (let epoch = 0; epoch < work.epochs; epoch++) {
        const seed = batchSeed(work.seed, work.round, this.#index(), epoch);
        for (
          const batch of shuffledBatches(this.options.data, this.#labels, work.batchSize, seed)
        ) {
          signal?.throwIfAborted();
          const t0 = performance.now();
          const message = side.forward(batch, work.round, steps);
          const t1 = performance.now();
          const response = await this.#send("POST", "/v1/edge/step", message, signal);
          const reply = new Uint8Array(
            await (await expectOk(response, `split step ${steps}`)).arrayBuffer(),
          );
          const t2 = performance.now();
          side.backward(reply);
          this.#timing.computeSeconds += (t1 - t0 + performance.now() - t2) / 1000;
          this.#timing.edgeWaitSeconds += (t2 - t1) / 1000;
          steps++;
        }
      }
      // The edge tracks the loss of split steps; the device only knows its step count.
      return { weights: side.read(), steps, lossSum: 0 };
    } finally {
      side.dispose();
    }
  }

  #trainFull(work: WorkItem, device: Float32Array, edge: Float32Array) {
    const trainer = new FullModelTrainer(
      this.options.config,
      device,
      edge,
      work.learningRate,
      `device ${this.options.id}`,
    );
    let steps = 0, lossSum = 0;
    try {
      for (let epoch = 0; epoch < work.epochs; epoch++) {
        const seed = batchSeed(work.seed, work.round, this.#index(), epoch);
        for (
          const batch of shuffledBatches(this.options.data, this.#labels, work.batchSize, seed)
        ) {
          const t0 = performance.now();
          lossSum += trainer.step(batch);
          this.#timing.computeSeconds += (performance.now() - t0) / 1000;
          steps++;
        }
      }
      return { weights: trainer.device.read(), edge: trainer.edge.read(), steps, lossSum };
    } finally {
      trainer.dispose();
    }
  }

  /** Device index for seeding: the number at the end of the id ("device-3" → 3), else 0. */
  #index(): number {
    const match = /(\d+)$/.exec(this.options.id);
    return match ? Number(match[1]) : 0;
  }

  async #fetchModel(sha256: string, signal?: AbortSignal): Promise<Float32Array> {
    const response = await this.#send(
      "GET",
      `/v1/edge/models/${sha256}`,
      new Uint8Array(0),
      signal,
    );
    const bytes = new Uint8Array(await (await expectOk(response, "model download")).arrayBuffer());
    const weights = decodeWeights(bytes);
    const actual = modelHash(weights);
    if (actual !== sha256) {
      throw new Error(`model download: hash ${actual} does not match the announced ${sha256}`);
    }
    return weights;
  }

  #send(
    method: string,
    path: string,
    body: Uint8Array,
    signal?: AbortSignal,
    timeoutMs = 60_000,
  ): Promise<Response> {
    const url = new URL(path, this.options.edgeUrl);
    return sendWithRetry(
      this.options.fetcher,
      async (attemptSignal) => {
        const headers = await signRequest(
          this.options.signer,
          { chainId: this.options.chainId, method, path: url.pathname + url.search, body },
          this.#nextNonce(),
        );
        this.options.onSend?.(url.pathname, body);
        return new Request(url, {
          method,
          headers: {
            ...headers,
            ...(body.length ? { "content-type": "application/octet-stream" } : {}),
          },
          body: method === "GET" ? undefined : body as Uint8Array<ArrayBuffer>,
          signal: attemptSignal,
        });
      },
      `${method} ${url.pathname}`,
      { attempts: 3, timeoutMs, backoffMs: 200, backoffMsMax: 2000 },
      signal,
    );
  }
}
