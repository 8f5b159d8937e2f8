// Readable views of update consensus from committed round results alone (no blobs needed): what
// `iomt-sfl ledger show` prints under each round_result and in its devices section, and what the
// web view lists per device. Pure functions of the certified records.
import type { RoundRecord } from "../../ledger/app/record.ts";
import type { RoundResultBody, Tx } from "../../ledger/chain/types.ts";
import type { Device } from "../../web/node_view.ts";
import type { DeviceSummary } from "./update_app.ts";

const micro = (v: number | null) => (v === null ? "-" : (v / 1e6).toFixed(3));

/** The record of a round_result tx, or null for any other tx or a malformed record. */
export function recordOf(tx: Tx): RoundRecord | null {
  if (tx.type !== "round_result") return null;
  const record = (tx.body as RoundResultBody).record as unknown as RoundRecord;
  return Array.isArray(record?.updates) && Array.isArray(record?.devices) ? record : null;
}

/** One line per decision: accepted/rejected updates with reasons and scores, refusals at
 * admission, the aggregation and the quarantine events. */
export function roundRecordLines(record: RoundRecord): string[] {
  const lines: string[] = [];
  const a = record.aggregation;
  lines.push(
    `round ${record.round}: ${record.updates.filter((u) => u.accepted).length} accepted, ` +
      `${record.updates.filter((u) => !u.accepted).length} rejected, ` +
      `${record.admissionRejections.length} refused at admission; aggregate ${a.rule}` +
      (a.ruleUsed && a.ruleUsed !== a.rule ? ` (used ${a.ruleUsed}: ${a.fallback})` : "") +
      (a.ruleUsed === null ? " (no accepted update: model unchanged)" : "") +
      ` over ${a.contributors.length} -> model ${a.modelHash.slice(0, 12)}…`,
  );
  for (const u of record.updates) {
    const s = u.scores;
    lines.push(
      `  ${u.accepted ? "accept" : "REJECT"} ${u.deviceId.padEnd(12)} ` +
        `norm ${micro(s.l2NormMicro)} ratio ${micro(s.normRatioMicro)} cos ${
          micro(s.cosineMicro)
        } ` +
        `loss ${micro(s.lossMicro)} acc ${micro(s.accuracyMicro)} stale ${s.staleness}` +
        (u.reasons.length ? `  reasons: ${u.reasons.join(", ")}` : ""),
    );
  }
  for (const r of record.admissionRejections) {
    lines.push(`  REFUSE ${r.deviceId.padEnd(12)} ${r.reason}  blob ${r.blobHash.slice(0, 12)}…`);
  }
  for (const e of record.events) {
    lines.push(`  event  ${e.deviceId.padEnd(12)} ${e.kind}: ${e.reason}`);
  }
  return lines;
}

/** Devices as of the last of `records` (in ledger order): reputation and status after their last
 * round, credits summed. Admin readmissions are not in records; a validator's live state has them. */
export function devicesFromRecords(
  deviceIds: readonly string[],
  records: readonly RoundRecord[],
): DeviceSummary[] {
  const out = new Map<string, DeviceSummary>(
    deviceIds.map((id) => [id, {
      id,
      status: "active",
      reputationMicro: 500_000,
      credits: 0,
      acceptedCount: 0,
      rejectedCount: 0,
      lastSeenRound: null,
    }]),
  );
  for (const record of records) {
    for (const change of record.devices) {
      const d = out.get(change.deviceId);
      if (!d) continue;
      d.status = change.status;
      d.reputationMicro = change.reputationMicro;
      d.credits += change.creditsEarned;
      if (change.accepted) d.acceptedCount++;
      else d.rejectedCount++;
      d.lastSeenRound = record.round;
    }
    for (const event of record.events) {
      const d = out.get(event.deviceId);
      if (!d) continue;
      d.status = event.kind === "readmitted" ? "active" : event.kind;
    }
  }
  return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

export function deviceTableLines(devices: readonly DeviceSummary[]): string[] {
  const lines = [
    `${"device".padEnd(14)}${"status".padEnd(13)}${"reputation".padStart(10)}${
      "credits".padStart(12)
    }${"accepted".padStart(10)}${"rejected".padStart(10)}  last round`,
  ];
  for (const d of devices) {
    lines.push(
      `${d.id.padEnd(14)}${d.status.padEnd(13)}${micro(d.reputationMicro).padStart(10)}${
        String(d.credits).padStart(12)
      }${String(d.acceptedCount).padStart(10)}${String(d.rejectedCount).padStart(10)}  ${
        d.lastSeenRound ?? "-"
      }`,
    );
  }
  return lines;
}

/** The web API's Device (web/api_schemas.ts) of a summary. */
export function webDevice(d: DeviceSummary, lastSeenIso: string): Device {
  return {
    id: d.id,
    status: d.status === "quarantined" ? "quarantined" : "active",
    reputation: d.reputationMicro / 1e6,
    // Credits are micro-points: each round pays out a pool of 1,000,000 (one point).
    rewards: d.credits / 1e6,
    flags: d.status === "probation"
      ? ["probation"]
      : d.status === "quarantined"
      ? ["quarantined"]
      : [],
    lastSeen: lastSeenIso,
    updatesAccepted: d.acceptedCount,
    updatesRejected: d.rejectedCount,
  };
}

/** Devices from every committed round_result in a store (reads the chain once, in order). */
export async function devicesFromStore(
  store: {
    height(): Promise<number>;
    readCommitted(from: number, to: number): AsyncIterable<{ block: { txs: Tx[] } }>;
  },
  deviceIds: readonly string[],
): Promise<{ devices: DeviceSummary[]; rounds: number }> {
  const records: RoundRecord[] = [];
  const height = await store.height();
  if (height > 0) {
    for await (const c of store.readCommitted(1, height)) {
      for (const tx of c.block.txs) {
        const record = recordOf(tx);
        if (record) records.push(record);
      }
    }
  }
  return { devices: devicesFromRecords(deviceIds, records), rounds: records.length };
}
