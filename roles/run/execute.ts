// Glue of `iomt-sfl run`: the web UI, one or two trials (--compare), the table and the reports.
import process from "node:process";
import { VERSION } from "../../cli/program.ts";
import { onSignal, serve } from "../../runtime/adapter.ts";
import { logger } from "../../util/log.ts";
import { createApp } from "../../web/app.ts";
import { MemoryView } from "../../web/memory_view.ts";
import { createNodeMetrics } from "../../web/metrics.ts";
import { describeData, type TrialSpec } from "../trial_spec.ts";
import { writeReports } from "./report.ts";
import { join } from "node:path";
import { planAttack } from "../attack_plan.ts";
import { formatTable, formatTiming, type TrialResult } from "./results.ts";
import {
  runInProcess,
  runMultiProcess,
  TRIAL_NICENESS_ENV,
  trialModeOf,
  trialNiceness,
} from "./run_trial.ts";
import {
  PrivacyAuditHook,
  privacyExperiment,
  privacyExperimentTable,
  protectionNote,
  protectionOfTrial,
} from "./privacy_trial.ts";
import { describeProtection } from "../../ml/privacy/settings.ts";
import { tableHtml, tableText } from "../../ml/privacy/report.ts";

const log = logger("run");
const UI_BODY_BYTES_MAX = 1024 * 1024;

export interface ExecuteRunOptions {
  trial: TrialSpec;
  compare: boolean;
  inProcess: boolean;
  outDir: string;
  listen: { hostname: string; port: number };
  logLevel: string;
  /** Keep serving the UI after the trial until SIGINT/SIGTERM. */
  keepUi: boolean;
  /** Bearer token of the UI's admin actions; a random one (printed) when absent. */
  adminToken?: string;
  /** Bearer token for the UI's read-only views; absent: public. */
  readToken?: string;
  /** Validator processes (n = 3f + 1). */
  validators: number;
  /** Loopback addresses for the validators and the edge. */
  hosts: string[];
  /** Validators that misbehave on the wire (the last k; k ≤ f). */
  byzantineValidators: number;
  /** "attacks": clean, then label-flip and sign-flip with and without the validators' defence;
   * "privacy": unprotected, clip + noise levels and NoPeek, audited by a curious edge. */
  experiment?: "attacks" | "privacy";
}

