// deno task bench train (or: deno run -A bench/train.ts [--quick] [--batches=256] [--lstm-threads=1]
// [--torch-threads=1] [--no-torch] [--runs=5] [--min-seconds=1.5]): samples/s of the split learning step (device
// forward -> frames -> edge forward/backward -> frames -> device backward) and of inference, for the
// default model, next to PyTorch running the same model and step on the same machine (Debian
// python3-torch, best of 1 and 2 threads), interleaved: each tfjs run is followed by one PyTorch
// run per thread count (persistent `torch_reference.py --serve` subprocesses), and the ratio is the
// median of these paired ratios. --kernel-threads[=batch]: the LSTM kernel alone, 1 thread against
// 2, interleaved in one process.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import os from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { initTensorflow } from "../ml/tf/backend.ts";
import { median, type PairedRatio, type Rate, summarizePaired } from "./stats.ts";

export interface TrainBenchOptions {
  batches: number[];
  /** Each timed run lasts at least this long. */
  minSeconds: number;
  runs: number;
  features: number;
  bidirectional: boolean;
  /** Python with torch; Debian's, not a pyenv one first on PATH. Empty = skip PyTorch. */
  python: string;
  torchThreads: number[];
  /** Threads of the LSTM kernel (1 or 2; IOMT_SFL_LSTM_THREADS overrides). */
  lstmThreads: number;
  /** Bound on every wait for the PyTorch server (start, each timed run, quit), in seconds. */
  torchTimeoutSeconds: number;
}

/** Repetition r of a batch: the tfjs run, then right after it one PyTorch run per thread count. */
export interface PairedRun {
  tfjs: Rate;
  torch: (Rate & { threads: number })[];
}

export interface TrainBenchRow {
  batch: number;
  tfjsTrain: number;
  tfjsTrainRuns: number[];
  tfjsInfer: number;
  /** Samples per CPU second (see samplesPerSecond), medians. */
  tfjsTrainCpu: number;
  tfjsInferCpu: number;
  /** PyTorch with 1 thread, samples per CPU second. */
  torchTrainCpu?: number;
  torchInferCpu?: number;
  /** PyTorch: per repetition the fastest thread count, median over the repetitions. */
  torchTrain?: number;
  /** The thread count fastest in most repetitions, and in how many. */
  torchTrainThreads?: number;
  torchTrainWins?: number;
  torchInfer?: number;
  torchInferThreads?: number;
  torchInferWins?: number;
  tfjsInferRuns: number[];
  /** Median (and range) of the paired ratios tfjs / fastest PyTorch of the same repetition. */
  trainRatio?: PairedRatio;
  inferRatio?: PairedRatio;
  /** Paired ratios of samples per CPU second, tfjs / PyTorch 1 thread. */
  trainCpuRatio?: PairedRatio;
  inferCpuRatio?: PairedRatio;
  /** Every timed run, in the order measured. */
  trainPairs: PairedRun[];
  inferPairs: PairedRun[];
}

export interface TrainBenchResult {
  rows: TrainBenchRow[];
  runtime: string;
  backend: string;
  loadBefore: number[];
  loadAfter: number[];
  tfjsPeakRssMB: number;
  torch: { threads: number; peakRssMB: number; version: string }[];
  /** How tfjs and PyTorch runs were ordered (also printed with the table). */
  protocol: string;
  model: string;
  table: string;
}

const DEFAULTS: TrainBenchOptions = {
  batches: [64, 256, 1024],
  minSeconds: 1.5,
  runs: 5,
  features: 44,
  bidirectional: true,
  python: "/usr/bin/python3",
  torchThreads: [1, 2],
  lstmThreads: 2,
  torchTimeoutSeconds: 120,
};

function runtimeName(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  return `node ${process.versions.node}`;
}

/** Samples per wall-clock second, and per CPU second of this process (process.cpuUsage: all its
 * threads). On a shared machine the CPU-time rate does not count the time spent waiting for a
 * core, so it is the steadier of the two when the load swings. */
function samplesPerSecond(
  fn: () => void,
  batch: number,
  minSeconds: number,
): { wall: number; cpu: number } {
  let n = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let elapsed = 0;
  while (n < 2 || elapsed < minSeconds * 1000) {
    fn();
    n++;
    elapsed = performance.now() - t0;
  }
  const c = process.cpuUsage(c0);
  return {
    wall: (n * batch) / (elapsed / 1000),
    cpu: (n * batch) / Math.max((c.user + c.system) / 1e6, 1e-9),
  };
}

type Reply = Record<string, unknown>;

