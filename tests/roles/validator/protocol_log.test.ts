// The validator's incremental protocol log (roles/validator/protocol_log.ts): after every flush a
// replica persists, restoring from what was written gives back exactly the snapshot the PBFT core
// emitted — through checkpoints (log pruned below the stable height), the bounded nonce table
// (least recently active client forgotten first) and a view change (votes of the old view gone,
// prepared certificates kept).
import { assertEquals } from "../../assert.ts";
import { Cluster, type InFlight } from "../../ledger/pbft/cluster.ts";
import type { Output, ProtocolSnapshot, ReplicaEvent } from "../../../ledger/pbft/types.ts";
import type { ProtocolBatch } from "../../../ledger/store/store.ts";
import { ProtocolPersistence, restoreSnapshot } from "../../../roles/validator/protocol_log.ts";
import { wireLimits } from "../../../roles/validator/node.ts";

/** The store's protocol_state and protocol_log semantics, in memory. */
class MemoryLog {
  state = new Map<string, Uint8Array>();
  log: { id: number; seq: number; kind: string; bytes: Uint8Array }[] = [];
  #id = 0;
  apply(batch: ProtocolBatch): void {
    for (const [key, value] of Object.entries(batch.state ?? {})) this.state.set(key, value);
    for (const entry of batch.append ?? []) this.log.push({ id: ++this.#id, ...entry });
    const below = batch.pruneBelowSeq;
    if (below !== undefined) this.log = this.log.filter((entry) => entry.seq >= below);
  }
  entries() {
    return [...this.log].sort((a, b) => a.seq - b.seq || a.id - b.id);
  }
}

/** Key order aside (decoded messages list their fields in another order), the same value. */
function sorted(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(sorted);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value).sort().map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
  );
}

const json = (snapshot: ProtocolSnapshot) =>
  JSON.stringify(sorted({
    ...snapshot,
    votes: [...snapshot.votes].sort((a, b) =>
      a.height - b.height || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)
    ),
  }));

class RecordingCluster extends Cluster {
  readonly logs_ = [0, 1, 2, 3].map(() => new MemoryLog());
  readonly persistence = [0, 1, 2, 3].map(() => new ProtocolPersistence());
  checked = 0;

  // Ed25519 signatures on the wire are 128 hex digits; the fake scheme's are 64.
  override sign<T extends Parameters<Cluster["sign"]>[1]>(replica: number, message: T): T {
    const signed = super.sign(replica, message);
    return { ...signed, signature: signed.signature.repeat(2) };
  }

  override deliver({ to, message }: InFlight): void {
    this.step(to, { type: "message", from: message.replica, message });
  }

  override step(replica: number, event: ReplicaEvent): Output {
    const output = super.step(replica, event);
    const fresh = output.commits.flatMap((commit) => commit.freshRequestIds);
    if (!output.persist) {
      assertEquals(fresh.length, 0, "commits without a snapshot to persist");
      return output;
    }
    const { batch, written } = this.persistence[replica].batch(output.persist, fresh);
    this.logs_[replica].apply(batch);
    written();
    const config = this.configs[replica];
    const restored = restoreSnapshot(
      this.logs_[replica].state.get("pbft/snapshot")!,
      this.logs_[replica].entries(),
      wireLimits(config),
      config.clientsTrackedMax,
    );
    assertEquals(json(restored), json(output.persist), `replica ${replica}, step ${event.type}`);
    this.checked++;
    return output;
  }
}

function settle(cluster: RecordingCluster): void {
  for (let round = 0; round < 100; round++) {
    cluster.deliverAll(cluster.dropStatus);
    cluster.answerApplication();
    cluster.flushBatches();
    cluster.answerApplication();
    if (cluster.network.length === 0 && cluster.pendingApplication.length === 0) return;
  }
}

Deno.test("protocol log: every persisted snapshot restores exactly (checkpoints, nonce bound, view change)", () => {
  const cluster = new RecordingCluster({
    autoApplication: false,
    config: { clientsTrackedMax: 3, checkpointIntervalHeights: 2, watermarkWindowHeights: 4 },
  });
  let nonce = 0;
  for (let i = 0; i < 12; i++) {
    cluster.request(`client-${i % 5}`, ++nonce);
    if (i % 3 === 0) cluster.request(`client-${(i + 2) % 5}`, ++nonce);
    settle(cluster);
  }
  assertEquals(cluster.committedHeights(1).length > 6, true, "heights committed");
  // The primary goes silent with a request pending: the backups change view.
  cluster.down.add(0);
  cluster.request("client-9", ++nonce, [1, 2, 3]);
  settle(cluster);
  for (const replica of [1, 2, 3]) {
    if (cluster.timers[replica].has("view-change")) cluster.fireTimer(replica, "view-change");
  }
  settle(cluster);
  for (let i = 0; i < 6; i++) {
    cluster.request(`client-${i % 4}`, ++nonce, [1, 2, 3]);
    settle(cluster);
  }
  assertEquals(cluster.replicas[1].inspect().view >= 1, true, "view changed");
  assertEquals(cluster.replicas[1].inspect().stableHeight >= 4, true, "checkpoints became stable");
  assertEquals(cluster.checked > 50, true, `${cluster.checked} snapshots checked`);
});
