// `iomt-sfl edge`: serves devices' split steps and coordinates the rounds of a trial.
import process from "node:process";
import { describeModel, deviceLayout, edgeLayout } from "../../ml/model/split_model.ts";
import {
  completeReport,
  type GlobalModel,
  type RoundReport,
  type TrainingOptions,
  trainRounds,
} from "../../ml/train/loop.ts";
import { evaluateSplits, Predictor } from "../../ml/train/evaluate.ts";
import { RequestVerifier } from "../../net/signed_request.ts";
import { onSignal, serve } from "../../runtime/adapter.ts";
import { logger } from "../../util/log.ts";
import { emitEvent } from "../events.ts";
import { startTensorflow } from "../ml_runtime.ts";
import { loadNode, modelConfigFor } from "../node_config.ts";
import { exitWhenParentDies } from "../supervisor.ts";
import { createEdgeApp } from "./edge_app.ts";
import { loadEdgeState, saveEdgeState } from "./edge_state.ts";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex } from "../../ledger/crypto/sha256.ts";
import { EdgeNode } from "./edge_node.ts";
import { saveTrialModel } from "../trial_model.ts";
import { createApp } from "../../web/app.ts";
import { MemoryView } from "../../web/memory_view.ts";
import { createNodeMetrics } from "../../web/metrics.ts";
import { gateAdminActions, RoundGate } from "./round_gate.ts";
import { roundDetailOf, rowOf } from "../run/results.ts";
import { edgeLedgerLink } from "../ledger_link/wiring.ts";
import { loadTrialData } from "../trial_data.ts";

const log = logger("edge");
const REQUEST_BODY_BYTES_MAX = 80 * 1024 * 1024;
/** Validators started with the edge may take a while to listen (startup on shared cores). */
const VALIDATORS_WAIT_MS = 120_000;
/** A block of the background evaluation waits for a pause this long in the devices' steps... */
const EVALUATION_QUIET_MS = 15;
/** ...but not longer than this, so the report is never starved. */
const EVALUATION_WAIT_MS_MAX = 250;

interface RoundExtra {
  ledger?: {
    height: number;
    consensusMs: number;
    accepted: string[];
    rejected: { device: string; reasons: string[] }[];
  };
  edgeComputeSeconds: number;
  consensusSeconds: number;
}