/** A persistent `torch_reference.py --serve` subprocess (any program speaking its line protocol):
 * one command at a time, one JSON line back. Every wait is bounded; a crash, a bad or unexpected
 * reply, an error reply or a timeout rejects with an error naming the server and the command (after
 * a timeout the process is killed: its state is unknown). */
export class TorchServer {
  runtime = "";
  threads = 0;
  /** Resolves when the process has exited and its pipes are closed. */
  readonly closed: Promise<void>;
  private child: ChildProcess;
  private buffer = "";
  private lines: string[] = [];
  private stderr = "";
  private ended?: string;
  private waiter?: {
    command: string | undefined;
    resolve: (reply: Reply) => void;
    reject: (error: Error) => void;
    timer: ReturnType<typeof setTimeout>;
  };

  private constructor(readonly name: string, program: string, args: string[]) {
    this.child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (let i; (i = this.buffer.indexOf("\n")) >= 0;) {
        const line = this.buffer.slice(0, i).trim();
        this.buffer = this.buffer.slice(i + 1);
        if (line) this.lines.push(line);
      }
      this.deliver();
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-2000);
    });
    this.child.stdin!.on("error", (e) => this.end(`stdin failed (${e.message})`));
    this.closed = new Promise((resolve) => {
      this.child.on("error", (e) => {
        this.end(`could not run (${e.message})`);
        resolve();
      });
      this.child.on("close", (code, signal) => {
        this.end(`exited (${signal ? `signal ${signal}` : `code ${code}`})`);
        resolve();
      });
    });
  }

  /** Starts `program args` and waits for its ready line ({"ready": true, "runtime", "threads"}). */
  static async start(
    name: string,
    program: string,
    args: string[],
    timeoutSeconds: number,
  ): Promise<TorchServer> {
    const server = new TorchServer(name, program, args);
    try {
      const ready = await server.send(undefined, timeoutSeconds);
      if (ready.ready !== true) throw server.unexpected(undefined, ready);
      server.runtime = String(ready.runtime ?? "");
      server.threads = Number(ready.threads ?? 0);
      return server;
    } catch (e) {
      server.kill();
      await server.closed;
      throw e;
    }
  }

  /** One timed run (`train|infer batch minSeconds`): samples per wall and per CPU second. */
  async run(
    kind: "train" | "infer",
    batch: number,
    minSeconds: number,
    timeoutSeconds: number,
  ): Promise<Rate> {
    const command = `${kind} ${batch} ${minSeconds}`;
    const reply = await this.send(command, timeoutSeconds);
    const { wall, cpu } = reply;
    if (
      reply.kind !== kind || reply.batch !== batch || typeof wall !== "number" || !(wall > 0) ||
      typeof cpu !== "number" || !(cpu > 0)
    ) throw this.unexpected(command, reply);
    return { wall, cpu };
  }

  /** `quit`: the peak RSS it reports, then waits for the exit (killed if it does not come). */
  async close(timeoutSeconds: number): Promise<number> {
    try {
      const reply = await this.send("quit", timeoutSeconds);
      if (reply.quit !== true || typeof reply.peakRssMB !== "number") {
        throw this.unexpected("quit", reply);
      }
      this.child.stdin!.end();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        this.closed.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(resolve, 5000, false))),
      ]);
      clearTimeout(timer);
      if (!exited) this.kill();
      return reply.peakRssMB;
    } finally {
      this.kill();
      await this.closed;
    }
  }

  /** Ends the process now (no-op once it has ended). */
  kill(): void {
    const c = this.child;
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null && !c.killed) {
      c.kill("SIGKILL");
    }
  }

  private label(command: string | undefined): string {
    return command === undefined ? "start" : `"${command}"`;
  }

  private unexpected(command: string | undefined, reply: Reply): Error {
    return new Error(
      `${this.name}: unexpected reply to ${this.label(command)}: ${JSON.stringify(reply)}`,
    );
  }

  /** Sends `command` (none: just waits for the next line) and waits for one reply line. */
  private send(command: string | undefined, timeoutSeconds: number): Promise<Reply> {
    const what = this.label(command);
    if (this.waiter) {
      return Promise.reject(
        new Error(`${this.name}: ${what} sent while ${this.label(this.waiter.command)} is pending`),
      );
    }
    if (this.ended !== undefined && this.lines.length === 0) {
      return Promise.reject(new Error(`${this.name}: cannot send ${what}: ${this.ended}`));
    }
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.kill();
        reject(
          new Error(
            `${this.name}: no reply to ${what} within ${timeoutSeconds} s; killed${this.stderrTail()}`,
          ),
        );
      }, timeoutSeconds * 1000);
      this.waiter = { command, resolve, reject, timer };
      if (command !== undefined && this.ended === undefined) {
        this.child.stdin!.write(command + "\n");
      }
      this.deliver();
    });
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    const what = this.label(waiter.command);
    let error: Error | undefined, reply: Reply | undefined;
    if (this.lines.length > 0) {
      const line = this.lines.shift()!;
      try {
        const parsed = JSON.parse(line);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw 0;
        reply = parsed as Reply;
        if (reply.error !== undefined) {
          error = new Error(`${this.name}: ${what} failed: ${reply.error}${this.stderrTail()}`);
        }
      } catch {
        error = new Error(
          `${this.name}: bad reply to ${what} (not a JSON object): ${
            line.slice(0, 200)
          }${this.stderrTail()}`,
        );
      }
    } else if (this.ended !== undefined) {
      error = new Error(
        `${this.name}: ${this.ended} while waiting for the reply to ${what}${this.stderrTail()}`,
      );
    } else return;
    clearTimeout(waiter.timer);
    this.waiter = undefined;
    if (error) waiter.reject(error);
    else waiter.resolve(reply!);
  }

  private end(reason: string): void {
    this.ended ??= reason;
    this.deliver();
  }

  private stderrTail(): string {
    const tail = this.stderr.trim();
    return tail ? `\nstderr: ${tail.split("\n").slice(-10).join("\n")}` : "";
  }
}

