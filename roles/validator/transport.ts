// Outbound delivery from one validator to its peers. Sending never blocks consensus: each peer
// has a bounded queue drained by one request at a time; a batch that fails is retried a bounded
// number of times and then dropped (PBFT retransmits what matters through its status messages);
// an unreachable peer gets an exponential pause so a dead replica costs almost nothing.
import type { ProtocolMessage } from "../../ledger/pbft/types.ts";
import type { Tx } from "../../ledger/chain/types.ts";
import { encodeEnvelope } from "./wire.ts";

export interface Outbound {
  /** Queue a signed protocol message for a peer (never this replica). */
  sendMessage(peer: number, message: ProtocolMessage): void;
  /** Queue client transactions for a peer (a backup forwarding to the primary). */
  forwardTxs(peer: number, txs: readonly Tx[]): void;
  /** Messages and txs dropped so far, by reason (queue_full, send_failed). */
  readonly dropped: Readonly<Record<string, number>>;
  close(): Promise<void>;
}

export interface HttpOutboundOptions {
  chainId: string;
  self: number;
  /** Base URL of each validator by index ("" or undefined for self / unknown). */
  endpoints: readonly (string | undefined)[];
  queueItemsMax?: number;
  /** Messages per POST /v1/pbft. */
  batchMessagesMax?: number;
  /** Approximate encoded bytes per request (block payloads dominate). */
  batchBytesMax?: number;
  requestTimeoutMs?: number;
  /** Attempts per batch, first included. */
  attemptsMax?: number;
  /** Requests in flight per peer: a message does not wait behind a peer busy with the one
   * before (PBFT orders by view and height, not by arrival). */
  requestsInFlightMax?: number;
  backoffMsMax?: number;
  fetch?: typeof fetch;
  log?: (line: string) => void;
}

type Item = { kind: "message"; message: ProtocolMessage; bytes: number } | {
  kind: "tx";
  tx: Tx;
  bytes: number;
};

const DEFAULTS = {
  queueItemsMax: 8192,
  batchMessagesMax: 256,
  batchBytesMax: 8 * 1024 * 1024,
  requestTimeoutMs: 3_000,
  attemptsMax: 3,
  backoffMsMax: 2_000,
  requestsInFlightMax: 2,
};

type ResolvedOptions =
  & Required<Omit<HttpOutboundOptions, "log" | "fetch">>
  & Pick<HttpOutboundOptions, "log">;

class PeerQueue {
  readonly items: Item[] = [];
  inFlight = 0;
  /** Forwarded txs go one request at a time: a sender's nonces arrive in order. */
  txsInFlight = false;
  failures = 0;
  pausedUntilMs = 0;
  timer: ReturnType<typeof setTimeout> | null = null;
  pumpScheduled = false;
}

export class HttpOutbound implements Outbound {
  readonly #options: ResolvedOptions;
  readonly #fetch: typeof fetch;
  readonly #peers: PeerQueue[];
  readonly #dropped: Record<string, number> = {};
  readonly #inFlight = new Set<AbortController>();
  #closed = false;

  constructor(options: HttpOutboundOptions) {
    this.#options = { ...DEFAULTS, ...options } as ResolvedOptions;
    this.#fetch = options.fetch ?? fetch;
    this.#peers = options.endpoints.map(() => new PeerQueue());
  }

  get dropped(): Readonly<Record<string, number>> {
    return this.#dropped;
  }

  sendMessage(peer: number, message: ProtocolMessage): void {
    // Block payloads dominate the size; the rest of a message is a few hundred bytes.
    const payload = message.kind === "pre-prepare" ? message.payload.length * 4 / 3 : 0;
    const entries = message.kind === "entries"
      ? message.entries.reduce((n, e) => n + e.payload.length * 4 / 3, 0)
      : 0;
    this.#enqueue(peer, { kind: "message", message, bytes: 512 + payload + entries });
  }

  forwardTxs(peer: number, txs: readonly Tx[]): void {
    for (const tx of txs) this.#enqueue(peer, { kind: "tx", tx, bytes: 1024 });
  }