export async function runEdge(
  nodePath: string,
  edgeOptions: { version: string; listen?: { hostname: string; port: number } },
): Promise<void> {
  const startedAt = new Date();
  exitWhenParentDies();
  const node = await loadNode(nodePath, "edge");
  const { config, chain, key } = node;
  const trial = config.trial;
  const tfInfo = await startTensorflow();
  log.info("tfjs ready", { backend: tfInfo.backend, simd: tfInfo.simd });

  // The edge needs only the validation and test splits (to pick the threshold and report);
  // in a trial it loads them like every device does (prepared by `run`, or derived).
  const data = await loadTrialData(config, nodePath);
  const model = modelConfigFor(
    trial,
    data.train.featureNames.length,
    trial.labelMode === "binary" ? 2 : data.train.classNames.length,
  );
  log.info(`model: ${describeModel(model)}`);

  const edgeIndex = Number(/(\d+)$/.exec(config.id)?.[1] ?? 0);
  const edgeCount =
    Object.keys((chain.genesis.params.ext?.edge_endpoints ?? {}) as Record<string, string>)
      .length || 1;
  const devices = chain.genesis.participants.filter((p) => p.role === "device");
  const mine = devices.filter((_, d) => d % edgeCount === edgeIndex);
  const deviceIdByAddress = new Map(mine.map((d) => [d.address, d.id]));
  const local = {
    epochs: trial.localEpochs,
    batchSize: trial.batchSize,
    learningRate: trial.learningRate,
    seed: trial.seed,
  };
  const edge = new EdgeNode(model, mine.map((d) => d.id), local, {
    roundTimeoutMs: trial.roundTimeoutMs,
    minDevices: Math.min(trial.minDevices, mine.length),
  });
  // With ledger rounds on (genesis ext.ledger_rounds), the validators decide which updates count.
  const ledger = edgeLedgerLink(chain.genesis, key, mine.map((d) => d.id), edgeCount);
  const verifier = new RequestVerifier(chain.chainId, (address) => {
    const key = chain.keys.get(address);
    return key ? { publicKey: key.publicKey, role: key.role } : undefined;
  });
  const app = createEdgeApp({
    node: edge,
    verifier,
    deviceIdOf: (address) => deviceIdByAddress.get(address),
  });
  // The operator's face: status, rounds and start/stop of rounds (admin token from the config),
  // the same API and UI as every node. Device traffic stays on /v1/edge/*.
  const gate = new RoundGate((state) => {
    view.setStatus({ roundState: state });
    emitEvent({ event: "rounds", state });
    log.info(`rounds ${state}`);
  });
  const metrics = createNodeMetrics();
  const view = new MemoryView({
    status: {
      nodeId: config.id,
      role: "edge",
      startedAt: startedAt.toISOString(),
      peers: [],
      roundState: "running",
      mode: trial.mode === "fedavg" ? "fedavg" : "splitfed",
    },
    metrics,
  });
  view.setAdmin(gateAdminActions(
    gate,
    "quarantine and readmit are ledger transactions signed with the admin key: use " +
      "`iomt-sfl ledger quarantine|readmit` or the UI of `iomt-sfl run`",
  ));
  const web = createApp(view, {
    version: edgeOptions.version,
    adminToken: config.admin_token,
    readToken: config.read_token,
    metrics,
  });
  const listen = edgeOptions.listen ?? parseListen(config.listen ?? "127.0.0.1:0");
  const server = await serve({
    fetch: (request) =>
      new URL(request.url).pathname.startsWith("/v1/edge/")
        ? app.fetch(request)
        : web.fetch(request),
    hostname: listen.hostname,
    port: listen.port,
    maxRequestBodyBytes: REQUEST_BODY_BYTES_MAX,
  });
  const url = `http://${listen.hostname}:${server.port}`;
  log.info(`serving ${mine.length} device(s) at ${url}`);
  emitEvent({ event: "ready", role: "edge", id: config.id, url });

  const controller = new AbortController();
  const stop = () => controller.abort(new Error("edge stopped by signal"));
  const removeInt = onSignal("SIGINT", stop), removeTerm = onSignal("SIGTERM", stop);
  const options: TrainingOptions = {
    mode: trial.mode,
    rounds: trial.rounds,
    localEpochs: trial.localEpochs,
    batchSize: trial.batchSize,
    learningRate: trial.learningRate,
    seed: trial.seed,
    model,
    // The devices' activation protection: applied on the devices; here it only makes each
    // round's report (and the "round" event) carry the ε spent so far.
    ...(trial.protection ? { protection: trial.protection } : {}),
  };
  // Consensus time of each round: round_close submitted → certified round_result fetched.
  let consensusMs = 0;
  const aggregate = ledger
    ? async (...args: Parameters<typeof ledger.aggregate>) => {
      const t0 = performance.now();
      try {
        return await ledger.aggregate(...args);
      } finally {
        consensusMs = performance.now() - t0;
      }
    }
    : undefined;
  // Resume after a restart: the rounds already done and the model they produced.
  const stateDir = node.resolve(join("data", config.id));
  const trialKey = sha256Hex(new TextEncoder().encode(JSON.stringify(trial)));
  const resume = loadEdgeState(stateDir, trialKey);
  if (resume) log.warn(`resuming after a restart: ${resume.roundsDone} round(s) already done`);
  try {
    // Per round, what the report event carries besides the report, taken when the round is
    // aggregated (the report itself follows during the next round: background evaluation).
    const roundExtra = (): RoundExtra => {
      const outcome = ledger?.outcomes.at(-1);
      return {
        ...(outcome
          ? {
            ledger: {
              height: outcome.resultHeight,
              consensusMs,
              accepted: outcome.acceptedDevices,
              rejected: outcome.record.updates.filter((u) => !u.accepted).map((u) => ({
                device: u.deviceId,
                reasons: [...u.reasons],
              })),
            },
          }
          : {}),
        edgeComputeSeconds: edge.takeComputeSeconds(),
        consensusSeconds: ledger ? consensusMs / 1000 : 0,
      };
    };
    const extras = new Map<number, RoundExtra>();
    const onRound = async (report: RoundReport, roundModel: GlobalModel) => {
      const extra = extras.get(report.round) ?? roundExtra();
      extras.delete(report.round);
      const started = new Date(Date.now() - report.seconds * 1000);
      view.publishRound(
        roundDetailOf(rowOf(view.status().mode ?? "splitfed", report, mine.length), started),
      );
      // The latest global model as a detector artifact (`iomt-sfl detect --model DIR`).
      await saveTrialModel(join(stateDir, "model"), {
        config: model,
        model: roundModel,
        report,
        data,
        trial,
      });
      log.info(
        `round ${report.round}: F1 ${report.test.binary.f1.toFixed(4)}, accuracy ${
          report.test.binary.accuracy.toFixed(4)
        }`,
      );
      emitEvent({
        event: "round",
        report,
        ...(extra.ledger ? { ledger: extra.ledger } : {}),
        parameters: {
          device: deviceLayout(model).totalLength,
          edge: edgeLayout(model).totalLength,
        },
        timing: {
          edgeComputeSeconds: extra.edgeComputeSeconds,
          evaluationSeconds: report.evaluationSeconds,
          consensusSeconds: extra.consensusSeconds,
        },
      });
      // Reported: a restart from here on resumes with the next round only.
      if (roundsAggregated === report.round + 1) {
        saveEdgeState(stateDir, trialKey, report.round + 1, roundModel);
      }
    };
    let roundsAggregated = resume?.roundsDone ?? 0;
    if (resume?.unreported) {
      // Killed after aggregating a round but before its report went out: report it now.
      const { extra, ...training } = resume.unreported;
      log.warn(`round ${training.round}: reporting it after the restart`);
      // Written by this program's afterAggregate below (the state file's hash-checked weights
      // aside, it is trusted like the rest of the edge's own data folder).
      if (extra) extras.set(training.round, extra as RoundExtra);
      const predictor = new Predictor(model, resume.model.device, resume.model.edge);
      try {
        const t0 = performance.now();
        const evaluation = evaluateSplits(predictor, data.validation, data.test);
        await onRound(
          completeReport(training, evaluation, (performance.now() - t0) / 1000),
          resume.model,
        );
      } finally {
        predictor.dispose();
      }
    }
    if (resume && resume.roundsDone >= trial.rounds) {
      emitEvent({ event: "done", rounds: resume.roundsDone });
      return;
    }
    if (ledger) await ledger.awaitValidators(VALIDATORS_WAIT_MS);
    const result = await trainRounds({
      startRound: resume?.roundsDone,
      initial: resume?.model,
      options,
      // Used for shapes only: local training runs on the devices (executor = this edge).
      partitions: data.devices.filter((_, d) => d % edgeCount === edgeIndex),
      validation: data.validation,
      test: data.test,
      executor: ledger ? ledger.executor(edge) : edge,
      aggregate,
      signal: controller.signal,
      beforeRound: async (round, reportsDone) => {
        // A paused trial has reported every round it ran.
        if (gate.holdsNextRound) await reportsDone();
        await gate.beforeRound(round, (r) =>
          log.info(
            `round ${r + 1} waits for an operator's start (POST /api/v1/admin/rounds/start)`,
          ), controller.signal);
      },
      // Saved before the evaluation: a restart must not train an aggregated round again (the
      // ledger has its result); the report is still owed and is sent on resume if need be.
      afterAggregate: (training, roundModel) => {
        const extra = roundExtra();
        extras.set(training.round, extra);
        roundsAggregated = training.round + 1;
        saveEdgeState(stateDir, trialKey, training.round + 1, roundModel, { ...training, extra });
        crashOnceIfInjected(stateDir, training.round);
      },
      // The devices' next round starts while this one is evaluated, between their steps.
      background: { pause: () => edge.idle(EVALUATION_QUIET_MS, EVALUATION_WAIT_MS_MAX) },
      onRound,
    });
    const modelDir = join(stateDir, "model");
    log.info(`trained model: ${modelDir} (score flows: iomt-sfl detect --model ${modelDir} FILE)`);
    emitEvent({ event: "done", rounds: result.rounds.length });
  } finally {
    removeInt();
    removeTerm();
    await edge.close();
    await server.close();
  }
  process.exit(0);
}

/** Fault injection for the e2e tests: `IOMT_SFL_FAULT_EDGE_CRASH_AFTER_AGGREGATE=N` makes the
 * edge exit (code 70) right after aggregating loop round N, once per state folder — the window in
 * which a round is on the ledger but its report is not out. */
export const FAULT_EDGE_CRASH_ENV = "IOMT_SFL_FAULT_EDGE_CRASH_AFTER_AGGREGATE";

function crashOnceIfInjected(stateDir: string, round: number): void {
  const wanted = process.env[FAULT_EDGE_CRASH_ENV];
  if (wanted === undefined || Number(wanted) !== round) return;
  const marker = join(stateDir, "fault-injected");
  if (existsSync(marker)) return;
  writeFileSync(marker, `${round}\n`);
  log.warn(`fault injection: exiting after aggregating round ${round} (${FAULT_EDGE_CRASH_ENV})`);
  process.exit(70);
}

function parseListen(text: string): { hostname: string; port: number } {
  const index = text.lastIndexOf(":");
  return { hostname: text.slice(0, index) || "127.0.0.1", port: Number(text.slice(index + 1)) };
}