/** One PyTorch reference server per thread count, same model options as the tfjs side. */
async function startTorchServers(o: TrainBenchOptions): Promise<TorchServer[]> {
  const script = fileURLToPath(new URL("./torch_reference.py", import.meta.url));
  const started = await Promise.allSettled(o.torchThreads.map((threads) =>
    TorchServer.start(
      `PyTorch reference (${threads} thread${threads > 1 ? "s" : ""})`,
      o.python,
      [
        script,
        "--serve",
        `--features=${o.features}`,
        `--threads=${threads}`,
        ...(o.bidirectional ? [] : ["--unidirectional"]),
      ],
      o.torchTimeoutSeconds,
    )
  ));
  const failed = started.find((s) => s.status === "rejected");
  const servers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  if (failed) {
    servers.forEach((s) => s.kill());
    await Promise.all(servers.map((s) => s.closed));
    throw failed.reason;
  }
  return servers;
}

/** A table row from the paired runs of one batch (summarizePaired: medians, paired ratios). */
export function summarizeRow(
  batch: number,
  trainPairs: PairedRun[],
  inferPairs: PairedRun[],
): TrainBenchRow {
  const summarize = (pairs: PairedRun[]) =>
    summarizePaired(
      pairs.map((p) => p.tfjs),
      (pairs[0]?.torch ?? []).map(({ threads }, k) => ({
        threads,
        runs: pairs.map((p) => {
          if (p.torch[k]?.threads !== threads) throw new Error("paired runs: thread counts differ");
          return p.torch[k];
        }),
      })),
    );
  const train = summarize(trainPairs), infer = summarize(inferPairs);
  const row: TrainBenchRow = {
    batch,
    tfjsTrain: train.wall,
    tfjsTrainRuns: trainPairs.map((p) => p.tfjs.wall),
    tfjsInfer: infer.wall,
    tfjsInferRuns: inferPairs.map((p) => p.tfjs.wall),
    tfjsTrainCpu: train.cpu,
    tfjsInferCpu: infer.cpu,
    trainPairs,
    inferPairs,
  };
  if (train.reference) {
    Object.assign(row, {
      torchTrain: train.reference.wall,
      torchTrainThreads: train.reference.threads,
      torchTrainWins: train.reference.wins,
      torchTrainCpu: train.reference.cpu,
      trainRatio: train.reference.ratio,
      trainCpuRatio: train.reference.cpuRatio,
    });
  }
  if (infer.reference) {
    Object.assign(row, {
      torchInfer: infer.reference.wall,
      torchInferThreads: infer.reference.threads,
      torchInferWins: infer.reference.wins,
      torchInferCpu: infer.reference.cpu,
      inferRatio: infer.reference.ratio,
      inferCpuRatio: infer.reference.cpuRatio,
    });
  }
  return row;
}

