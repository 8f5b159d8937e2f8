// Simulated Byzantine validators for `run --byzantine-validators K` (K ≤ f): the shell of an
// honest replica whose outbound messages misbehave. "silent" sends nothing (omission); "forge"
// sends every protocol message with a corrupted signature, which honest peers must reject
// (counted under bad_signature) — consensus must go on with the 2f+1 honest replicas.
import type { ProtocolMessage } from "../../ledger/pbft/types.ts";
import type { Tx } from "../../ledger/chain/types.ts";
import type { Outbound } from "./transport.ts";

export const BYZANTINE_BEHAVIOURS = ["silent", "forge"] as const;
export type ByzantineBehaviour = typeof BYZANTINE_BEHAVIOURS[number];

export class ByzantineOutbound implements Outbound {
  readonly #dropped: Record<string, number> = {};

  constructor(readonly inner: Outbound, readonly behaviour: ByzantineBehaviour) {}

  get dropped(): Readonly<Record<string, number>> {
    return { ...this.inner.dropped, ...this.#dropped };
  }

  sendMessage(peer: number, message: ProtocolMessage): void {
    if (this.behaviour === "silent") {
      this.#dropped.byzantine_silent = (this.#dropped.byzantine_silent ?? 0) + 1;
      return;
    }
    this.inner.sendMessage(
      peer,
      { ...message, signature: forged(message.signature) } as ProtocolMessage,
    );
  }

  forwardTxs(peer: number, txs: readonly Tx[]): void {
    if (this.behaviour === "silent") return;
    this.inner.forwardTxs(peer, txs);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Well-formed (same length, lower-case hex) but wrong: every digit moved by one. */
function forged(signature: string): string {
  let out = "";
  for (const ch of signature) {
    const digit = parseInt(ch, 16);
    out += Number.isNaN(digit) ? ch : ((digit + 1) % 16).toString(16);
  }
  return out;
}
