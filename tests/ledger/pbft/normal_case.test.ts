// Castro & Liskov, "Practical Byzantine Fault Tolerance" (OSDI '99) §4.2 normal-case operation.
import { assert, assertEquals } from "../../assert.ts";
import { commitCertificateReason } from "../../../ledger/pbft/certificates.ts";
import { quorumOf } from "../../../ledger/pbft/quorum.ts";
import { signedContentOf } from "../../../ledger/pbft/signing.ts";
import type { PrePrepare } from "../../../ledger/pbft/types.ts";
import { buildBlock } from "../../../ledger/sim/app.ts";
import { Cluster } from "./cluster.ts";

Deno.test("§4.2 normal case: pre-prepare, prepare, commit; every replica executes with a 2f+1 commit certificate", () => {
  const cluster = new Cluster();
  cluster.request("alice", 1);
  cluster.request("bob", 1);
  cluster.deliverAll();
  for (let i = 0; i < 4; i++) {
    assertEquals(cluster.committedHeights(i), [1], `replica ${i}`);
    const commit = cluster.commits[i][0];
    assertEquals(commit.freshRequestIds.map((id) => id.clientId), ["alice", "bob"]);
    assertEquals(commit.blockHash, cluster.commits[0][0].blockHash);
    assertEquals(commit.certificate.length, 3);
    assertEquals(
      commitCertificateReason(commit.certificate, commit, {
        chainId: "test-chain",
        quorum: quorumOf(4),
      }),
      null,
    );
    assert(commit.certificate.every((message) => cluster.signatures.verify(message)));
  }
});

Deno.test("§4.2 a commit's signed content is exactly {kind, chain_id, height, view, block_hash}", () => {
  const cluster = new Cluster();
  cluster.request("alice", 1);
  cluster.request("bob", 1);
  cluster.deliverAll();
  const commit = cluster.commits[1][0].certificate[0];
  assertEquals(Object.keys(signedContentOf(commit)).sort(), [
    "block_hash",
    "chain_id",
    "height",
    "kind",
    "view",
  ]);
});

Deno.test("§4.2 request batching: a full batch is proposed at once, a partial one on the batch timer", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 3 } });
  cluster.request("a", 1);
  cluster.request("b", 1);
  cluster.deliverAll();
  assertEquals(cluster.committedHeights(0), [], "two of three wait for the batch timer");
  cluster.flushBatches();
  cluster.deliverAll();
  assertEquals(cluster.committedHeights(0), [1]);
  assertEquals(cluster.commits[0][0].requestIds.length, 2);
  cluster.request("c", 1);
  cluster.request("d", 1);
  cluster.request("e", 1);
  cluster.deliverAll();
  assertEquals(cluster.committedHeights(2), [1, 2], "a full batch needs no timer");
});

Deno.test("§4.2 request batching: a client-requests event is one step; batches come from requests not in flight", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 2, proposalPipelineDepthMax: 1 } });
  const body = new Uint8Array([1]);
  const requests = ["a", "b", "c", "d", "e"].map((clientId) => ({ clientId, nonce: 1, body }));
  for (let replica = 0; replica < 4; replica++) {
    // A duplicate inside the event is refused like a duplicate event.
    const output = cluster.step(replica, {
      type: "client-requests",
      requests: [...requests, requests[0]],
    });
    assertEquals(output.rejections.map((r) => r.reason), ["duplicate of a pending request"]);
  }
  // The primary proposed [a, b] in that one step; c, d follow once block 1 executed, e on the timer.
  cluster.deliverAll();
  cluster.flushBatches();
  cluster.deliverAll();
  assertEquals(cluster.committedHeights(1), [1, 2, 3]);
  assertEquals(
    cluster.commits[1].map((commit) => commit.requestIds.map((id) => id.clientId)),
    [["a", "b"], ["c", "d"], ["e"]],
  );
});

Deno.test("limits: a client-requests event above pendingRequestsMax is refused whole", () => {
  const cluster = new Cluster({ config: { pendingRequestsMax: 2 } });
  const body = new Uint8Array([1]);
  const output = cluster.step(1, {
    type: "client-requests",
    requests: ["a", "b", "c"].map((clientId) => ({ clientId, nonce: 1, body })),
  });
  assertEquals(output.rejections.length, 1);
  assertEquals(cluster.replicas[1].inspect().pendingRequests, 0);
});

Deno.test("§4.2 a backup prepares only after the application validates the block; ok=false refuses", () => {
  const cluster = new Cluster({ validate: (replica) => replica !== 3 });
  cluster.request("a", 1);
  cluster.request("b", 1);
  cluster.deliverAll();
  // Everyone but 3 executed; 3 refused, so it never voted for the block.
  for (let i = 0; i < 3; i++) assertEquals(cluster.committedHeights(i), [1]);
  assertEquals(cluster.committedHeights(3), []);
  const commitSigners = cluster.commits[0][0].certificate.map((commit) => commit.replica);
  assert(!commitSigners.includes(3), "replica 3 must not vote for a block it rejected");
  assert(cluster.rejectionReasons(3).some((reason) => reason.includes("application rejected")));
});