export async function benchTrain(
  overrides: Partial<TrainBenchOptions> = {},
): Promise<TrainBenchResult> {
  const o = { ...DEFAULTS, ...overrides };
  const positiveInts = (v: number[]) =>
    v.length > 0 && v.every((n) => Number.isInteger(n) && n > 0);
  if (!positiveInts([o.runs]) || !positiveInts(o.batches) || !(o.minSeconds >= 0)) {
    throw new Error(
      `bench train: runs ${o.runs} and batches ${o.batches} must be integers >= 1, ` +
        `min seconds ${o.minSeconds} >= 0`,
    );
  }
  if (
    o.python &&
    (!positiveInts(o.torchThreads) || new Set(o.torchThreads).size !== o.torchThreads.length)
  ) {
    throw new Error(`bench train: torch threads ${o.torchThreads} must be distinct integers >= 1`);
  }
  const loadBefore = os.loadavg();
  const { info } = await initTensorflow({ backend: "wasm", lstmThreads: o.lstmThreads });
  const { lstmKernel } = await import("../ml/kernels/lstm_kernel.ts");
  // The worker thread, if any, starts asynchronously: wait for it so that every run uses it.
  const lstmThreads = lstmKernel().waitForThreads();
  const { defaultModelConfig } = await import("../ml/model/config.ts");
  const { deviceLayout, edgeLayout, initParams, describeModel } = await import(
    "../ml/model/split_model.ts"
  );
  const { DeviceSide, EdgeSide } = await import("../ml/train/split_step.ts");
  const { Predictor } = await import("../ml/train/evaluate.ts");
  const { prng } = await import("../ml/model/random.ts");
  const { residentMemoryMB } = await import("../ml/train/memory.ts");

  const config = { ...defaultModelConfig(o.features), bidirectional: o.bidirectional };
  const device0 = initParams(deviceLayout(config), 1);
  const edge0 = initParams(edgeLayout(config), 2);
  const rows: TrainBenchRow[] = [];
  const servers = o.python ? await startTorchServers(o) : [];
  const torch: TrainBenchResult["torch"] = [];
  try {
    /** `runs` repetitions of: the tfjs run, then one PyTorch run per server, right after it. */
    const paired = async (
      kind: "train" | "infer",
      batchRows: number,
      tfjsRun: () => Rate,
    ): Promise<PairedRun[]> => {
      const pairs: PairedRun[] = [];
      for (let r = 0; r < o.runs; r++) {
        const tfjs = tfjsRun();
        const torchRuns: PairedRun["torch"] = [];
        for (const server of servers) {
          const rate = await server.run(kind, batchRows, o.minSeconds, o.torchTimeoutSeconds);
          torchRuns.push({ threads: server.threads, ...rate });
        }
        pairs.push({ tfjs, torch: torchRuns });
      }
      return pairs;
    };
    for (const batchRows of o.batches) {
      const random = prng(7);
      const features = Float32Array.from(
        { length: batchRows * o.features },
        () => random() * 2 - 1,
      );
      const labels = Int32Array.from(
        { length: batchRows },
        (_, r) => (features[r * o.features] > 0 ? 1 : 0),
      );
      const batch = { features, labels, rows: batchRows };
      const device = new DeviceSide(config, device0, { learningRate: 1e-3, name: "bench device" });
      const edge = new EdgeSide(config, edge0, { learningRate: 1e-3, name: "bench edge" });
      let step = 0;
      const splitStep = () => {
        const message = device.forward(batch, 0, step++);
        device.backward(edge.step(message).reply);
      };
      let trainPairs: PairedRun[];
      try {
        splitStep(); // warm-up: kernel setup, heap growth
        splitStep();
        trainPairs = await paired(
          "train",
          batchRows,
          () => samplesPerSecond(splitStep, batchRows, o.minSeconds),
        );
      } finally {
        device.dispose();
        edge.dispose();
      }
      const predictor = new Predictor(config, device0, edge0);
      let inferPairs: PairedRun[];
      try {
        predictor.probabilities(features, batchRows);
        inferPairs = await paired(
          "infer",
          batchRows,
          () =>
            samplesPerSecond(
              () => predictor.probabilities(features, batchRows),
              batchRows,
              o.minSeconds,
            ),
        );
      } finally {
        predictor.dispose();
      }
      rows.push(summarizeRow(batchRows, trainPairs, inferPairs));
    }
    for (const server of servers) {
      torch.push({
        threads: server.threads,
        peakRssMB: await server.close(o.torchTimeoutSeconds),
        version: server.runtime,
      });
    }
  } finally {
    servers.forEach((s) => s.kill());
    await Promise.all(servers.map((s) => s.closed));
  }
  const tfjsPeakRssMB = residentMemoryMB().peakRssMB;
  const loadAfter = os.loadavg();
  const fmt = (v?: number) => (v === undefined ? "—" : Math.round(v).toLocaleString("en-US"));
  const x = (v: number) => `${v.toFixed(2)}x`;
  const ratio = (p?: PairedRatio) =>
    p === undefined
      ? "—"
      : p.ratios.length > 1
      ? `${x(p.median)} (${p.min.toFixed(2)}-${p.max.toFixed(2)})`
      : x(p.median);
  const winner = (threads?: number, wins?: number) =>
    threads === undefined ? "" : ` (${threads}t${servers.length > 1 ? ` ${wins}/${o.runs}` : ""})`;
  const threadList = o.torchThreads.map((t) => `${t}t`).join(" and ");
  const torchHow = o.torchThreads.length > 1
    ? `per repetition the fastest of ${o.torchThreads.join("/")} threads, median; ` +
      `(Nt k/${o.runs}): fastest in k repetitions`
    : `${o.torchThreads[0]} thread${o.torchThreads[0] > 1 ? "s" : ""}, median`;
  const protocol = servers.length
    ? `interleaved: each tfjs run is followed by PyTorch ${threadList} runs; ratio = median of ` +
      `paired ratios (tfjs / fastest PyTorch run of the same repetition; range min-max); ` +
      `${o.runs} repetition${
        o.runs > 1 ? "s" : ""
      } of >= ${o.minSeconds} s per engine, batch by batch, training then ` +
      `inference`
    : `tfjs only (PyTorch skipped): ${o.runs} runs of >= ${o.minSeconds} s per batch`;
  const lines = [
    `Protocol: ${protocol}.`,
    "",
    `| batch | tfjs split step (samples/s, median of ${o.runs}: runs) | PyTorch split step (${torchHow}) | ratio (median of paired, min-max) | tfjs inference | PyTorch inference | ratio (median of paired, min-max) | CPU-time ratio vs PyTorch 1 thread (median of paired): train / inference |`,
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.batch} | ${fmt(r.tfjsTrain)} (${r.tfjsTrainRuns.map(fmt).join(", ")}) | ${
        fmt(r.torchTrain)
      }${winner(r.torchTrainThreads, r.torchTrainWins)} | ${ratio(r.trainRatio)} | ${
        fmt(r.tfjsInfer)
      } | ${fmt(r.torchInfer)}${winner(r.torchInferThreads, r.torchInferWins)} | ${
        ratio(r.inferRatio)
      } | ${ratio(r.trainCpuRatio)} / ${ratio(r.inferCpuRatio)} |`
    ),
  ];
  const machine = `${os.cpus()[0]?.model ?? "cpu"}, ${os.cpus().length} cores`;
  const footer =
    `${runtimeName()}, tfjs ${info.backend}${info.simd ? "+SIMD" : ""} (${
      info.patches.join(", ")
    }), LSTM kernel ${lstmThreads} thread${lstmThreads > 1 ? "s" : ""}; ` +
    `${torch[0]?.version ?? "PyTorch skipped"}; ${machine}; load average before ${
      loadBefore.map((l) => l.toFixed(2)).join(" ")
    }, ` +
    `after ${loadAfter.map((l) => l.toFixed(2)).join(" ")}; peak RSS tfjs ${tfjsPeakRssMB} MB` +
    (torch.length
      ? `, PyTorch ${torch.map((t) => `${t.peakRssMB} MB (${t.threads}t)`).join(", ")}`
      : "");
  const table = [...lines, "", footer, `Protocol: ${protocol}.`].join("\n");
  return {
    rows,
    runtime: runtimeName(),
    backend: info.backend,
    loadBefore,
    loadAfter,
    tfjsPeakRssMB,
    torch,
    protocol,
    model: describeModel(config),
    table,
  };
}

export interface QualityBenchOptions {
  csv: string;
  mode: "splitfed-v1" | "splitfed-v2" | "fedavg" | "centralized";
  devices: number;
  rounds: number;
  localEpochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  python: string;
  /** Writes the final model here when set. */
  saveDir?: string;
}

/** Quality on real data (issue item 8): WUSTL-EHMS through ml/data (identifiers and constant
 * columns dropped, Flgs one-hot), stratified split with seed 0 (test 30 %, validation 10 % for the
 * threshold, train 60 % over the devices), SplitFed, next to scikit-learn's random forest trained
 * centrally on the same training rows and evaluated on the same test rows. */
export async function benchQuality(overrides: Partial<QualityBenchOptions> = {}): Promise<string> {
  const o: QualityBenchOptions = {
    csv: "/work/shared/datasets/wustl-ehms-2020.csv",
    mode: "splitfed-v1",
    devices: 10,
    rounds: 20,
    localEpochs: 3,
    batchSize: 64,
    learningRate: 5e-3,
    seed: 0,
    python: "/usr/bin/python3",
    ...overrides,
  };
  await initTensorflow({ backend: "wasm" });
  const { prepareDataset } = await import("../ml/data/prepare.ts");
  const { defaultModelConfig } = await import("../ml/model/config.ts");
  const { trainRounds } = await import("../ml/train/loop.ts");
  const { formatReport } = await import("../ml/metrics/classification.ts");
  const { residentMemoryMB } = await import("../ml/train/memory.ts");
  const data = await prepareDataset({
    source: { path: o.csv },
    labelMode: "binary",
    split: { mode: "stratified", validation: 0.1, test: 0.3 },
    devices: { count: o.devices },
    seed: o.seed,
  });
  const features = data.train.featureNames.length;
  const config = defaultModelConfig(features);
  console.error(`features (${features}): ${data.train.featureNames.join(", ")}`);
  console.error(
    `rows train ${data.train.rows} validation ${data.validation.rows} test ${data.test.rows}; devices ${
      data.devices.map((d) => d.rows).join(" ")
    }`,
  );
  const started = performance.now();
  const result = await trainRounds({
    options: {
      mode: o.mode,
      rounds: o.rounds,
      localEpochs: o.localEpochs,
      batchSize: o.batchSize,
      learningRate: o.learningRate,
      seed: o.seed,
      model: config,
    },
    partitions: data.devices,
    validation: data.validation,
    test: data.test,
    onRound: (r) =>
      console.error(
        `round ${r.round} loss ${r.trainLoss.toFixed(4)} ${formatReport(r.test)} ${
          r.seconds.toFixed(1)
        }s tensors ${r.numTensors} rss ${r.rssMB} MB`,
      ),
  });
  const seconds = (performance.now() - started) / 1000;
  const final = result.rounds.at(-1)!;
  if (o.saveDir) {
    const { saveModel, hashLabeledMatrix } = await import("../ml/artifact/model_artifact.ts");
    await saveModel(o.saveDir, {
      config,
      device: result.model.device,
      edge: result.model.edge,
      preprocessing: data.preprocessor.toJSON(),
      metadata: {
        createdAt: new Date().toISOString(),
        threshold: final.threshold,
        classNames: [...data.train.classNames],
        featureNames: [...data.train.featureNames],
        datasetHash: await hashLabeledMatrix(data.train),
        metrics: final.test,
        training: { ...o, python: undefined },
      },
    });
  }
  // detect throughput: CSV parsing + preprocessing + inference over the whole file.
  const { detectFlows } = await import("../ml/artifact/detector.ts");
  const detect = await detectFlows(
    {
      config,
      device: result.model.device,
      edge: result.model.edge,
      preprocessing: data.preprocessor.toJSON(),
      metadata: {
        format: "iomt-sfl/split-cnn-lstm",
        version: 1,
        createdAt: "",
        threshold: final.threshold,
        classNames: [...data.train.classNames],
        featureNames: [...data.train.featureNames],
        weightsSha256: "",
      },
    },
    { path: o.csv },
    {},
    () => {},
  );
  const rf = await randomForestReference(o.python, data.train, data.validation, data.test, o.seed);
  const b = final.test.binary;
  const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
  const rows = [
    "| model | accuracy | precision | recall | F1 | FPR | ROC-AUC |",
    "|---|---|---|---|---|---|---|",
    `| ${o.mode}, ${o.devices} devices, ${o.rounds} rounds x ${o.localEpochs} local epochs, lr ${o.learningRate}, batch ${o.batchSize} (CNN-BiLSTM, tfjs) | ${
      pct(b.accuracy)
    } | ${pct(b.precision)} | ${pct(b.recall)} | ${pct(b.f1)} | ${pct(b.fpr)} | ${
      b.rocAuc.toFixed(4)
    } |`,
    ...rf.map((r) =>
      `| random forest, centralized (${r.name}) | ${pct(r.accuracy)} | ${pct(r.precision)} | ${
        pct(r.recall)
      } | ${pct(r.f1)} | ${pct(r.fpr)} | ${r.auc.toFixed(4)} |`
    ),
  ];
  const footer =
    `WUSTL-EHMS ${
      data.train.rows + data.validation.rows + data.test.rows
    } rows, ${features} features; ` +
    `test ${data.test.rows} rows (${b.support.attack} attacks); threshold ${
      b.threshold.toFixed(3)
    } chosen on validation; ` +
    `training ${seconds.toFixed(0)} s; detect over the whole CSV ${
      Math.round(detect.rowsPerSecond)
    } rows/s ` +
    `(${detect.rows} rows, ${detect.alerts} alerts); peak RSS ${residentMemoryMB().peakRssMB} MB; load ${
      os.loadavg().map((l) => l.toFixed(2)).join(" ")
    }`;
  return [...rows, "", footer].join("\n");
}

interface RfResult {
  name: string;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  fpr: number;
  auc: number;
}

async function randomForestReference(
  python: string,
  train: import("../ml/data/types.ts").LabeledMatrix,
  validation: import("../ml/data/types.ts").LabeledMatrix,
  test: import("../ml/data/types.ts").LabeledMatrix,
  seed: number,
): Promise<RfResult[]> {
  const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(os.tmpdir(), "iomt-rf-"));
  try {
    const columns = train.featureNames.length;
    for (
      const [name, m] of [["train", train], ["validation", validation], ["test", test]] as const
    ) {
      await writeFile(
        join(dir, `${name}.x`),
        new Uint8Array(m.features.buffer, m.features.byteOffset, m.features.byteLength),
      );
      const y = Int32Array.from(m.labels, (l) => (l > 0 ? 1 : 0));
      await writeFile(join(dir, `${name}.y`), new Uint8Array(y.buffer));
    }
    const script = fileURLToPath(new URL("./torch_reference.py", import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        python,
        [script, "--random-forest", dir, `--columns=${columns}`, `--seed=${seed}`],
        { timeout: 600_000 },
        (e, out, err) =>
          e
            ? reject(new Error(`random forest reference failed: ${e.message}\n${err}`))
            : resolve(out),
      )
    );
    return JSON.parse(stdout.trim().split("\n").pop()!) as RfResult[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Parallel devices: one SplitFed v1 round of `devices` devices in-process vs in workers. */
export async function benchParallel(
  overrides: { devices?: number; rowsPerDevice?: number; features?: number; workers?: number[] } =
    {},
): Promise<string> {
  const devices = overrides.devices ?? 10;
  const rowsPerDevice = overrides.rowsPerDevice ?? 512;
  const features = overrides.features ?? 33;
  const workerCounts = overrides.workers ?? [1, 2];
  await initTensorflow({ backend: "wasm" });
  const { defaultModelConfig } = await import("../ml/model/config.ts");
  const { prng } = await import("../ml/model/random.ts");
  const { InProcessExecutor } = await import("../ml/train/executor.ts");
  const { WorkerExecutor } = await import("../ml/train/worker_executor.ts");
  const { initialModel } = await import("../ml/train/loop.ts");
  const config = defaultModelConfig(features);
  const random = prng(3);
  const partitions = Array.from({ length: devices }, () => {
    const values = Float32Array.from({ length: rowsPerDevice * features }, () => random() * 2 - 1);
    return {
      featureNames: Array.from({ length: features }, (_, c) => `f${c}`),
      features: values,
      rows: rowsPerDevice,
      labels: Int32Array.from(
        { length: rowsPerDevice },
        (_, r) => (values[r * features] > 0 ? 1 : 0),
      ),
      classNames: ["normal", "attack"],
    };
  });
  const local = { epochs: 1, batchSize: 64, learningRate: 1e-3, seed: 1 };
  const model = initialModel(config, 1);
  const tasks = partitions.map((_, deviceIndex) => ({
    deviceIndex,
    round: 0,
    mode: "splitfed-v1" as const,
    ...model,
  }));
  const lines = ["| executor | seconds per round | samples/s | speed-up |", "|---|---|---|---|"];
  const time = async (executor: import("../ml/train/executor.ts").DeviceExecutor) => {
    await executor.run(tasks.slice(0, 1)); // warm-up
    const t0 = performance.now();
    await executor.run(tasks);
    return (performance.now() - t0) / 1000;
  };
  const base = await time(new InProcessExecutor(config, partitions, local));
  const samples = devices * rowsPerDevice;
  lines.push(
    `| in-process (sequential) | ${base.toFixed(2)} | ${Math.round(samples / base)} | 1.00x |`,
  );
  for (const workers of workerCounts) {
    const executor = await WorkerExecutor.start(config, partitions, local, { workers });
    try {
      const s = await time(executor);
      lines.push(
        `| ${workers} worker${workers > 1 ? "s" : ""} | ${s.toFixed(2)} | ${
          Math.round(samples / s)
        } | ${(base / s).toFixed(2)}x |`,
      );
    } finally {
      await executor.close();
    }
  }
  lines.push(
    "",
    `${devices} devices x ${rowsPerDevice} rows, ${features} features, batch 64, default model; ` +
      `${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
  );
  return lines.join("\n");
}