export async function executeRun(options: ExecuteRunOptions): Promise<TrialResult[]> {
  const { trial } = options;
  // A bad override is a usage error before anything is prepared or written.
  if (!options.inProcess) trialNiceness(process.env[TRIAL_NICENESS_ENV]);
  const metrics = createNodeMetrics();
  const view = new MemoryView({
    status: {
      nodeId: "run",
      role: "run",
      startedAt: new Date().toISOString(),
      peers: [],
      roundState: "running",
      mode: trialModeOf(trial),
      compare: options.compare,
    },
    metrics,
  });
  if (!options.inProcess) {
    // Validators start with the trial; until they answer, the UI shows them as not yet healthy.
    const ids = Array.from({ length: options.validators }, (_, i) => `validator-${i}`);
    view.setValidators({
      view: 0,
      height: 0,
      f: Math.floor((options.validators - 1) / 3),
      primary: ids[0],
      checkpoint: { height: 0, digest: "0".repeat(64) },
      validators: ids.map((id, i) => ({
        id,
        healthy: false,
        isPrimary: i === 0,
        view: 0,
        height: 0,
      })),
    });
  }
  const adminToken = options.adminToken ?? crypto.randomUUID().replace(/-/g, "");
  const app = createApp(view, {
    version: VERSION,
    adminToken,
    ...(options.readToken ? { readToken: options.readToken } : {}),
    metrics,
  });
  const server = await serve({
    fetch: app.fetch,
    hostname: options.listen.hostname,
    port: options.listen.port,
    maxRequestBodyBytes: UI_BODY_BYTES_MAX,
  });
  const uiUrl = `http://${options.listen.hostname}:${server.port}/`;
  process.stderr.write(`iomt-sfl run: web UI at ${uiUrl}\n`);
  if (!options.adminToken) {
    process.stderr.write(
      `iomt-sfl run: admin token ${adminToken} (enter it in the UI to stop/start rounds or ` +
        "quarantine a device)\n",
    );
  }
  log.info(
    `data: ${
      describeData(trial)
    }; ${trial.devices} devices, ${trial.rounds} rounds, mode ${trial.mode}` +
      `${options.compare ? " + FedAvg baseline" : ""}; output in ${options.outDir}`,
  );

  const trials: { label: string; spec: TrialSpec }[] = [{ label: "", spec: trial }];
  if (options.compare) {
    trials.push({
      label: "",
      spec: { ...trial, mode: trial.mode === "fedavg" ? "splitfed-v1" : "fedavg" },
    });
  }
  if (options.experiment === "attacks") trials.splice(0, trials.length, ...attackExperiment(trial));
  if (options.experiment === "privacy") {
    trials.splice(0, trials.length, ...privacyExperiment(trial));
  }
  const results: TrialResult[] = [];
  const context = {
    outDir: options.outDir,
    view,
    logLevel: options.logLevel,
    adminToken,
    deadlineMs: trial.roundTimeoutMs * trial.rounds + 10 * 60_000,
    validators: options.validators,
    hosts: options.hosts,
    byzantineValidators: options.byzantineValidators,
  };
  try {
    for (const { label, spec } of trials) {
      view.setStatus({ mode: trialModeOf(spec), roundState: "running" });
      if (label) process.stderr.write(`iomt-sfl run: experiment trial "${label}"\n`);
      const audit = options.experiment === "privacy" ? new PrivacyAuditHook(spec) : undefined;
      const trialContext = {
        ...context,
        outDir: label ? join(options.outDir, label) : options.outDir,
        privacyAudit: audit,
      };
      const result = options.inProcess
        ? await runInProcess(spec, trialContext)
        : await runMultiProcess(spec, trialContext);
      const protection = protectionOfTrial(spec);
      results.push({
        ...result,
        ...(label ? { label } : {}),
        ...(protection ? { protection } : {}),
        ...(audit ? { privacyAudit: audit.finish(describeData(spec)) } : {}),
      });
    }
    view.setStatus({ roundState: "idle" });
    const table = formatTable(results);
    process.stdout.write(`\n${table}\n\n`);
    const timing = formatTiming(results);
    if (timing) process.stdout.write(`where the time went (multi-process):\n${timing}\n\n`);
    const notes = [];
    if (timing) notes.push({ heading: "Where the time went (multi-process)", text: timing });
    if (options.experiment === "attacks") {
      const summary = formatAttackExperiment(results);
      process.stdout.write(`${summary}\n\n`);
      notes.push({ heading: "Attack experiment", text: summary });
    }
    const protectionText = protectionNote(results);
    if (protectionText) {
      notes.push({ heading: "Activation protection and privacy spent", text: protectionText });
    }
    let privacyTable = undefined;
    if (options.experiment === "privacy") {
      privacyTable = privacyExperimentTable(results, describeData(trial), trial);
      const text = tableText(privacyTable);
      process.stdout.write(`Privacy and utility\n${text}\n`);
      notes.push({ heading: "Privacy and utility", text, html: tableHtml(privacyTable) });
    }
    const files = writeReports(options.outDir, {
      title: "iomt-sfl trial",
      createdAt: new Date().toISOString(),
      version: VERSION,
      data: describeData(trial),
      settings: {
        devices: trial.devices,
        rounds: trial.rounds,
        mode: trial.mode,
        compare: options.compare,
        "in-process": options.inProcess,
        validators: options.inProcess ? 0 : options.validators,
        "byzantine validators": options.byzantineValidators,
        partition: trial.partition,
        "local epochs": trial.localEpochs,
        "batch size": trial.batchSize,
        "learning rate": trial.learningRate,
        seed: trial.seed,
        "label mode": trial.labelMode,
        protection: options.experiment === "privacy"
          ? "per trial (privacy experiment)"
          : describeProtection(trial.protection),
        "wall time (s)": results.reduce((s, r) => s + r.wallSeconds, 0).toFixed(1),
      },
      results,
      notes,
      ...(privacyTable ? { privacyUtility: privacyTable } : {}),
    });
    process.stdout.write(`reports: ${files.json}\n         ${files.html}\n`);
    for (const r of results) {
      if (r.modelDir) {
        process.stdout.write(
          `model:   ${r.modelDir}  (iomt-sfl detect --model ${r.modelDir} FILE)\n`,
        );
      }
    }
    if (options.keepUi) {
      process.stderr.write(`iomt-sfl run: finished; the web UI stays at ${uiUrl} until Ctrl-C\n`);
      await new Promise<void>((resolve) => {
        onSignal("SIGINT", resolve);
        onSignal("SIGTERM", resolve);
      });
    }
    return results;
  } finally {
    await server.close();
  }
}

/** The trials of `--experiment attacks` (issue: 30 % of devices label-flip, separately sign-flip). */
function attackExperiment(base: TrialSpec): { label: string; spec: TrialSpec }[] {
  const ids = Array.from({ length: base.devices }, (_, d) => `device-${d}`);
  const clean: TrialSpec = { ...base, attack: undefined, defence: true };
  const out: { label: string; spec: TrialSpec }[] = [{ label: "clean", spec: clean }];
  for (const kind of ["label-flip", "sign-flip"] as const) {
    const attack = planAttack(kind, 0.3, ids, base.seed);
    out.push({ label: `${kind}-defended`, spec: { ...clean, attack, defence: true } });
    out.push({ label: `${kind}-fedavg-no-defence`, spec: { ...clean, attack, defence: false } });
  }
  return out;
}

function formatAttackExperiment(results: readonly TrialResult[]): string {
  const clean = results.find((r) => r.label === "clean")?.rows.at(-1)?.f1 ?? Number.NaN;
  const lines = [
    "trial                          final F1  ΔF1 vs clean  flagged precision  flagged recall",
    "-----------------------------  --------  ------------  -----------------  --------------",
  ];
  for (const r of results) {
    const f1 = r.rows.at(-1)?.f1 ?? Number.NaN;
    const a = r.attack;
    const flag = (x: number | undefined) => (a?.defence && x !== undefined ? x.toFixed(2) : "-");
    lines.push(
      `${(r.label ?? r.mode).padEnd(29)}  ${f1.toFixed(4).padStart(8)}  ${
        (f1 - clean).toFixed(4).padStart(12)
      }  ${flag(a?.precision).padStart(17)}  ${flag(a?.recall).padStart(14)}`,
    );
  }
  return lines.join("\n");
}
