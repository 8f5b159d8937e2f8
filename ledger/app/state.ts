// Ledger state of update consensus: per-device beta reputation, credits, status. Integers only
// (it is hashed into the block header's state_root); all ratio arithmetic in BigInt.
import { canonicalHash } from "./canonical.ts";
import { MICRO } from "./limits.ts";
import type { Genesis, UpdateConsensusParams } from "./params.ts";

export type DeviceStatus = "active" | "quarantined" | "probation";

export interface DeviceState {
  readonly status: DeviceStatus;
  /** Beta reputation evidence in micro-units: decayed acceptances and weighted rejections. */
  readonly alphaMicro: number;
  readonly betaMicro: number;
  readonly credits: number;
  /** Round whose close quarantined the device; null unless quarantined. */
  readonly quarantinedAtRound: number | null;
  /** Accepted updates in a row while on probation. */
  readonly probationAccepts: number;
  readonly lastSeenRound: number | null;
  /** Blob of the device's last admitted update; resubmitting it is a replay. */
  readonly lastBlobHash: string | null;
  readonly acceptedCount: number;
  readonly rejectedCount: number;
}

export interface AppState {
  /** Canonical hash of the genesis parameters this state runs under. */
  readonly paramsHash: string;
  /** 0 before the first round closes. */
  readonly lastClosedRound: number;
  /** Global device-side model the next round trains from. */
  readonly globalModelHash: string;
  /** Keyed by device id; key order is irrelevant (canonical JSON sorts). */
  readonly devices: Readonly<Record<string, DeviceState>>;
}

export function initialState(genesis: Genesis): AppState {
  const devices: Record<string, DeviceState> = {};
  for (const id of [...genesis.devices].sort()) devices[id] = freshDevice();
  return {
    paramsHash: canonicalHash(genesis.params),
    lastClosedRound: 0,
    globalModelHash: genesis.initialModelHash,
    devices,
  };
}

export function freshDevice(): DeviceState {
  return {
    status: "active",
    alphaMicro: 0,
    betaMicro: 0,
    credits: 0,
    quarantinedAtRound: null,
    probationAccepts: 0,
    lastSeenRound: null,
    lastBlobHash: null,
    acceptedCount: 0,
    rejectedCount: 0,
  };
}

/** SHA-256 over the canonical serialization: the block header's state_root. */
export function stateRoot(state: AppState): string {
  return canonicalHash(state);
}

/** floor(a * b / c) exactly. */
export function mulDiv(a: number, b: number, c: number): number {
  if (c === 0) throw new Error("mulDiv: division by zero");
  const q = (BigInt(a) * BigInt(b)) / BigInt(c);
  const n = Number(q);
  if (!Number.isSafeInteger(n)) {
    throw new Error(`mulDiv: ${a} * ${b} / ${c} exceeds the safe-integer range`);
  }
  return n;
}

/** Beta reputation with a uniform prior: (alpha + 1) / (alpha + beta + 2), in micro-units, floored. */
export function reputationMicro(alphaMicro: number, betaMicro: number): number {
  return mulDiv(alphaMicro + MICRO, MICRO, alphaMicro + betaMicro + 2 * MICRO);
}

export type RoundOutcome = { accepted: true } | { accepted: false; reason: string };

export interface DeviceEvent {
  readonly deviceId: string;
  readonly kind: "quarantined" | "probation" | "readmitted";
  readonly reason: string;
}

/** One device's evidence update for a round it took part in: forget, then count the outcome. */
export function updateEvidence(
  device: DeviceState,
  accepted: boolean,
  params: UpdateConsensusParams,
): { alphaMicro: number; betaMicro: number } {
  const alpha = mulDiv(device.alphaMicro, params.reputationDecayMicro, MICRO);
  const beta = mulDiv(device.betaMicro, params.reputationDecayMicro, MICRO);
  return accepted
    ? { alphaMicro: alpha + MICRO, betaMicro: beta }
    : { alphaMicro: alpha, betaMicro: beta + params.rejectionWeightMicro };
}

/** Status after a round the device took part in. Quarantine only follows a rejection, so a device
 * that is recovering is never quarantined on a round it got right. */
export function nextStatus(
  device: DeviceState,
  accepted: boolean,
  reputation: number,
  round: number,
  params: UpdateConsensusParams,
): {
  status: DeviceStatus;
  quarantinedAtRound: number | null;
  probationAccepts: number;
  event: DeviceEvent["kind"] | null;
  reason: string;
} {
  if (device.status === "probation") {
    if (!accepted) {
      return {
        status: "quarantined",
        quarantinedAtRound: round,
        probationAccepts: 0,
        event: "quarantined",
        reason: "rejected_on_probation",
      };
    }
    const accepts = device.probationAccepts + 1;
    if (accepts >= params.probationAcceptsRequired) {
      return {
        status: "active",
        quarantinedAtRound: null,
        probationAccepts: 0,
        event: "readmitted",
        reason: "probation_passed",
      };
    }
    return {
      status: "probation",
      quarantinedAtRound: null,
      probationAccepts: accepts,
      event: null,
      reason: "",
    };
  }
  if (!accepted && reputation < params.quarantineBelowMicro) {
    return {
      status: "quarantined",
      quarantinedAtRound: round,
      probationAccepts: 0,
      event: "quarantined",
      reason: "reputation_below_threshold",
    };
  }
  return {
    status: device.status,
    quarantinedAtRound: device.quarantinedAtRound,
    probationAccepts: 0,
    event: null,
    reason: "",
  };
}

export interface Contribution {
  readonly deviceId: string;
  readonly sampleCount: number;
  /** max(0, cosine to the median delta), micro-units. */
  readonly qualityMicro: number;
}

/** Splits the round's pool proportionally to samples x quality, floored, with the remainder going
 * one credit each to the largest fractional parts (ties: smaller device id), so the total paid is
 * exactly the pool whenever anyone contributed. */
export function splitRewards(
  contributions: readonly Contribution[],
  poolCredits: number,
): Map<string, number> {
  const out = new Map<string, number>();
  const weights = contributions.map((c) => BigInt(c.sampleCount) * BigInt(c.qualityMicro));
  const total = weights.reduce((a, b) => a + b, 0n);
  if (total === 0n || poolCredits === 0) {
    for (const c of contributions) out.set(c.deviceId, 0);
    return out;
  }
  const pool = BigInt(poolCredits);
  const rows = contributions.map((c, i) => ({
    id: c.deviceId,
    share: (pool * weights[i]) / total,
    rest: (pool * weights[i]) % total,
  }));
  let paid = rows.reduce((a, r) => a + r.share, 0n);
  const order = [...rows].sort((
    a,
    b,
  ) => (a.rest > b.rest ? -1 : a.rest < b.rest ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const r of order) {
    if (paid >= pool) break;
    if (r.rest === 0n) continue;
    r.share += 1n;
    paid += 1n;
  }
  for (const r of rows) out.set(r.id, Number(r.share));
  return out;
}
