// A MemoryView seeded with a realistic small trial: 12 rounds of SplitFed and FedAvg, 8 devices
// (one quarantined for label flipping), 4 validators (f = 1), a block per round with model
// updates, an aggregate and reputation changes, and one block whose verification failed.
import { createNodeMetrics, type NodeMetrics } from "../../web/metrics.ts";
import { MemoryView } from "../../web/memory_view.ts";
import type {
  BlockDetail,
  Device,
  RoundDetail,
  Transaction,
  ValidatorsState,
} from "../../web/node_view.ts";

export const ADMIN_TOKEN = "admin-token-0123456789abcdef";
export const READ_TOKEN = "read-token-0123456789abcdef";
export const T0 = Date.parse("2026-11-29T09:00:00Z");
export const LABELS = ["benign", "spoofing", "data_alteration", "dos", "scan"];

const iso = (ms: number) => new Date(ms).toISOString();

/** Deterministic pseudo-random numbers (mulberry32), so screenshots and assertions are stable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function hexOf(n: number, len = 64): string {
  let out = "";
  let x = (n * 2654435761 + 0x9e3779b9) >>> 0;
  while (out.length < len) {
    x = Math.imul(x ^ (x >>> 13), 0x5bd1e995) >>> 0;
    out += x.toString(16).padStart(8, "0");
  }
  return out.slice(0, len);
}

export function makeRound(
  round: number,
  mode: "splitfed" | "fedavg",
  random = rng(round * 7 + (mode === "fedavg" ? 1 : 0)),
): RoundDetail {
  const gap = mode === "splitfed" ? 0 : 0.035;
  const accuracy = Math.min(
    0.99,
    0.62 + 0.34 * (1 - Math.exp(-round / 3.5)) - gap + (random() - 0.5) * 0.01,
  );
  const f1 = Math.max(0, accuracy - 0.03 - random() * 0.01);
  const fpr = Math.max(0.004, 0.2 * Math.exp(-round / 3) + gap / 3 + random() * 0.004);
  const loss = 1.3 * Math.exp(-round / 4) + 0.08 + gap + random() * 0.02;
  const total = 400;
  const matrix = LABELS.map((_, actual) =>
    LABELS.map((_, predicted) => {
      if (actual === predicted) return Math.round(total * accuracy);
      return Math.round((total * (1 - accuracy)) / (LABELS.length - 1) * (0.5 + random()));
    })
  );
  return {
    round,
    mode,
    startedAt: iso(T0 + round * 60_000),
    finishedAt: iso(T0 + round * 60_000 + 42_000),
    metrics: { accuracy, f1, precision: f1 + 0.01, recall: f1 - 0.005, fpr, loss },
    participants: 7,
    rejectedUpdates: round >= 4 && mode === "splitfed" ? 1 : 0,
    commitLatencyMs: 180 + random() * 120,
    blockHeight: mode === "splitfed" ? round : undefined,
    confusion: { labels: LABELS, matrix },
  };
}

export function makeDevice(i: number): Device {
  const quarantined = i === 5;
  return {
    id: `dev-${String(i).padStart(2, "0")}`,
    edge: i < 4 ? "edge-a" : "edge-b",
    status: quarantined ? "quarantined" : i === 7 ? "offline" : "active",
    reputation: quarantined ? 0.12 : Math.round((0.7 + (i % 4) * 0.07) * 1000) / 1000,
    rewards: quarantined ? 3 : 40 + i * 6,
    flags: quarantined ? ["quarantined", "label_flip_suspect"] : i === 7 ? ["stale"] : [],
    lastSeen: iso(T0 + 12 * 60_000 - i * 5_000 - (i === 7 ? 600_000 : 0)),
    updatesAccepted: quarantined ? 3 : 12,
    updatesRejected: quarantined ? 9 : 0,
  };
}

export function makeBlock(height: number, options: { failed?: boolean } = {}): BlockDetail {
  const txs: Transaction[] = [];
  for (let d = 0; d < 3; d++) {
    txs.push({
      id: hexOf(height * 100 + d, 64),
      type: "model_update",
      height,
      round: height,
      from: `dev-0${d}`,
      summary: `update from dev-0${d}, norm ${(1.2 + d * 0.1).toFixed(2)}, score 0.9${d}`,
      payload: { updateHash: hexOf(height * 1000 + d, 16), score: 0.9 + d / 100 },
    });
  }
  txs.push({
    id: hexOf(height * 100 + 50, 64),
    type: "round_close",
    height,
    round: height,
    from: "edge-a",
    summary: "close round: 7 updates accepted, 1 rejected (dev-05: cosine to median -0.41)",
  });
  txs.push({
    id: hexOf(height * 100 + 60, 64),
    type: "round_result",
    height,
    round: height,
    from: "val-0",
    summary: "trimmed-mean aggregate of 7 updates; dev-05 reputation 0.31 → 0.12",
  });
  const failed = options.failed === true;
  return {
    height,
    hash: hexOf(height + 1),
    prevHash: height === 0 ? "0".repeat(64) : hexOf(height),
    timestamp: iso(T0 + height * 60_000 + 43_000),
    proposer: `val-${height % 4}`,
    view: 0,
    txCount: txs.length,
    verified: !failed,
    verification: {
      ok: !failed,
      checks: [
        { name: "hash_chain", ok: true },
        {
          name: "signatures",
          ok: !failed,
          detail: failed ? "commit signature of val-2 does not verify" : undefined,
        },
        { name: "quorum", ok: true, detail: "3 of 4 (2f+1 = 3)" },
      ],
    },
    transactions: txs,
    commit: height > 0
      ? { view: 0, blockHash: hexOf(height + 1), signers: ["val-0", "val-1", "val-2"], quorum: 3 }
      : undefined,
    modelCertificate: height > 0
      ? {
        round: height,
        height,
        modelHash: hexOf(height * 31),
        signers: ["val-0", "val-1", "val-2"],
        quorum: 3,
        issuedAt: iso(T0 + height * 60_000 + 43_000),
      }
      : undefined,
  };
}

export function makeValidators(height: number): ValidatorsState {
  return {
    view: 0,
    height,
    f: 1,
    primary: "val-0",
    checkpoint: {
      height: Math.floor(height / 5) * 5,
      digest: hexOf(Math.floor(height / 5) * 5 + 9),
    },
    validators: [0, 1, 2, 3].map((i) => ({
      id: `val-${i}`,
      healthy: i !== 3,
      isPrimary: i === 0,
      view: 0,
      height: i === 3 ? Math.max(0, height - 4) : height,
      lastSeen: iso(T0 + height * 60_000 - (i === 3 ? 240_000 : 0)),
    })),
    rejectedMessages: { bad_signature: 4, stale_view: 2, invalid_update: 9 },
  };
}

export interface Seeded {
  view: MemoryView;
  metrics: NodeMetrics;
}

/** A `run` node after `rounds` rounds with `--compare`. */
export function seededView(
  rounds = 12,
  options: { limits?: Partial<MemoryView["limits"]> } = {},
): Seeded {
  const metrics = createNodeMetrics();
  const view = new MemoryView({
    status: {
      nodeId: "run-1",
      role: "run",
      startedAt: iso(T0),
      peers: [
        { id: "edge-a", role: "edge", connected: true },
        { id: "edge-b", role: "edge", connected: true },
        ...[0, 1, 2, 3].map((i) => ({
          id: `val-${i}`,
          role: "validator" as const,
          connected: i !== 3,
        })),
      ],
      mode: "splitfed",
      compare: true,
      roundState: "idle",
    },
    metrics,
    limits: options.limits,
  });
  for (let i = 0; i < 8; i++) view.upsertDevice(makeDevice(i));
  view.publishBlock(makeBlock(0));
  for (let r = 1; r <= rounds; r++) {
    view.publishRound(makeRound(r, "splitfed"));
    view.publishRound(makeRound(r, "fedavg"));
    view.publishBlock(makeBlock(r, { failed: r === 7 }), { commitLatencyMs: 150 + r * 10 });
  }
  view.setValidators(makeValidators(rounds));
  return { view, metrics };
}
