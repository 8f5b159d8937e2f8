// The web API's NodeView over a validator: status, ledger blocks, transactions and validator
// state, read from the store (every block re-hashed on read) and the replica. Rounds, devices and
// models are not known at the chain level yet and answer 501 (see docs/validator.md).
import { txHash } from "../../ledger/chain/tx.ts";
import type { Block, Certificate as LedgerCertificate, Tx } from "../../ledger/chain/types.ts";
import type { LedgerStore } from "../../ledger/store/store.ts";
import type {
  BlockDetail,
  BlocksQuery,
  BlockSummary,
  NodeStatus,
  NodeView,
  Transaction,
  ValidatorsState,
} from "../../web/node_view.ts";
import type { ValidatorNode } from "./node.ts";

const iso = (ms: number) => new Date(ms).toISOString();

export function validatorView(
  node: ValidatorNode,
  store: LedgerStore,
  startedAtMs: number,
): NodeView {
  const ctx = node.ctx;
  const idOf = (address: string) => ctx.keys.get(address)?.id ?? address.slice(0, 16);
  const summary = (height: number, hash: string, block: Block): BlockSummary => ({
    height,
    hash,
    prevHash: block.header.prev_hash,
    timestamp: iso(block.header.time_ms),
    proposer: idOf(block.header.proposer),
    view: block.header.view,
    txCount: block.txs.length,
    // The store re-hashed the header, every tx and the Merkle root on read; the certificate was
    // verified before the block was written.
    verified: true,
  });
  const transaction = (tx: Tx, height: number): Transaction => ({
    id: txHash(tx),
    type: tx.type === "model_update" || tx.type === "quarantine" || tx.type === "readmit"
      ? tx.type
      : "config",
    height,
    round: typeof (tx.body as { round?: unknown }).round === "number"
      ? (tx.body as { round: number }).round
      : undefined,
    from: idOf(tx.from),
    summary: `${tx.type} from ${idOf(tx.from)} nonce ${tx.nonce}`.slice(0, 500),
  });
  const commit = (cert: LedgerCertificate | null) =>
    cert
      ? {
        view: cert.view,
        blockHash: cert.block_hash,
        signers: cert.signatures.map((s) => idOf(s.validator)),
        quorum: ctx.quorum,
      }
      : undefined;

  return {
    status(): NodeStatus {
      const status = node.status();
      return {
        nodeId: status.node.id,
        role: "validator",
        startedAt: iso(startedAtMs),
        peers: status.peers.filter((p) => !p.self).map((p) => ({
          id: p.id,
          role: "validator" as const,
          address: p.endpoint ?? undefined,
          connected: p.last_seen_ms !== null && Date.now() - p.last_seen_ms < 5_000,
          lastSeen: p.last_seen_ms === null ? undefined : iso(p.last_seen_ms),
        })),
        ledgerHeight: status.height,
      };
    },
    ready() {
      const fatal = node.fatalError;
      return fatal
        ? { ready: false, reason: `validator stopped: ${fatal.message}`.slice(0, 200) }
        : { ready: true };
    },
    async blocks(query: BlocksQuery): Promise<BlockSummary[]> {
      const top = Math.min(
        node.app.committed.height,
        (query.beforeHeight ?? Number.MAX_SAFE_INTEGER) - 1,
      );
      const from = Math.max(1, top - query.limit + 1);
      const out: BlockSummary[] = [];
      if (top < 1) return out;
      for await (const c of store.readCommitted(from, top)) {
        out.push(summary(c.height, c.hash, c.block));
      }
      return out.reverse();
    },
    async block(height: number): Promise<BlockDetail | undefined> {
      if (height < 1 || height > node.app.committed.height) return undefined;
      for await (const c of store.readCommitted(height, height)) {
        return {
          ...summary(c.height, c.hash, c.block),
          verification: {
            ok: true,
            checks: [{ name: "hashes, Merkle root and certificate", ok: c.certificate !== null }],
          },
          transactions: c.block.txs.map((tx) => transaction(tx, c.height)),
          commit: commit(c.certificate),
        };
      }
      return undefined;
    },
    async transaction(id: string): Promise<Transaction | undefined> {
      const status = await node.txStatus(id);
      if (status.status !== "committed") return undefined;
      const block = await store.getBlock(status.height);
      const tx = block?.txs[status.index];
      return tx ? transaction(tx, status.height) : undefined;
    },
    validators(): ValidatorsState {
      const status = node.status();
      return {
        view: status.view,
        height: status.height,
        f: ctx.f,
        primary: status.primary.id,
        checkpoint: {
          height: status.last_stable_checkpoint.height,
          digest: status.last_stable_checkpoint.block_hash ?? "",
        },
        validators: status.peers.map((p) => ({
          id: p.id,
          healthy: p.self || (p.last_seen_ms !== null && Date.now() - p.last_seen_ms < 5_000),
          isPrimary: p.index === status.primary.index,
          view: status.view,
          height: status.height,
          lastSeen: p.last_seen_ms === null ? undefined : iso(p.last_seen_ms),
        })),
        rejectedMessages: { ...status.rejected_messages },
      };
    },
  };
}
