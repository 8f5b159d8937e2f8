// The in-memory NodeView: a bounded store a role publishes into (rounds, blocks, devices,
// validator state, the global model) and the API reads from. Every collection has a limit, every
// published value is checked against the API schema before it is kept (so the API never serves
// what its own document forbids), and every change is emitted to subscribers for SSE.
import * as S from "./api_schemas.ts";
import type { NodeMetrics } from "./metrics.ts";
import {
  type AdminActions,
  type BlocksQuery,
  type CertificatesQuery,
  type ModelDownload,
  type NodeEvent,
  type NodeStatus,
  type NodeView,
  type Readiness,
  type RoundsQuery,
  type Unsubscribe,
  ViewError,
} from "./node_view.ts";
import type {
  BlockDetail,
  BlockSummary,
  Certificate,
  Detection,
  Device,
  Flow,
  Mode,
  RoundDetail,
  RoundSummary,
  Transaction,
  ValidatorsState,
} from "./api_schemas.ts";
import { Ring } from "./ring.ts";
import type { Schema } from "./schema.ts";

export interface MemoryViewLimits {
  /** Rounds kept per mode. */
  rounds: number;
  /** Blocks kept (with their transactions); older blocks are dropped from the view, not the chain. */
  blocks: number;
  devices: number;
  certificates: number;
  subscribers: number;
}

export const DEFAULT_LIMITS: MemoryViewLimits = {
  rounds: 2_000,
  blocks: 2_000,
  devices: 10_000,
  certificates: 2_000,
  subscribers: 64,
};

export type Detector = (
  flows: Flow[],
) => Promise<{ modelRound: number | null; results: Detection[] }>;

export interface MemoryViewInit {
  status: NodeStatus;
  limits?: Partial<MemoryViewLimits>;
  /** When given, published rounds and blocks also update these gauges and counters. */
  metrics?: NodeMetrics;
}

export interface BlockExtras {
  /** Pre-prepare to commit, observed into the commit latency histogram. */
  commitLatencyMs?: number;
}

export class MemoryView implements NodeView {
  readonly limits: MemoryViewLimits;
  readonly #metrics?: NodeMetrics;
  #status: NodeStatus;
  #readiness: Readiness = { ready: true };
  readonly #rounds = new Map<Mode, Ring<RoundDetail>>();
  readonly #blocks: Ring<BlockDetail>;
  readonly #blockByHeight = new Map<number, BlockDetail>();
  readonly #txById = new Map<string, Transaction>();
  readonly #certificates: Ring<Certificate>;
  readonly #devices = new Map<string, Device>();
  #validators?: ValidatorsState;
  #model?: ModelDownload;
  #detector?: Detector;
  #admin?: AdminActions;
  readonly #listeners = new Set<(event: NodeEvent) => void>();
  /** Listener exceptions, counted rather than thrown: one broken subscriber must not stop a publish. */
  listenerErrors = 0;

  constructor(init: MemoryViewInit) {
    this.limits = { ...DEFAULT_LIMITS, ...init.limits };
    this.#metrics = init.metrics;
    check(S.Status.shape.peers, init.status.peers, "status.peers");
    this.#status = { ...init.status };
    for (const m of S.MODES) this.#rounds.set(m, new Ring(this.limits.rounds));
    this.#blocks = new Ring(this.limits.blocks);
    this.#certificates = new Ring(this.limits.certificates);
  }

  // ---- publishing (called by the role) ----

