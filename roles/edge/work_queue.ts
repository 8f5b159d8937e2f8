// The edge hands each device its work for a round and collects the result. Devices connect out
// to the edge (clinic devices sit behind NAT): they long-poll for work, run split steps against
// the edge, and report done. Every wait is bounded and says what it waits for.
import type { LocalMode } from "../../ml/train/local.ts";
import { logger } from "../../util/log.ts";

const log = logger("edge/work");

export const LONG_POLL_MS_MAX = 30_000;
export const DEVICES_MAX = 1000;

export interface WorkItem {
  taskId: string;
  round: number;
  mode: LocalMode;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** SHA-256 of the round's global device-side weights (little-endian float32). */
  deviceModelSha256: string;
  /** SHA-256 of the round's global edge-side weights (the FedAvg baseline trains both). */
  edgeModelSha256: string;
}

export interface WorkResult {
  taskId: string;
  round: number;
  samples: number;
  steps: number;
  lossMean: number;
  device: Float32Array;
  /** FedAvg baseline only: the device's trained edge half. */
  edge?: Float32Array;
}

interface Slot {
  item: WorkItem | null;
  waiters: Array<(item: WorkItem | null) => void>;
  result: WorkResult | null;
  onResult: ((result: WorkResult) => void) | null;
}

/** Per-device mailbox of one outstanding work item. */
export class WorkQueue {
  readonly #slots = new Map<string, Slot>();

  constructor(deviceIds: readonly string[]) {
    if (deviceIds.length === 0 || deviceIds.length > DEVICES_MAX) {
      throw new Error(`edge: ${deviceIds.length} devices, limit 1..${DEVICES_MAX}`);
    }
    for (const id of deviceIds) {
      this.#slots.set(id, { item: null, waiters: [], result: null, onResult: null });
    }
  }

  has(deviceId: string): boolean {
    return this.#slots.has(deviceId);
  }

  /** Offers work to a device; resolves with its result, or null if cancelled first. */
  offer(deviceId: string, item: WorkItem): Promise<WorkResult | null> {
    const slot = this.#slot(deviceId);
    slot.item = item;
    slot.result = null;
    for (const wake of slot.waiters.splice(0)) wake(item);
    return new Promise((resolve) => {
      slot.onResult = (result) => resolve(result);
      this.#cancellers.set(item.taskId, () => resolve(null));
    });
  }

  readonly #cancellers = new Map<string, () => void>();

  /** Withdraws work that was not finished in time (the device rejoins next round). */
  cancel(deviceId: string, taskId: string): void {
    const slot = this.#slot(deviceId);
    if (slot.item?.taskId === taskId) {
      slot.item = null;
      slot.onResult = null;
    }
    this.#cancellers.get(taskId)?.();
    this.#cancellers.delete(taskId);
  }

  current(deviceId: string): WorkItem | null {
    return this.#slot(deviceId).item;
  }

  /** Long poll: the device's current work, waiting up to waitMs for some to appear. */
  next(deviceId: string, waitMs: number): Promise<WorkItem | null> {
    const slot = this.#slot(deviceId);
    if (slot.item) return Promise.resolve(slot.item);
    const bounded = Math.min(Math.max(waitMs, 0), LONG_POLL_MS_MAX);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        slot.waiters = slot.waiters.filter((w) => w !== wake);
        resolve(null);
      }, bounded);
      const wake = (item: WorkItem | null) => {
        clearTimeout(timer);
        resolve(item);
      };
      slot.waiters.push(wake);
    });
  }

  /** A device reports its finished work; false when that work is no longer expected. */
  complete(deviceId: string, result: WorkResult): boolean {
    const slot = this.#slot(deviceId);
    if (!slot.item || slot.item.taskId !== result.taskId || slot.item.round !== result.round) {
      log.warn(`late or unknown result from ${deviceId}`, {
        taskId: result.taskId,
        round: result.round,
      });
      return false;
    }
    slot.item = null;
    slot.result = result;
    const deliver = slot.onResult;
    slot.onResult = null;
    this.#cancellers.delete(result.taskId);
    deliver?.(result);
    return true;
  }

  #slot(deviceId: string): Slot {
    const slot = this.#slots.get(deviceId);
    if (!slot) throw new Error(`device ${deviceId} is not known to this edge`);
    return slot;
  }
}
