// Deterministic stand-in for Ed25519 in the simulator: sig = hex(sha256(secret_i ‖ content)).
// Only the simulator's shell knows the secrets, so a Byzantine replica cannot sign for another.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { canonicalJson, embeddedSignedMessages, signedContentOf } from "../pbft/signing.ts";
import type { ProtocolMessage } from "../pbft/types.ts";

export class FakeSignatureScheme {
  private readonly verified = new WeakSet<object>();

  constructor(private readonly chainId: string) {}

  private secretOf(replica: number): string {
    return `sim-secret:${this.chainId}:${replica}`;
  }

  sign(replica: number, message: ProtocolMessage): string {
    const content = canonicalJson(signedContentOf(message));
    return bytesToHex(sha256(utf8ToBytes(`${this.secretOf(replica)}|${content}`)));
  }

  /** A signed copy; remembered as verified, since the scheme itself just produced it. */
  signed<T extends ProtocolMessage>(replica: number, message: T): T {
    const copy = { ...message, signature: this.sign(replica, message) };
    if (copy.replica === replica) this.verified.add(copy);
    return copy;
  }

  /** The message's own signature (by message.replica) and every embedded one. */
  verify(message: ProtocolMessage): boolean {
    if (!this.verifyOne(message)) return false;
    return embeddedSignedMessages(message).every((inner) => this.verifyOne(inner));
  }

  private verifyOne(message: ProtocolMessage): boolean {
    if (this.verified.has(message)) return true;
    if (typeof message.signature !== "string" || !Number.isInteger(message.replica)) return false;
    const ok = message.signature === this.sign(message.replica, message);
    if (ok) this.verified.add(message);
    return ok;
  }
}