  setStatus(patch: Partial<NodeStatus>): void {
    const next = { ...this.#status, ...patch };
    check(S.Status.shape.peers, next.peers, "status.peers");
    this.#status = next;
    this.#emit({ type: "status", status: this.status() });
  }

  setReady(readiness: Readiness): void {
    this.#readiness = { ...readiness };
  }

  /** Adds a round or replaces the one with the same mode and number (running → finished). */
  publishRound(round: RoundDetail): void {
    check(S.RoundDetail, round, "round");
    const ring = this.#rounds.get(round.mode)!;
    const kept = structuredClone(round);
    let replaced = false;
    for (let i = ring.size - 1; i >= 0; i--) {
      if (ring.at(i)!.round === round.round) {
        ring.set(i, kept);
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      const last = ring.last();
      if (last && last.round > round.round) {
        throw new RangeError(
          `round ${round.round} (${round.mode}) published after round ${last.round}`,
        );
      }
      ring.push(kept);
    }
    if (this.#metrics && round.finishedAt) {
      this.#metrics.round.set(round.round, { mode: round.mode });
      this.#metrics.accuracy.set(round.metrics.accuracy, { mode: round.mode });
      this.#metrics.f1.set(round.metrics.f1, { mode: round.mode });
    }
    this.#emit({ type: "round", round: structuredClone(kept) });
  }

  /** Appends the next block; heights must increase. */
  publishBlock(block: BlockDetail, extras: BlockExtras = {}): void {
    check(S.BlockDetail, block, "block");
    if (block.verified !== block.verification.ok) {
      throw new RangeError(
        `block ${block.height}: verified=${block.verified} but verification.ok=${block.verification.ok}`,
      );
    }
    const last = this.#blocks.last();
    if (last && block.height <= last.height) {
      throw new RangeError(`block ${block.height} published after block ${last.height}`);
    }
    const kept = structuredClone(block);
    kept.txCount = kept.transactions.length;
    const evicted = this.#blocks.push(kept);
    if (evicted) {
      this.#blockByHeight.delete(evicted.height);
      for (const tx of evicted.transactions) this.#txById.delete(tx.id);
    }
    this.#blockByHeight.set(kept.height, kept);
    for (const tx of kept.transactions) this.#txById.set(tx.id, tx);
    if (kept.modelCertificate) this.#certificates.push(kept.modelCertificate);
    if (this.#metrics) {
      this.#metrics.ledgerHeight.set(kept.height);
      for (const tx of kept.transactions) this.#metrics.transactions.inc({ type: tx.type });
      if (extras.commitLatencyMs !== undefined) {
        this.#metrics.commitLatency.observe(extras.commitLatencyMs / 1000);
      }
    }
    this.#emit({ type: "block", block: summarize(kept) });
  }

  /** Adds or replaces a device; when full, the device seen longest ago is dropped. */
  upsertDevice(device: Device): void {
    check(S.Device, device, "device");
    if (!this.#devices.has(device.id) && this.#devices.size >= this.limits.devices) {
      let oldest: Device | undefined;
      for (const d of this.#devices.values()) {
        if (!oldest || d.lastSeen < oldest.lastSeen) oldest = d;
      }
      if (oldest) this.#devices.delete(oldest.id);
    }
    const kept = structuredClone(device);
    this.#devices.set(device.id, kept);
    this.#emit({ type: "device", device: structuredClone(kept) });
  }

  /** Changes some fields of a known device; returns false when the device is unknown. */
  patchDevice(id: string, patch: Partial<Omit<Device, "id">>): boolean {
    const current = this.#devices.get(id);
    if (!current) return false;
    this.upsertDevice({ ...current, ...patch, id });
    return true;
  }

  setValidators(state: ValidatorsState): void {
    check(S.Validators, state, "validators");
    this.#validators = structuredClone(state);
    this.#emit({ type: "validator", validators: structuredClone(state) });
  }

  setGlobalModel(model: ModelDownload): void {
    check(S.ModelInfo, model.info, "model.info");
    if (model.info.sizeBytes !== model.bytes.byteLength) {
      throw new RangeError(
        `model sizeBytes ${model.info.sizeBytes} != ${model.bytes.byteLength} bytes`,
      );
    }
    this.#model = { info: structuredClone(model.info), bytes: model.bytes };
  }

  setDetector(detector: Detector | undefined): void {
    this.#detector = detector;
  }

  /** Where admin commands go. Without it the admin routes answer 501. */
  setAdmin(actions: AdminActions | undefined): void {
    this.#admin = actions;
  }

  // ---- NodeView ----

  get admin(): AdminActions | undefined {
    return this.#admin;
  }

  status(): NodeStatus {
    const s = { ...this.#status, peers: this.#status.peers.map((p) => ({ ...p })) };
    if (s.round === undefined) {
      const latest = Math.max(-1, ...S.MODES.map((m) => this.#rounds.get(m)!.last()?.round ?? -1));
      if (latest >= 0) s.round = latest;
    }
    if (s.ledgerHeight === undefined) {
      const last = this.#blocks.last();
      if (last) s.ledgerHeight = last.height;
    }
    return s;
  }

  ready(): Readiness {
    return { ...this.#readiness };
  }

  rounds(query: RoundsQuery): RoundSummary[] {
    const modes = query.mode ? [query.mode] : S.MODES;
    const out: RoundDetail[] = [];
    for (const m of modes) {
      // Up to `limit` rounds of each mode, so a compare run's page has both curves over the same span.
      const ring = this.#rounds.get(m)!;
      let taken = 0;
      for (let i = ring.size - 1; i >= 0 && taken < query.limit; i--) {
        const r = ring.at(i)!;
        if (query.beforeRound !== undefined && r.round >= query.beforeRound) continue;
        out.push(r);
        taken++;
      }
    }
    out.sort((a, b) => b.round - a.round || S.MODES.indexOf(a.mode) - S.MODES.indexOf(b.mode));
    return out.map(({ confusion: _c, ...summary }) => structuredClone(summary));
  }

  round(round: number, mode: Mode): RoundDetail | undefined {
    const ring = this.#rounds.get(mode)!;
    for (let i = ring.size - 1; i >= 0; i--) {
      const r = ring.at(i)!;
      if (r.round === round) return structuredClone(r);
      if (r.round < round) break;
    }
    return undefined;
  }

  devices(): Device[] {
    return [...this.#devices.values()].sort((a, b) => a.id.localeCompare(b.id)).map((d) =>
      structuredClone(d)
    );
  }

  device(id: string): Device | undefined {
    const d = this.#devices.get(id);
    return d && structuredClone(d);
  }

  blocks(query: BlocksQuery): BlockSummary[] {
    const out: BlockSummary[] = [];
    for (let i = this.#blocks.size - 1; i >= 0 && out.length < query.limit; i--) {
      const b = this.#blocks.at(i)!;
      if (query.beforeHeight !== undefined && b.height >= query.beforeHeight) continue;
      out.push(summarize(b));
    }
    return out;
  }

  block(height: number): BlockDetail | undefined {
    const b = this.#blockByHeight.get(height);
    return b && structuredClone(b);
  }

  transaction(id: string): Transaction | undefined {
    const t = this.#txById.get(id);
    return t && structuredClone(t);
  }

  certificates(query: CertificatesQuery): Certificate[] {
    const out: Certificate[] = [];
    for (let i = this.#certificates.size - 1; i >= 0 && out.length < query.limit; i--) {
      const c = this.#certificates.at(i)!;
      if (query.round === undefined || c.round === query.round) out.push(structuredClone(c));
    }
    return out;
  }

  validators(): ValidatorsState | undefined {
    return this.#validators && structuredClone(this.#validators);
  }

  globalModel(): ModelDownload | undefined {
    return this.#model;
  }

  detect(flows: Flow[]): Promise<{ modelRound: number | null; results: Detection[] }> {
    if (!this.#detector) {
      return Promise.reject(new ViewError("not_available", "this node has no detector loaded"));
    }
    return this.#detector(flows);
  }

  subscribe(listener: (event: NodeEvent) => void): Unsubscribe {
    if (this.#listeners.size >= this.limits.subscribers) {
      throw new ViewError("unavailable", `subscriber limit ${this.limits.subscribers} reached`);
    }
    // Wrap so the same function may subscribe twice and each unsubscribe removes only its own.
    const entry = (e: NodeEvent) => listener(e);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  }

  get subscriberCount(): number {
    return this.#listeners.size;
  }

  #emit(event: NodeEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event);
      } catch {
        this.listenerErrors++;
      }
    }
  }
}

function summarize(b: BlockDetail): BlockSummary {
  return {
    height: b.height,
    hash: b.hash,
    prevHash: b.prevHash,
    timestamp: b.timestamp,
    proposer: b.proposer,
    view: b.view,
    txCount: b.txCount,
    verified: b.verified,
  };
}

/** Throws a RangeError naming the first problems: publishing bad data is a bug in the publisher. */
function check<T>(schema: Schema<T>, value: unknown, what: string): true {
  const r = schema.parse(value, what, false);
  if (!r.ok) {
    throw new RangeError(
      `invalid ${what}: ${r.issues.slice(0, 3).map((i) => `${i.path} ${i.message}`).join("; ")}`,
    );
  }
  return true;
}
