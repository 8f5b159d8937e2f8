// In-process transport for tests and `run --in-process`: messages still go through the wire
// encoding and signature checks of the receiver, only the HTTP hop is skipped. A link can be cut
// (a crashed or partitioned replica) to exercise retransmission and state transfer.
import type { Tx } from "../../ledger/chain/types.ts";
import type { ProtocolMessage } from "../../ledger/pbft/types.ts";
import type { Outbound } from "./transport.ts";
import { encodeEnvelope } from "./wire.ts";

export interface MemoryPeer {
  receivePeer(text: string): Promise<unknown>;
  submitTxs(values: readonly unknown[], options: { forwarded?: boolean }): Promise<unknown>;
}

export class MemoryNetwork {
  readonly #peers = new Map<number, MemoryPeer>();
  readonly #down = new Set<number>();
  delivered = 0;

  constructor(readonly chainId: string) {}

  attach(index: number, peer: MemoryPeer): void {
    this.#peers.set(index, peer);
  }

  detach(index: number): void {
    this.#peers.delete(index);
  }

  /** Cut (true) or restore (false) every link to and from a replica. */
  setDown(index: number, down: boolean): void {
    if (down) this.#down.add(index);
    else this.#down.delete(index);
  }

  outbound(self: number): Outbound {
    const peers = this.#peers;
    const down = this.#down;
    const chainId = this.chainId;
    const onDelivered = () => this.delivered++;
    const dropped: Record<string, number> = {};
    let closed = false;
    const deliver = (peer: number, work: (target: MemoryPeer) => Promise<unknown>) => {
      if (closed || down.has(self) || down.has(peer)) {
        dropped.unreachable = (dropped.unreachable ?? 0) + 1;
        return;
      }
      const target = peers.get(peer);
      if (!target) return;
      setTimeout(() => {
        onDelivered();
        void work(target).catch(() => {});
      }, 0);
    };
    return {
      sendMessage(peer: number, message: ProtocolMessage) {
        const text = encodeEnvelope(chainId, [message]);
        deliver(peer, (target) => target.receivePeer(text));
      },
      forwardTxs(peer: number, txs: readonly Tx[]) {
        const copy = structuredClone(txs);
        deliver(peer, (target) => target.submitTxs(copy, { forwarded: true }));
      },
      get dropped() {
        return dropped;
      },
      close() {
        closed = true;
        return Promise.resolve();
      },
    };
  }
}