Deno.test("§4.2 pre-prepares from a non-primary and conflicting pre-prepares are rejected", () => {
  const cluster = new Cluster();
  cluster.deliverAll();
  const block = buildBlock(1, "0".repeat(64), []);
  const forged: PrePrepare = {
    kind: "pre-prepare",
    chainId: "test-chain",
    view: 0,
    height: 1,
    blockHash: block.blockHash,
    parentBlockHash: "0".repeat(64),
    payload: block.payload,
    requestIds: [],
    replica: 2,
    signature: "",
  };
  cluster.deliver({ from: 2, to: 1, message: cluster.sign(2, forged) });
  assert(cluster.rejectionReasons(1).some((reason) => reason.includes("not the primary")));

  const first = cluster.sign(0, { ...forged, replica: 0 });
  const other = buildBlock(1, "0".repeat(64), [], "other");
  const second = cluster.sign(0, { ...first, ...other, signature: "" });
  cluster.deliver({ from: 0, to: 1, message: first });
  cluster.deliver({ from: 0, to: 1, message: second });
  assert(cluster.rejectionReasons(1).some((reason) => reason.includes("conflicting pre-prepare")));
});

Deno.test("§4.2 duplicate messages change nothing; stale views are rejected with a reason", () => {
  const cluster = new Cluster();
  cluster.request("a", 1);
  cluster.request("b", 1);
  const copies: typeof cluster.network = [];
  cluster.deliverAll((inFlight) => {
    copies.push(inFlight);
    return true;
  });
  const before = cluster.commits.map((commits) => commits.length);
  for (const inFlight of copies) cluster.deliver(inFlight);
  cluster.deliverAll();
  assertEquals(cluster.commits.map((commits) => commits.length), before, "replays execute nothing");
});

Deno.test("§4.2 duplicate client requests are executed once", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } });
  cluster.request("alice", 7);
  cluster.request("alice", 7);
  cluster.deliverAll();
  cluster.request("alice", 7);
  cluster.request("alice", 6);
  cluster.deliverAll();
  for (let i = 0; i < 4; i++) {
    assertEquals(cluster.committedHeights(i), [1]);
    assert(cluster.rejectionReasons(i).some((reason) => reason.includes("already executed")));
  }
});

Deno.test("§4.2 water marks: heights above the high mark are buffered, far-future heights rejected", () => {
  const cluster = new Cluster();
  cluster.deliverAll();
  const tooHigh = (height: number): PrePrepare => {
    const block = buildBlock(height, "0".repeat(64), []);
    return cluster.sign(0, {
      kind: "pre-prepare",
      chainId: "test-chain",
      view: 0,
      height,
      blockHash: block.blockHash,
      parentBlockHash: "0".repeat(64),
      payload: block.payload,
      requestIds: [],
      replica: 0,
      signature: "",
    });
  };
  cluster.deliver({ from: 0, to: 1, message: tooHigh(6) }); // window (0, 4]; buffer up to 8
  assertEquals(cluster.replicas[1].inspect().futureMessagesBuffered, 1);
  cluster.deliver({ from: 0, to: 1, message: tooHigh(9) });
  assert(cluster.rejectionReasons(1).some((reason) => reason.includes("too far above")));
  assertEquals(cluster.replicas[1].inspect().futureMessagesBuffered, 1);
});

Deno.test("§4.2 the pipeline: heights commit in order even when the primary runs ahead", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1, proposalPipelineDepthMax: 3 } });
  for (let i = 0; i < 3; i++) cluster.request(`c${i}`, 1);
  cluster.deliverAll();
  for (let i = 0; i < 4; i++) assertEquals(cluster.committedHeights(i), [1, 2, 3]);
  const hashes = cluster.commits[0].map((commit) => commit.blockHash);
  for (let i = 1; i < 4; i++) assertEquals(cluster.commits[i].map((c) => c.blockHash), hashes);
});

Deno.test("§4.2 a single-validator chain (n = 1, f = 0) commits on its own", () => {
  const cluster = new Cluster({ replicaCount: 1, config: { batchSizeMax: 1 } });
  for (let i = 0; i < 5; i++) cluster.request(`c${i}`, 1);
  cluster.deliverAll();
  assertEquals(cluster.committedHeights(0), [1, 2, 3, 4, 5]);
  assertEquals(cluster.commits[0][0].certificate.length, 1);
  assertEquals(cluster.replicas[0].inspect().stableHeight, 4);
});