  #drop(reason: string, count = 1): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + count;
  }

  #enqueue(peer: number, item: Item): void {
    if (this.#closed || peer === this.#options.self || !this.#options.endpoints[peer]) return;
    const queue = this.#peers[peer];
    if (queue.items.length >= this.#options.queueItemsMax) {
      // Newer protocol state supersedes older: drop the oldest.
      queue.items.shift();
      this.#drop("queue_full");
    }
    queue.items.push(item);
    // Deferred to a microtask: everything one flush sends to this peer leaves in one request.
    if (!queue.pumpScheduled) {
      queue.pumpScheduled = true;
      queueMicrotask(() => {
        queue.pumpScheduled = false;
        this.#pump(peer);
      });
    }
  }

  #pump(peer: number): void {
    const queue = this.#peers[peer];
    if (
      queue.inFlight >= this.#options.requestsInFlightMax || queue.items.length === 0 ||
      this.#closed
    ) return;
    const waitMs = queue.pausedUntilMs - Date.now();
    if (waitMs > 0) {
      if (!queue.timer) {
        queue.timer = setTimeout(() => {
          queue.timer = null;
          this.#pump(peer);
        }, waitMs);
      }
      return;
    }
    // A peer that failed gets one request at a time until it answers again.
    if (queue.failures > 0 && queue.inFlight > 0) return;
    // Take one kind at a time, keeping order within the queue.
    const kind = queue.items[0].kind;
    if (kind === "tx" && queue.txsInFlight) return;
    queue.inFlight++;
    if (kind === "tx") queue.txsInFlight = true;
    const batch: Item[] = [];
    let bytes = 0;
    while (
      queue.items.length > 0 && queue.items[0].kind === kind &&
      batch.length < this.#options.batchMessagesMax &&
      (batch.length === 0 || bytes + queue.items[0].bytes <= this.#options.batchBytesMax)
    ) {
      const item = queue.items.shift()!;
      bytes += item.bytes;
      batch.push(item);
    }
    void this.#deliver(peer, batch).then((ok) => {
      queue.inFlight--;
      if (kind === "tx") queue.txsInFlight = false;
      if (ok) {
        queue.failures = 0;
        queue.pausedUntilMs = 0;
      } else {
        this.#drop("send_failed", batch.length);
        queue.failures++;
        queue.pausedUntilMs = Date.now() +
          Math.min(this.#options.backoffMsMax, 25 * 2 ** Math.min(queue.failures, 16));
      }
      this.#pump(peer);
    });
    this.#pump(peer);
  }

  async #deliver(peer: number, batch: Item[]): Promise<boolean> {
    const base = this.#options.endpoints[peer]!;
    const isTx = batch[0].kind === "tx";
    const url = `${base}${isTx ? "/v1/tx" : "/v1/pbft"}`;
    const body = isTx
      ? JSON.stringify({ txs: batch.map((item) => (item as { tx: Tx }).tx), forwarded: true })
      : encodeEnvelope(
        this.#options.chainId,
        batch.map((item) => (item as { message: ProtocolMessage }).message),
      );
    for (let attempt = 1; attempt <= this.#options.attemptsMax && !this.#closed; attempt++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), this.#options.requestTimeoutMs);
      this.#inFlight.add(controller);
      try {
        const response = await this.#fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: controller.signal,
        });
        await response.body?.cancel().catch(() => {});
        // 4xx: the peer refused the content; sending it again will not help.
        if (response.ok || (response.status >= 400 && response.status < 500)) {
          if (!response.ok) {
            this.#options.log?.(
              `peer ${peer} refused ${batch.length} item(s): HTTP ${response.status}`,
            );
          }
          return true;
        }
      } catch {
        // connection refused, reset or timed out: retry below, then drop
      } finally {
        clearTimeout(timer);
        this.#inFlight.delete(controller);
      }
      if (attempt < this.#options.attemptsMax) {
        await sleep(Math.min(this.#options.backoffMsMax, 20 * 2 ** attempt));
      }
    }
    return false;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const queue of this.#peers) {
      if (queue.timer) clearTimeout(queue.timer);
      queue.items.length = 0;
    }
    for (const controller of this.#inFlight) controller.abort();
    await Promise.resolve();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
