// Progress events a child process of `run` prints on stdout, one JSON object per line. The
// parent (roles/run) reads them to draw progress and build the report; logs go to stderr.
import process from "node:process";
import type { RoundReport } from "../ml/train/loop.ts";
import type { DeviceRoundTiming } from "./device/device_node.ts";

export interface RoundLedgerOutcome {
  height: number;
  consensusMs: number;
  accepted: string[];
  rejected: { device: string; reasons: string[] }[];
}

export type ChildEvent =
  | { event: "ready"; role: string; id: string; url?: string }
  | { event: "round-start"; round: number; devices: number }
  | {
    event: "device-round";
    id: string;
    round: number;
    steps: number;
    seconds: number;
    timing?: DeviceRoundTiming;
  }
  | {
    event: "round";
    report: RoundReport;
    parameters: { device: number; edge: number };
    /** With ledger rounds: what the validators decided and how long consensus took. */
    ledger?: RoundLedgerOutcome;
    /** Where the edge's round time went (split steps, evaluation, the ledger's decision). */
    timing?: { edgeComputeSeconds: number; evaluationSeconds: number; consensusSeconds: number };
  }
  /** The edge's rounds were stopped or started by an operator (admin API). */
  | { event: "rounds"; state: "running" | "stopping" | "paused" }
  | { event: "done"; rounds: number };

export function emitEvent(event: ChildEvent): void {
  process.stdout.write(JSON.stringify(event) + "\n");
}

/** Parses one stdout line; null for anything that is not an event. */
export function parseEvent(line: string): ChildEvent | null {
  if (!line.startsWith("{")) return null;
  try {
    const value = JSON.parse(line);
    return typeof value?.event === "string" ? value as ChildEvent : null;
  } catch {
    return null;
  }
}
