// `iomt-sfl run`: a whole local trial. By default every role is its own process on loopback
// (devices, edge, validators), supervised so that none outlives the run; `--in-process` runs the
// same engine in one process for speed. Results: a table, report.json and report.html.
import { UsageError } from "../../cli/usage_error.ts";
import { cpSync, createWriteStream, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { prepareDataset } from "../../ml/data/prepare.ts";
import { describeModel } from "../../ml/model/split_model.ts";
import { trainRounds } from "../../ml/train/loop.ts";
import { logger } from "../../util/log.ts";
import { quantile } from "../../util/stats.ts";
import type { MemoryView } from "../../web/memory_view.ts";
import { writeDeployment } from "../deployment.ts";
import { parseEvent } from "../events.ts";
import { startTensorflow } from "../ml_runtime.ts";
import { modelConfigFor } from "../node_config.ts";
import { saveTrialModel, serveTrialModel } from "../trial_model.ts";
import { prepareTrialData } from "../trial_data.ts";
import type { PreparedDataset } from "../../ml/data/prepare.ts";
import { RoundGate } from "../edge/round_gate.ts";
import { LedgerAdmin } from "../ledger_link/ledger_admin.ts";
import { ledgerRoundsEnabled } from "../ledger_link/wiring.ts";
import { readKeyFile } from "../../ledger/crypto/keyfile.ts";
import { inProcessAdmin, multiProcessAdmin } from "./run_admin.ts";
import { peakRssMBOfPid } from "./process_memory.ts";
import type { DeviceRoundTiming } from "../device/device_node.ts";
import type { ChildEvent } from "../events.ts";
import { peakRssBytes } from "../../runtime/adapter.ts";
import { Supervisor } from "../supervisor.ts";
import { describeData, type TrialSpec } from "../trial_spec.ts";
import { freePorts } from "./free_port.ts";
import { Progress } from "./progress.ts";
import { type PrivacyAuditHook, trainingProtection, withEpsilon } from "./privacy_trial.ts";
import { LedgerMirror } from "./ledger_mirror.ts";
import {
  type AttackSummary,
  type LedgerSummary,
  roundDetailOf,
  type RoundRow,
  type RoundTiming,
  rowOf,
  type TrialMode,
  type TrialResult,
} from "./results.ts";

const log = logger("run");

/** On one machine the edge's serial BiLSTM work is the trial's critical path; validators score
 * updates in the background and yield the CPU to it (measured in docs/benchmarks.md). */
export const TRIAL_NICENESS: Readonly<Record<TrialRole, number>> = {
  edge: 0,
  device: 0,
  validator: 10,
};
/** For measurements: e.g. "validator=0,device=5" overrides TRIAL_NICENESS per role. */
export const TRIAL_NICENESS_ENV = "IOMT_SFL_TRIAL_NICENESS";
type TrialRole = "edge" | "device" | "validator";

export function trialNiceness(override: string | undefined): Record<TrialRole, number> {
  const result = { ...TRIAL_NICENESS };
  for (const part of (override ?? "").split(",").filter((p) => p.trim() !== "")) {
    const match = /^\s*(edge|device|validator)\s*=\s*(\d{1,2})\s*$/.exec(part);
    if (!match || Number(match[2]) > 19) {
      throw new UsageError(
        `${TRIAL_NICENESS_ENV}: "${part}" is not role=0..19 (roles: edge, device, validator)`,
      );
    }
    result[match[1] as TrialRole] = Number(match[2]);
  }
  return result;
}
/** A crashed child (validator, edge, device) is started again this many times. */
const CHILD_RESTARTS_MAX = 5;
const CHILD_RESTART_DELAY_MS = 1_000;

export interface RunContext {
  outDir: string;
  view: MemoryView;
  logLevel: string;
  adminToken: string;
  /** Bound on the whole trial; a stuck trial fails with this message instead of hanging. */
  deadlineMs: number;
  /** Validator processes (n = 3f + 1). */
  validators: number;
  /** The last k validators forge signatures (even index) or stay silent (odd). */
  byzantineValidators: number;
  hosts: string[];
  /** `--experiment privacy` (in-process only): captures what the edge receives. */
  privacyAudit?: PrivacyAuditHook;
}

export function trialModeOf(spec: TrialSpec): TrialMode {
  return spec.mode === "fedavg" ? "fedavg" : "splitfed";
}

/** All roles in this process: the engine's in-process executor, no sockets. */
export async function runInProcess(spec: TrialSpec, context: RunContext): Promise<TrialResult> {
  const started = performance.now();
  await startTensorflow();
  const data = await prepareDataset({
    source: "synthetic" in spec.data ? { synthetic: spec.data.synthetic } : {
      path: spec.data.path,
      format: spec.data.format as never,
      labelColumn: spec.data.labelColumn,
    },
    labelMode: spec.labelMode,
    seed: spec.seed,
    devices: { count: spec.devices, partition: spec.partition, alpha: spec.dirichletAlpha },
  });
  const model = modelConfigFor(
    spec,
    data.train.featureNames.length,
    spec.labelMode === "binary" ? 2 : data.train.classNames.length,
  );
  const mode = trialModeOf(spec);
  log.info(`${mode}, in one process: ${describeModel(model)}`);
  context.privacyAudit?.prepared(data, model);
  const progress = new Progress(mode, spec.rounds, spec.devices);
  const rows: RoundRow[] = [];
  let roundStarted = new Date();
  progress.roundStarted(0);
  const gate = new RoundGate((state) => context.view.setStatus({ roundState: state }));
  context.view.setAdmin(inProcessAdmin(gate));
  const result = await trainRounds({
    beforeRound: (round) => gate.beforeRound(round, (r) => log.info(waitingForStart(r))),
    options: {
      mode: spec.mode,
      rounds: spec.rounds,
      localEpochs: spec.localEpochs,
      batchSize: spec.batchSize,
      learningRate: spec.learningRate,
      seed: spec.seed,
      model,
      protection: trainingProtection(spec),
    },
    partitions: data.devices,
    validation: data.validation,
    test: data.test,
    observeReleases: context.privacyAudit?.observe,
    onRound: (report, roundModel) => {
      context.privacyAudit?.roundDone(report.round, roundModel);
      const row = rowOf(mode, report, spec.devices);
      rows.push(row);
      context.view.publishRound(roundDetailOf(row, roundStarted));
      for (let d = 0; d < spec.devices; d++) publishDevice(context.view, `device-${d}`, new Date());
      progress.roundDone(report.round, summary(row));
      roundStarted = new Date();
      if (report.round + 1 < spec.rounds) progress.roundStarted(report.round + 1);
    },
  });
  progress.finish();
  context.view.setAdmin(undefined);
  const modelDir = join(context.outDir, mode, "model");
  await saveTrialModel(modelDir, {
    config: model,
    model: result.model,
    report: result.rounds.at(-1)!,
    data,
    trial: spec,
  });
  await publishModel(context.view, modelDir);
  return { mode, rows, wallSeconds: (performance.now() - started) / 1000, modelDir };
}

/** The trial's detector in the UI/API: weights download and POST /api/v1/detect. */
async function publishModel(view: MemoryView, modelDir: string): Promise<void> {
  await startTensorflow(); // the run process itself scores flows posted to its API
  const served = await serveTrialModel(modelDir);
  view.setGlobalModel(served.download);
  view.setDetector(served.detector);
}

/** Every role a separate process of this program, talking HTTP on loopback. */
export async function runMultiProcess(spec: TrialSpec, context: RunContext): Promise<TrialResult> {
  const started = performance.now();
  const mode = trialModeOf(spec);
  const dir = join(context.outDir, mode);
  const [edgePort, ...validatorPorts] = await freePorts(1 + context.validators);
  // Prepared once here instead of in each of the trial's processes (~1 CPU-second each); only
  // the encoded bytes outlive this statement (the run process does not train).
  const preparedData = await prepareTrialData(spec).then(({ data, bytes }) => {
    log.info(`data prepared: ${describePrepared(data)}`);
    return bytes;
  });
  const deployment = await writeDeployment({
    preparedData,
    outDir: join(dir, "deployment"),
    chainId: `iomt-sfl-trial-${mode}`,
    devices: spec.devices,
    edges: 1,
    validators: context.validators,
    hosts: context.hosts,
    validatorBasePort: 0,
    edgeBasePort: 0,
    validatorPorts,
    edgePorts: [edgePort],
    trial: spec,
    adminToken: context.adminToken,
  });
  const logsDir = join(dir, "logs");
  mkdirSync(logsDir, { recursive: true });
  const supervisor = new Supervisor();
  const progress = new Progress(mode, spec.rounds, spec.devices);
  const rows: RoundRow[] = [];
  let roundStarted = new Date();
  const nodePath = (id: string) => join(deployment.dir, "nodes", `${id}.json`);
  const niceness = trialNiceness(process.env[TRIAL_NICENESS_ENV]);
  const common = ["--log-level", context.logLevel];

  // Simulated Byzantine validators are the last k; behaviours alternate forge / silent.
  const byzantineArgs = (id: string): string[] => {
    const index = Number(/(\d+)$/.exec(id)?.[1] ?? -1);
    const first = context.validators - context.byzantineValidators;
    if (index < first) return [];
    return ["--byzantine", (index - first) % 2 === 0 ? "forge" : "silent"];
  };
  const spawnRole = (
    role: "edge" | "device" | "validator",
    id: string,
    onEvent: (line: string) => void,
  ) => {
    const logFile = createWriteStream(join(logsDir, `${id}.log`));
    const node = deployment.nodes.find((n) => n.id === id)!;
    const args = role === "validator"
      ? [
        "validator",
        "--genesis",
        join(deployment.dir, node.genesis),
        "--key",
        join(deployment.dir, node.key),
        "--db",
        join(deployment.dir, node.db!),
        "--listen",
        node.listen!,
        "--admin-token",
        context.adminToken,
        ...byzantineArgs(id),
        // Every validator scores loss and accuracy on the trial's validation split.
        "--evaluate-trial",
        nodePath(id),
      ]
      : [role, "--node", nodePath(id)];
    return supervisor.spawnSelfRestarting(id, [...common, ...args], {
      niceness: niceness[role],
      restartsMax: CHILD_RESTARTS_MAX,
      delayMs: CHILD_RESTART_DELAY_MS,
      onStdoutLine: onEvent,
      onStderrLine: (line) => {
        logFile.write(line + "\n");
        if (/\b(WARN|ERROR)\b/.test(line)) process.stderr.write(`[${id}] ${line}\n`);
      },
    });
  };

  let finished!: (outcome: { ok: true } | { ok: false; error: string }) => void;
  const done = new Promise<{ ok: true } | { ok: false; error: string }>((
    resolve,
  ) => (finished = resolve));
  const edgeReady = Promise.withResolvers<string>();
  // Where each round's time went: the devices' and the edge's own accounts, joined at the end.
  const deviceTimings = new Map<number, DeviceRoundTiming[]>();
  const edgeTimings = new Map<number, EdgeRoundTiming>();
  const peak = { edgeMB: 0, deviceMB: 0, validatorMB: 0 };
  let edgeUrl: string | undefined;
  const deadline = new PausableDeadline(
    context.deadlineMs,
    () => finished({ ok: false, error: `trial did not finish within ${context.deadlineMs} ms` }),
  );
  context.view.setAdmin(multiProcessAdmin(
    () => edgeUrl,
    context.adminToken,
    ledgerRoundsEnabled(deployment.genesis)
      ? new LedgerAdmin(deployment.genesis, await readKeyFile(deployment.adminKey))
      : null,
  ));
  const edge = spawnRole("edge", "edge-0", (line) => {
    const event = parseEvent(line);
    if (!event) return;
    if (event.event === "ready") {
      edgeUrl = event.url;
      edgeReady.resolve(event.url ?? "");
      const others = context.view.status().peers.filter((p) => p.id !== "edge-0");
      context.view.setStatus({
        peers: [...others, {
          id: "edge-0",
          role: "edge",
          ...(event.url ? { address: event.url } : {}),
          connected: true,
          lastSeen: new Date().toISOString(),
        }],
      });
    }
    if (event.event === "rounds") {
      context.view.setStatus({ roundState: event.state });
      // A trial an operator paused is not late: the deadline counts running time only.
      if (event.state === "paused") deadline.pause();
      if (event.state === "running") deadline.resume();
      if (event.state === "paused") log.info(waitingForStart(rows.length));
    }
    if (event.event === "round") {
      const row = withEpsilon(rowOf(mode, event.report, spec.devices), spec);
      if (event.timing) edgeTimings.set(event.report.round, event.timing);
      peak.edgeMB = Math.max(peak.edgeMB, event.report.peakRssMB);
      if (event.ledger) {
        row.blockHeight = event.ledger.height;
        row.commitLatencyMs = event.ledger.consensusMs;
        row.rejectedUpdates = event.ledger.rejected.length;
        row.participants = event.ledger.accepted.length;
        row.rejected = event.ledger.rejected;
      }
      rows.push(row);
      context.view.publishRound(roundDetailOf(row, roundStarted));
      progress.roundDone(event.report.round, summary(row));
      roundStarted = new Date();
      if (event.report.round + 1 < spec.rounds) progress.roundStarted(event.report.round + 1);
    }
    if (event.event === "done") finished({ ok: true });
  });
  void edge.exited.then((code) =>
    finished(
      code === 0
        ? { ok: true }
        : { ok: false, error: `edge exited with code ${code}; see ${join(logsDir, "edge-0.log")}` },
    )
  );

  const validators = deployment.genesis.validators.map((v) => ({ id: v.id, url: v.endpoint! }));
  const validatorChildren: ReturnType<typeof spawnRole>[] = [];
  for (const v of validators) {
    const child = spawnRole("validator", v.id, () => {});
    validatorChildren.push(child);
    void child.exited.then((code) => {
      if (code !== 0 && code !== 143 && code !== 130) {
        log.warn(`${v.id} exited with code ${code}; see ${join(logsDir, `${v.id}.log`)}`);
      }
    });
  }
  const mirror = new LedgerMirror(
    context.view,
    validators,
    Math.floor((context.validators - 1) / 3),
    context.view.blocks({ limit: 1 }).length === 0,
  );

  // Devices start with the others: loading the binary and their data overlaps the validators'
  // and the edge's start; they wait quietly for the edge (roles/device/device_node.ts).
  log.info(`starting ${spec.devices} device processes`);
  for (let d = 0; d < spec.devices; d++) {
    const id = `device-${d}`;
    publishDevice(context.view, id, undefined);
    spawnRole("device", id, (line) => {
      const event = parseEvent(line);
      if (event?.event === "device-round") {
        if (event.timing) {
          const list = deviceTimings.get(event.round) ?? [];
          list.push(event.timing);
          deviceTimings.set(event.round, list);
          peak.deviceMB = Math.max(peak.deviceMB, event.timing.peakRssMB ?? 0);
        }
        progress.deviceDone(event.id, event.round, event.steps, event.seconds);
        publishDevice(context.view, event.id, new Date());
      }
    });
  }
  deadline.resume();
  try {
    await waitForValidators(validators, 60_000);
    log.info(`${validators.length} validators up: ${validators.map((v) => v.url).join(" ")}`);
    mirror.start();
    log.info(
      `waiting for the edge to load the data and listen (log: ${join(logsDir, "edge-0.log")})`,
    );
    const url = await Promise.race([
      edgeReady.promise,
      done.then((o) => {
        throw new Error(o.ok ? "edge ended early" : o.error);
      }),
    ]);
    log.info(`edge ready at ${url}`);
    progress.roundStarted(0);
    const outcome = await done;
    if (!outcome.ok) throw new Error(outcome.error);
  } finally {
    deadline.pause();
    context.view.setAdmin(undefined);
    for (const child of validatorChildren) {
      peak.validatorMB = Math.max(peak.validatorMB, peakRssMBOfPid(child.current().pid) ?? 0);
    }
    progress.finish();
    await mirror.stop();
    await supervisor.stopAll();
    // The trial's processes are gone: the UI (with --keep-ui) must not show them as connected.
    context.view.setStatus({
      peers: context.view.status().peers.map((p) => ({ ...p, connected: false })),
    });
  }
  if (rows.length !== spec.rounds) {
    throw new Error(`trial ended after ${rows.length} of ${spec.rounds} rounds`);
  }
  // The edge saved the last round's global model as a detector artifact in its data folder.
  const edgeModelDir = join(deployment.dir, "data", "edge-0", "model");
  if (!existsSync(join(edgeModelDir, "weights.bin"))) {
    throw new Error(`the edge did not save the trained model in ${edgeModelDir}`);
  }
  const modelDir = join(dir, "model");
  cpSync(edgeModelDir, modelDir, { recursive: true });
  for (const row of rows) {
    const edgeTiming = edgeTimings.get(row.round);
    if (edgeTiming) row.timing = roundTiming(edgeTiming, deviceTimings.get(row.round) ?? []);
  }
  await publishModel(context.view, modelDir);
  const wallSeconds = (performance.now() - started) / 1000;
  return {
    mode,
    rows,
    wallSeconds,
    modelDir,
    peakMemory: { runMB: Math.round(peakRssBytes() / 2 ** 20), ...peak },
    ledger: ledgerSummary(mirror, wallSeconds, rows),
    ...(spec.attack ? { attack: attackSummary(spec, rows) } : {}),
  };
}

function describePrepared(data: PreparedDataset): string {
  return `${data.train.featureNames.length} features; rows train ${data.train.rows}, ` +
    `validation ${data.validation.rows}, test ${data.test.rows}; devices ${
      data.devices.map((d) => d.rows).join("/")
    }`;
}

function ledgerSummary(
  mirror: LedgerMirror,
  seconds: number,
  rows: readonly RoundRow[],
): LedgerSummary {
  const height = mirror.figures.height;
  const latencies = rows.flatMap((
    r,
  ) => (r.commitLatencyMs === undefined ? [] : [r.commitLatencyMs]));
  return {
    height,
    blocks: height,
    seconds,
    blocksPerSecond: height / Math.max(seconds, 1e-9),
    commitLatencyMsP50: latencies.length ? quantile(latencies, 0.5) : Number.NaN,
    commitLatencyMsP99: latencies.length ? quantile(latencies, 0.99) : Number.NaN,
  };
}

/** How well the validators flagged the simulated attackers. */
function attackSummary(spec: TrialSpec, rows: readonly RoundRow[]): AttackSummary {
  const malicious = new Set(spec.attack!.malicious);
  const flagged = new Set(rows.flatMap((r) => (r.rejected ?? []).map((x) => x.device)));
  const hits = [...flagged].filter((d) => malicious.has(d)).length;
  return {
    kind: spec.attack!.kind,
    defence: spec.defence !== false,
    malicious: [...malicious].sort(),
    flagged: [...flagged].sort(),
    precision: flagged.size ? hits / flagged.size : malicious.size === 0 ? 1 : 0,
    recall: malicious.size ? hits / malicious.size : 1,
  };
}

/** Each validator answers /v1/status, or the trial fails naming the one that does not. */
async function waitForValidators(
  validators: readonly { id: string; url: string }[],
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  for (const v of validators) {
    for (;;) {
      const ok = await fetch(`${v.url}/v1/status`, { signal: AbortSignal.timeout(2_000) })
        .then((r) => {
          void r.body?.cancel();
          return r.ok;
        })
        .catch(() => false);
      if (ok) break;
      if (Date.now() > deadline) {
        throw new Error(`validator ${v.id} at ${v.url} did not come up within ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** A device in the UI's table: active once it has reported a round. */
function publishDevice(view: MemoryView, id: string, lastSeen: Date | undefined): void {
  const known = view.device(id);
  view.upsertDevice({
    id,
    edge: "edge-0",
    status: known?.status ?? "active",
    reputation: known?.reputation ?? 1,
    rewards: known?.rewards ?? 0,
    flags: known?.flags ?? [],
    lastSeen: (lastSeen ?? new Date()).toISOString(),
    updatesAccepted: (known?.updatesAccepted ?? 0) + (lastSeen ? 1 : 0),
    updatesRejected: known?.updatesRejected ?? 0,
  });
}

type EdgeRoundTiming = NonNullable<Extract<ChildEvent, { event: "round" }>["timing"]>;

function roundTiming(edge: EdgeRoundTiming, devices: readonly DeviceRoundTiming[]): RoundTiming {
  const sum = (f: (t: DeviceRoundTiming) => number) => devices.reduce((s, t) => s + f(t), 0);
  const waited = sum((t) => t.edgeWaitSeconds);
  return {
    deviceComputeSeconds: sum((t) => t.computeSeconds),
    deviceComputeSecondsMax: Math.max(0, ...devices.map((t) => t.computeSeconds)),
    edgeComputeSeconds: edge.edgeComputeSeconds,
    networkSeconds: Math.max(0, waited - edge.edgeComputeSeconds),
    ledgerSubmitSeconds: sum((t) => t.ledgerSeconds),
    consensusSeconds: edge.consensusSeconds,
    evaluationSeconds: edge.evaluationSeconds,
  };
}

function waitingForStart(round: number): string {
  return `round ${round + 1} waits for an operator's start (web UI, or POST ` +
    "/api/v1/admin/rounds/start with the admin token)";
}

/** A bound on running time that an operator's pause suspends. */
class PausableDeadline {
  #remainingMs: number;
  #armedAt = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(totalMs: number, readonly onExpired: () => void) {
    this.#remainingMs = totalMs;
  }

  resume(): void {
    if (this.#timer !== null) return;
    this.#armedAt = performance.now();
    this.#timer = setTimeout(this.onExpired, Math.max(0, this.#remainingMs));
  }

  pause(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#remainingMs -= performance.now() - this.#armedAt;
  }
}

function summary(row: RoundRow): string {
  return `F1 ${row.f1.toFixed(4)}  accuracy ${row.accuracy.toFixed(4)}  FPR ${
    row.fpr.toFixed(4)
  }  (${row.seconds.toFixed(1)} s)`;
}

export { describeData };
