// What a trial produces, in the shapes the table, report.json, report.html and the UI use.
import type { RoundReport } from "../../ml/train/loop.ts";
import type { AuditSummary } from "../../ml/privacy/audit.ts";
import type { ProtectionSettings } from "../../ml/privacy/settings.ts";
import type { RoundDetail } from "../../web/api_schemas.ts";

export type TrialMode = "splitfed" | "fedavg";

export interface RoundRow {
  mode: TrialMode;
  round: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  fpr: number;
  rocAuc: number;
  trainLoss: number;
  validationLoss: number;
  threshold: number;
  participants: number;
  seconds: number;
  confusion: [[number, number], [number, number]];
  peakRssMB: number;
  /** Ledger figures when validators certified the round. */
  blockHeight?: number;
  commitLatencyMs?: number;
  rejectedUpdates?: number;
  /** Devices whose update the validators rejected this round, with the reasons. */
  rejected?: { device: string; reasons: string[] }[];
  /** (ε, δ) spent per training row so far by the activation noise (split modes with noise). */
  epsilon?: number;
  delta?: number;
  /** Multi-process trials: where the round's time went. */
  timing?: RoundTiming;
}

/** One round's time by component. Device and edge compute are CPU-bound work on the shared
 * cores; waits overlap, so the parts do not add up to the round's wall time. */
export interface RoundTiming {
  /** Sum over devices of their own forward/backward (or full-model) compute. */
  deviceComputeSeconds: number;
  /** The slowest device's compute: the round's critical path on the device side. */
  deviceComputeSecondsMax: number;
  /** The edge's server-side split steps (forward, loss, backward), serial at the edge. */
  edgeComputeSeconds: number;
  /** Sum over devices of time waiting for split-step replies beyond the edge's compute for
   * them: HTTP on loopback, framing, and queueing behind other devices' steps. */
  networkSeconds: number;
  /** Sum over devices of certificate checks and update submission to the validators. */
  ledgerSubmitSeconds: number;
  /** The edge's round_close → certified round_result (validators score and agree). */
  consensusSeconds: number;
  /** The edge's threshold choice on validation and scoring of the test split. */
  evaluationSeconds: number;
}

/** Largest peak resident set (VmHWM) per role over the trial, MiB. */
export interface PeakMemory {
  runMB: number;
  edgeMB: number;
  deviceMB: number;
  validatorMB: number;
}

export interface LedgerSummary {
  height: number;
  blocks: number;
  seconds: number;
  blocksPerSecond: number;
  commitLatencyMsP50: number;
  commitLatencyMsP99: number;
}

export interface AttackSummary {
  kind: string;
  defence: boolean;
  malicious: string[];
  /** Devices whose update the validators rejected at least once. */
  flagged: string[];
  precision: number;
  recall: number;
}

export interface TrialResult {
  mode: TrialMode;
  /** Which trial of an experiment this is (e.g. "sign-flip-defended"). */
  label?: string;
  attack?: AttackSummary;
  rows: RoundRow[];
  ledger?: LedgerSummary;
  wallSeconds: number;
  /** The activation protection the devices applied (absent: none, or a mode without
   * activations). */
  protection?: { name: string; settings: ProtectionSettings };
  /** `--experiment privacy`: the curious edge's audit of the activations it received. */
  privacyAudit?: AuditSummary;
  /** The trained detector (`iomt-sfl detect --model DIR`). */
  modelDir?: string;
  /** Multi-process trials: peak memory per role. */
  peakMemory?: PeakMemory;
}

export function rowOf(mode: TrialMode, report: RoundReport, participants: number): RoundRow {
  const b = report.test.binary;
  return {
    mode,
    round: report.round,
    accuracy: b.accuracy,
    precision: b.precision,
    recall: b.recall,
    f1: b.f1,
    fpr: b.fpr,
    rocAuc: b.rocAuc,
    trainLoss: report.trainLoss,
    validationLoss: report.validationLoss,
    threshold: report.threshold,
    participants,
    seconds: report.seconds,
    confusion: b.confusion,
    peakRssMB: report.peakRssMB,
    ...(report.privacy ? { epsilon: report.privacy.epsilon, delta: report.privacy.delta } : {}),
  };
}

export function roundDetailOf(row: RoundRow, startedAt: Date): RoundDetail {
  const finishedAt = new Date(startedAt.getTime() + row.seconds * 1000);
  const finite = (x: number) => (Number.isFinite(x) ? Math.max(0, x) : 0);
  return {
    // Rounds are numbered from 1 for people, as in the table.
    round: row.round + 1,
    mode: row.mode,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    metrics: {
      accuracy: row.accuracy,
      f1: row.f1,
      precision: row.precision,
      recall: row.recall,
      fpr: row.fpr,
      loss: finite(row.validationLoss),
    },
    participants: row.participants,
    rejectedUpdates: row.rejectedUpdates ?? 0,
    ...(row.commitLatencyMs === undefined ? {} : { commitLatencyMs: row.commitLatencyMs }),
    ...(row.blockHeight === undefined ? {} : { blockHeight: row.blockHeight }),
    confusion: { labels: ["normal", "attack"], matrix: row.confusion },
  };
}