/** The LSTM kernel alone, 1 thread against 2, interleaved in one process so that both see the same
 * load (`--kernel-threads[=batch]`): medians of wall and CPU ms per differentiable forward +
 * backward, and per forward-only pass, default edge sizes (22 steps, 32 inputs, 64 units, 2
 * directions). */
export async function benchKernelThreads(batch = 256, alternations = 30): Promise<string> {
  const { LstmKernel } = await import("../ml/kernels/lstm_kernel.ts");
  const { prng } = await import("../ml/model/random.ts");
  const s = { batch, steps: 22, inputs: 32, units: 64, directions: 2 };
  const random = prng(1);
  const make = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => (random() - 0.5) * scale);
  const G = 4 * s.units;
  const x = make(batch * s.steps * s.inputs, 1);
  const W = make(2 * s.inputs * G, 0.3);
  const U = make(2 * s.units * G, 0.3);
  const b = make(2 * G, 0.3);
  const dy = make(batch * 2 * s.units, 1 / batch);
  const kernels = [new LstmKernel({ threads: 1 }), new LstmKernel({ threads: 2 })];
  const threads = kernels.map((k) => k.waitForThreads());
  const loadBefore = os.loadavg();
  const times = kernels.map(() => ({
    train: [] as number[],
    cpu: [] as number[],
    infer: [] as number[],
  }));
  for (let rep = 0; rep < alternations; rep++) {
    kernels.forEach((kernel, k) => {
      const c0 = process.cpuUsage();
      let t0 = performance.now();
      kernel.backward(kernel.forward(s, x, W, U, b, true).tape!, dy);
      times[k].train.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      times[k].cpu.push((c.user + c.system) / 1000);
      t0 = performance.now();
      kernel.forward(s, x, W, U, b, false);
      times[k].infer.push(performance.now() - t0);
    });
  }
  const loadAfter = os.loadavg();
  const lines = kernels.map((kernel, k) =>
    `threads ${threads[k]}: forward+backward ${median(times[k].train).toFixed(1)} ms (CPU ${
      median(times[k].cpu).toFixed(1)
    } ms), forward-only ${
      median(times[k].infer).toFixed(1)
    } ms; calls to the worker ${kernel.threadCalls}, taken back ${kernel.reclaimedCalls}`
  );
  kernels.forEach((k) => k.close());
  const ratio = (key: "train" | "infer") =>
    (median(times[0][key]) / median(times[1][key])).toFixed(2);
  lines.push(
    `speed-up forward+backward ${ratio("train")}x, forward-only ${
      ratio("infer")
    }x; batch ${batch}, ${alternations} alternations; load ${
      loadBefore.map((l) => l.toFixed(2)).join(" ")
    } -> ${loadAfter.map((l) => l.toFixed(2)).join(" ")}`,
  );
  return lines.join("\n");
}

