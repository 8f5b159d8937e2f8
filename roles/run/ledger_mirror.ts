// Mirrors the validators' state into the run's UI: validator health, view and height from each
// validator's /v1/status, and every committed block (with its verification) from one validator's
// web API. Polls with a bound on every request; a validator that does not answer shows unhealthy.
import { logger } from "../../util/log.ts";
import type { BlockDetail, Device, ValidatorsState } from "../../web/api_schemas.ts";
import type { MemoryView } from "../../web/memory_view.ts";

const log = logger("run/ledger");
const REQUEST_TIMEOUT_MS = 3_000;
const BLOCKS_PER_POLL_MAX = 64;

interface StatusBody {
  node: { id: string };
  view: number;
  height: number;
  is_primary: boolean;
  primary: { id: string };
  last_stable_checkpoint: { height: number; block_hash: string | null };
}

export interface LedgerFigures {
  height: number;
  /** Time each height was first seen, for blocks/s. */
  firstSeenMs: Map<number, number>;
}

export class LedgerMirror {
  readonly figures: LedgerFigures = { height: 0, firstSeenMs: new Map() };
  #published = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;

  constructor(
    readonly view: MemoryView,
    readonly endpoints: readonly { id: string; url: string }[],
    readonly f: number,
    /** The UI's ledger explorer holds one chain: later trials of a run (--compare, experiments)
     * have their own chains, whose blocks are counted but not shown. */
    readonly publishBlocks = true,
  ) {}

  start(intervalMs = 1_000): void {
    this.#timer = setInterval(() => void this.poll(), intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.poll();
  }

  async poll(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const statuses = await Promise.all(
        this.endpoints.map((e) => getJson<StatusBody>(`${e.url}/v1/status`)),
      );
      const live = statuses.filter((s): s is StatusBody => s !== null);
      if (live.length === 0) return;
      const best = live.reduce((a, b) => (b.height > a.height ? b : a));
      const state: ValidatorsState = {
        view: best.view,
        height: best.height,
        f: this.f,
        primary: best.primary.id,
        checkpoint: {
          height: best.last_stable_checkpoint.height,
          digest: best.last_stable_checkpoint.block_hash ?? "0".repeat(64),
        },
        validators: this.endpoints.map((e, i) => {
          const s = statuses[i];
          return {
            id: e.id,
            healthy: s !== null,
            isPrimary: s?.is_primary ?? false,
            view: s?.view ?? 0,
            height: s?.height ?? 0,
            ...(s ? { lastSeen: new Date().toISOString() } : {}),
          };
        }),
      };
      this.view.setValidators(state);
      // run's peers are the processes it talks to: the validators (and the edge, kept as is).
      const others = this.view.status().peers.filter((p) => p.role !== "validator");
      this.view.setStatus({
        ledgerHeight: best.height,
        peers: [
          ...this.endpoints.map((e, i) => ({
            id: e.id,
            role: "validator" as const,
            address: e.url,
            connected: statuses[i] !== null,
            ...(statuses[i] ? { lastSeen: new Date().toISOString() } : {}),
          })),
          ...others,
        ],
      });
      const source = this.endpoints[statuses.indexOf(best)].url;
      const now = Date.now();
      for (let h = this.figures.height + 1; h <= best.height; h++) {
        this.figures.firstSeenMs.set(h, now);
      }
      this.figures.height = Math.max(this.figures.height, best.height);
      // Reputation, credits and quarantine are ledger state: show the validators' view of devices.
      const devices = await getJson<Device[] | { devices: Device[] }>(
        `${source}/api/v1/devices`,
      );
      const list = Array.isArray(devices) ? devices : devices?.devices ?? [];
      for (const device of list) {
        const known = this.view.device(device.id);
        try {
          this.view.upsertDevice({
            ...device,
            lastSeen: maxTime(device.lastSeen, known?.lastSeen),
          });
        } catch (error) {
          log.warn(`device ${device.id} not shown`, { error: (error as Error).message });
        }
      }
      const upTo = this.publishBlocks
        ? Math.min(best.height, this.#published + BLOCKS_PER_POLL_MAX)
        : 0;
      for (let h = this.#published + 1; h <= upTo; h++) {
        const block = await getJson<BlockDetail>(`${source}/api/v1/ledger/blocks/${h}`);
        if (!block) break;
        try {
          this.view.publishBlock(block);
          this.#published = h;
        } catch (error) {
          log.warn(`block ${h} from ${source} not shown`, { error: (error as Error).message });
          this.#published = h;
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}

async function getJson<T>(url: string): Promise<T | null> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(url, { signal: controller.signal });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return await response.json() as T;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function maxTime(a: string, b: string | undefined): string {
  return b !== undefined && b > a ? b : a;
}