/** Header, rule and rows in columns: the first left-aligned, the others right-aligned. */
function alignedLines(lines: readonly string[][]): string[] {
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  const render = (l: string[]) =>
    l.map((cell, c) => (c < 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
  return [
    render(lines[0]),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...lines.slice(1).map(render),
  ];
}

/** Where each round's time went (multi-process trials), and peak memory per role. */
export function formatTiming(results: readonly TrialResult[]): string {
  const header = [
    "mode",
    "round",
    "wall s",
    "device cpu s (sum/max)",
    "edge cpu s",
    "net+queue s",
    "ledger submit s",
    "consensus s",
    "eval s",
  ];
  const lines = [header];
  for (const result of results) {
    for (const r of result.rows) {
      const t = r.timing;
      if (!t) continue;
      lines.push([
        result.label ?? r.mode,
        String(r.round + 1),
        r.seconds.toFixed(1),
        `${t.deviceComputeSeconds.toFixed(1)}/${t.deviceComputeSecondsMax.toFixed(1)}`,
        t.edgeComputeSeconds.toFixed(1),
        t.networkSeconds.toFixed(1),
        t.ledgerSubmitSeconds.toFixed(1),
        t.consensusSeconds.toFixed(1),
        t.evaluationSeconds.toFixed(1),
      ]);
    }
  }
  if (lines.length === 1) return "";
  const out = alignedLines(lines);
  for (const result of results) {
    const m = result.peakMemory;
    if (!m) continue;
    out.push(
      `${result.label ?? result.mode} peak RSS (MiB): run ${m.runMB}, edge ${m.edgeMB}, ` +
        `largest device ${m.deviceMB}, largest validator ${m.validatorMB}`,
    );
  }
  return out.join("\n");
}

/** The paper-style table: one line per round and mode. */
export function formatTable(results: readonly TrialResult[]): string {
  const header = [
    "mode",
    "round",
    "accuracy",
    "precision",
    "recall",
    "F1",
    "FPR",
    "ROC-AUC",
    "loss",
    "devices",
    "s",
  ];
  // The ε column only when some trial spent privacy budget, so the default table is unchanged.
  const withEpsilon = results.some((t) => t.rows.some((r) => r.epsilon !== undefined));
  if (withEpsilon) header.push("ε");
  const lines = [header];
  for (const result of results) {
    for (const r of result.rows) {
      const epsilon = withEpsilon ? [r.epsilon === undefined ? "-" : r.epsilon.toFixed(2)] : [];
      lines.push([
        // Trials of an experiment are told apart by their label.
        result.label ?? r.mode,
        String(r.round + 1),
        r.accuracy.toFixed(4),
        r.precision.toFixed(4),
        r.recall.toFixed(4),
        r.f1.toFixed(4),
        r.fpr.toFixed(4),
        r.rocAuc.toFixed(4),
        r.validationLoss.toFixed(4),
        String(r.participants),
        r.seconds.toFixed(1),
        ...epsilon,
      ]);
    }
  }
  const out = alignedLines(lines);
  for (const result of results) {
    if (result.ledger) {
      const l = result.ledger;
      const latency = Number.isFinite(l.commitLatencyMsP50)
        ? `, per round close→certified result p50 ${l.commitLatencyMsP50.toFixed(0)} ms, p99 ${
          l.commitLatencyMsP99.toFixed(0)
        } ms`
        : "";
      out.push(
        `${result.mode} ledger: height ${l.height}, ${l.blocks} blocks in ${
          l.seconds.toFixed(1)
        } s ` +
          `(${l.blocksPerSecond.toFixed(2)} blocks/s)${latency}`,
      );
    }
  }
  for (const result of results) {
    const p = result.protection;
    if (!p) continue;
    const last = result.rows.at(-1);
    out.push(
      `${result.label ?? result.mode} protection ${p.name}: ` +
        (last?.epsilon === undefined
          ? "no noise, so no (ε, δ) guarantee (empirical protection only)"
          : `ε = ${last.epsilon.toFixed(2)} at δ = ${last.delta} per training row after ${
            last.round + 1
          } round(s) (activations only; labels and device weights not covered)`),
    );
  }
  for (const result of results) {
    const a = result.attack;
    if (!a) continue;
    out.push(
      `${result.mode} attack ${a.kind} by ${a.malicious.length} device(s) [${
        a.malicious.join(" ")
      }], ` +
        (a.defence
          ? `flagged [${a.flagged.join(" ")}]: precision ${a.precision.toFixed(2)}, recall ${
            a.recall.toFixed(2)
          }`
          : "no defence (plain FedAvg)"),
    );
  }
  return out.join("\n");
}
