// What the shell signs and verifies. The core is signature-agnostic; these pure functions tell
// the shell which fields a signature covers and which embedded messages carry their own.
import type { ProtocolMessage } from "./types.ts";

export type SignedContent = Record<string, unknown>;

/** Field set covered by a message's signature (snake_case; the shell encodes it canonically).
 * A commit's content is exactly {kind, chain_id, height, view, block_hash}, which is what the
 * ledger stores as the block's commit certificate. Payloads are bound through block_hash. */
export function signedContentOf(message: ProtocolMessage): SignedContent {
  switch (message.kind) {
    case "pre-prepare":
      return {
        kind: message.kind,
        chain_id: message.chainId,
        height: message.height,
        view: message.view,
        block_hash: message.blockHash,
        parent_block_hash: message.parentBlockHash,
      };
    case "prepare":
    case "commit":
      return {
        kind: message.kind,
        chain_id: message.chainId,
        height: message.height,
        view: message.view,
        block_hash: message.blockHash,
      };
    case "checkpoint":
      return {
        kind: message.kind,
        chain_id: message.chainId,
        height: message.height,
        block_hash: message.blockHash,
      };
    case "view-change":
      return {
        kind: message.kind,
        chain_id: message.chainId,
        replica: message.replica,
        new_view: message.newView,
        stable_height: message.stableHeight,
        stable_block_hash: message.stableBlockHash,
        prepared: message.prepared.map((certificate) => ({
          height: certificate.prePrepare.height,
          view: certificate.prePrepare.view,
          block_hash: certificate.prePrepare.blockHash,
        })),
      };
    case "new-view":
      return {
        kind: message.kind,
        chain_id: message.chainId,
        view: message.view,
        view_change_replicas: message.viewChanges.map((viewChange) => viewChange.replica),
        reproposals: message.reproposals.map((entry) => ({
          height: entry.height,
          block_hash: entry.blockHash,
        })),
      };
    case "status":
      return {
        kind: message.kind,
        chain_id: message.chainId,
        replica: message.replica,
        view: message.view,
        view_active: message.viewActive,
        last_executed_height: message.lastExecutedHeight,
        stable_height: message.stableHeight,
      };
    case "entries":
      return {
        kind: message.kind,
        chain_id: message.chainId,
        replica: message.replica,
        entries: message.entries.map((entry) => ({
          height: entry.height,
          block_hash: entry.blockHash,
        })),
      };
  }
}

/** Messages embedded in `message` (certificates, proofs) that carry their own signatures by
 * other replicas. The shell must verify every one of them, with the key of its `replica`, before
 * stepping the outer message; one bad signature rejects the whole message. */
export function embeddedSignedMessages(message: ProtocolMessage): ProtocolMessage[] {
  switch (message.kind) {
    case "view-change":
      return [
        ...message.checkpointProof,
        ...message.prepared.flatMap((certificate) => [
          certificate.prePrepare,
          ...certificate.prepares,
        ]),
      ];
    case "new-view":
      return message.viewChanges.flatMap((viewChange) => [
        viewChange,
        ...embeddedSignedMessages(viewChange),
      ]);
    case "entries":
      return message.entries.flatMap((entry) => entry.certificate);
    default:
      return [];
  }
}

/** Canonical bytes for signing in tests and the simulator: JSON with sorted keys. The real shell
 * may use the ledger's canonical encoding instead; only the field set above is the contract. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")}}`;
}