if ((import.meta as { main?: boolean }).main) {
  if (process.argv.includes("--quality")) {
    const arg = (name: string) =>
      process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
    console.log(
      await benchQuality({
        ...(arg("rounds") ? { rounds: Number(arg("rounds")) } : {}),
        ...(arg("mode") ? { mode: arg("mode") as QualityBenchOptions["mode"] } : {}),
        ...(arg("save") ? { saveDir: arg("save") } : {}),
        ...(arg("epochs") ? { localEpochs: Number(arg("epochs")) } : {}),
        ...(arg("lr") ? { learningRate: Number(arg("lr")) } : {}),
        ...(arg("batch") ? { batchSize: Number(arg("batch")) } : {}),
      }),
    );
    process.exit(0);
  }
  const kernelFlag = process.argv.find((a) =>
    a === "--kernel-threads" || a.startsWith("--kernel-threads=")
  );
  if (kernelFlag) {
    const batch = kernelFlag.includes("=") ? Number(kernelFlag.split("=")[1]) : 256;
    console.log(await benchKernelThreads(batch));
    process.exit(0);
  }
  if (process.argv.includes("--parallel")) {
    console.log(await benchParallel());
    process.exit(0);
  }
  const quick = process.argv.includes("--quick");
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const result = await benchTrain({
    ...(quick ? { batches: [256], minSeconds: 0.5, runs: 1, torchThreads: [1] } : {}),
    ...(arg("runs") ? { runs: Number(arg("runs")) } : {}),
    ...(arg("min-seconds") ? { minSeconds: Number(arg("min-seconds")) } : {}),
    ...(arg("lstm-threads") ? { lstmThreads: Number(arg("lstm-threads")) } : {}),
    ...(arg("batches") ? { batches: arg("batches")!.split(",").map(Number) } : {}),
    ...(arg("torch-threads") ? { torchThreads: arg("torch-threads")!.split(",").map(Number) } : {}),
    ...(process.argv.includes("--no-torch") ? { python: "" } : {}),
  });
  console.log(result.model);
  console.log();
  console.log(result.table);
}
