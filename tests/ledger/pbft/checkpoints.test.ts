// Castro & Liskov (OSDI '99) §4.3 garbage collection: checkpoints, stable checkpoints, water
// marks, and the state transfer a lagging replica uses to catch up.
import { assert, assertEquals } from "../../assert.ts";
import type { Commit, Entries } from "../../../ledger/pbft/types.ts";
import { Cluster } from "./cluster.ts";

function commitHeights(cluster: Cluster, count: number, prefix = "c"): void {
  for (let i = 0; i < count; i++) cluster.request(`${prefix}${i}`, 1);
  cluster.deliverAll();
  cluster.flushBatches();
  cluster.deliverAll();
}

Deno.test("§4.3 a checkpoint every K heights becomes stable with 2f+1 matching messages and collects the log", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } }); // K=2, L=4
  commitHeights(cluster, 3);
  for (let i = 0; i < 4; i++) {
    const state = cluster.replicas[i].inspect();
    assertEquals(state.lastExecutedHeight, 3);
    assertEquals(state.stableHeight, 2, "checkpoint at height 2 is stable");
    assert(state.slotsInWindow <= 2, `slots at or below 2 collected, ${state.slotsInWindow} left`);
    assertEquals(cluster.snapshots[i]!.stable.proof.length, 3);
  }
});

Deno.test("§4.3 the low water mark advances, so progress continues past the first window", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } }); // window of 4 heights
  commitHeights(cluster, 11);
  for (let i = 0; i < 4; i++) {
    assertEquals(cluster.replicas[i].inspect().lastExecutedHeight, 11, `replica ${i}`);
    assertEquals(cluster.replicas[i].inspect().stableHeight, 10);
  }
});

Deno.test("§4.3 without a stable checkpoint the primary stops at the high water mark", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1, proposalPipelineDepthMax: 4 } });
  // Checkpoint messages never arrive, so the low water mark stays at 0 and the window at (0, 4].
  for (let i = 0; i < 6; i++) cluster.request(`c${i}`, 1);
  cluster.deliverAll((inFlight) => inFlight.message.kind !== "checkpoint");
  assertEquals(cluster.replicas[0].inspect().lastExecutedHeight, 4);
  assertEquals(cluster.replicas[0].inspect().stableHeight, 0);
});

Deno.test("§4.3 state transfer: a lagging replica catches up from committed entries with commit certificates", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } });
  cluster.down.add(3);
  commitHeights(cluster, 5);
  cluster.down.delete(3);
  assertEquals(cluster.replicas[3].inspect().lastExecutedHeight, 0);
  cluster.network.length = 0;
  // Its periodic status tells the others what it lacks; they answer with entries.
  cluster.fireTimer(3, "status");
  cluster.deliverAll();
  cluster.fireTimer(3, "status");
  cluster.deliverAll();
  assertEquals(cluster.replicas[3].inspect().lastExecutedHeight, 5);
  assertEquals(
    cluster.commits[3].map((commit) => commit.blockHash),
    cluster.commits[0].map((commit) => commit.blockHash),
  );
  assert(cluster.commits[3].every((commit) => commit.source === "transfer"));
});

Deno.test("§4.3 state transfer accepts an entry only with 2f+1 matching commits from distinct replicas", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } });
  cluster.down.add(3);
  commitHeights(cluster, 1);
  cluster.down.delete(3);
  const good = cluster.commits[0][0];
  const send = (entries: Entries["entries"]) =>
    cluster.deliver({
      from: 1,
      to: 3,
      message: cluster.sign(1, {
        kind: "entries",
        chainId: "test-chain",
        entries,
        replica: 1,
        signature: "",
      }),
    });
  const twoOnly = good.certificate.slice(0, 2);
  send([{ ...good, certificate: twoOnly }]);
  const repeated: Commit[] = [good.certificate[0], good.certificate[0], good.certificate[0]];
  send([{ ...good, certificate: repeated }]);
  send([{ ...good, blockHash: "f".repeat(64) }]);
  assertEquals(cluster.replicas[3].inspect().lastExecutedHeight, 0);
  const reasons = cluster.rejectionReasons(3);
  assert(reasons.some((reason) => reason.includes("2 distinct signers, needs 3")), reasons.join());
  assert(reasons.some((reason) => reason.includes("1 distinct signers, needs 3")), reasons.join());
  assert(reasons.some((reason) => reason.includes("does not match the certified entry")));
  send([good]);
  assertEquals(cluster.replicas[3].inspect().lastExecutedHeight, 1);
});

Deno.test("§4.3 state transfer: a block whose payload does not match its certified hash is refused", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } });
  cluster.down.add(3);
  commitHeights(cluster, 1);
  cluster.down.delete(3);
  const good = cluster.commits[0][0];
  const tampered = { ...good, payload: new TextEncoder().encode("not the block") };
  cluster.deliver({
    from: 1,
    to: 3,
    message: cluster.sign(1, {
      kind: "entries",
      chainId: "test-chain",
      entries: [tampered],
      replica: 1,
      signature: "",
    }),
  });
  assertEquals(cluster.replicas[3].inspect().lastExecutedHeight, 0);
  assert(cluster.rejectionReasons(3).some((reason) => reason.includes("rejected transferred")));
});

Deno.test("§4.3 a restarted replica re-announces its checkpoints so they can still become stable", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } });
  for (let i = 0; i < 2; i++) cluster.request(`c${i}`, 1);
  cluster.deliverAll((inFlight) => inFlight.message.kind !== "checkpoint");
  assertEquals(cluster.replicas[1].inspect().lastExecutedHeight, 2);
  assertEquals(cluster.replicas[1].inspect().stableHeight, 0, "checkpoint messages were lost");
  for (const i of [0, 1, 2]) cluster.restart(i);
  cluster.deliverAll();
  for (const i of [0, 1, 2, 3]) {
    assertEquals(cluster.replicas[i].inspect().stableHeight, 2, `replica ${i}`);
  }
});
