// Bounded everything: every limit in ReplicaConfig is enforced with a rejection reason and leaves
// the replica unchanged. Context: Castro & Liskov (OSDI '99) §4.2 (log bounded by water marks) and
// §4.4 (view-change messages bounded by the window).
import { assert, assertEquals, assertThrows } from "../../assert.ts";
import { defaultConfig } from "../../../ledger/pbft/config.ts";
import { createReplica } from "../../../ledger/pbft/replica.ts";
import { InvariantViolation } from "../../../ledger/pbft/assert.ts";
import type { Prepare, ViewChange } from "../../../ledger/pbft/types.ts";
import { Cluster } from "./cluster.ts";

const GENESIS = "0".repeat(64);

Deno.test("limits: configuration is validated by assertion", () => {
  assertThrows(() => defaultConfig({ replicaCount: 4, self: 4 }), InvariantViolation);
  assertThrows(
    () => defaultConfig({ replicaCount: 4, self: 0, watermarkWindowHeights: 5 }),
    InvariantViolation,
    "multiple of the checkpoint interval",
  );
  assertThrows(
    () => defaultConfig({ replicaCount: 4, self: 0, batchSizeMax: 0 }),
    InvariantViolation,
  );
  assertThrows(
    () => defaultConfig({ replicaCount: 4, self: 0, viewChangeProofBytesMax: 1000 }),
    InvariantViolation,
    "full window",
  );
});

Deno.test("limits: the replica must be started before anything else", () => {
  const replica = createReplica(defaultConfig({ replicaCount: 4, self: 1 }));
  const output = replica.step({
    type: "client-request",
    request: { clientId: "a", nonce: 1, body: new Uint8Array() },
  });
  assertEquals(output.rejections.length, 1);
  assertEquals(replica.inspect().pendingRequests, 0);
});

Deno.test("limits: pending requests, request size and client id length", () => {
  const cluster = new Cluster({ config: { pendingRequestsMax: 2, requestBytesMax: 4 } });
  cluster.request("a", 1, [1]);
  cluster.request("b", 1, [1]);
  cluster.request("c", 1, [1]);
  assertEquals(cluster.replicas[1].inspect().pendingRequests, 2);
  assert(cluster.rejectionReasons(1).some((reason) => reason.includes("queue full")));
  cluster.step(2, {
    type: "client-request",
    request: { clientId: "big", nonce: 1, body: new Uint8Array(5) },
  });
  cluster.step(2, {
    type: "client-request",
    request: { clientId: "x".repeat(200), nonce: 1, body: new Uint8Array(1) },
  });
  assertEquals(cluster.rejectionReasons(2), [
    "client-request: request body too large",
    "client-request: client id too long",
  ]);
  assertEquals(cluster.replicas[2].inspect().pendingRequests, 0);
});

Deno.test("limits: future-view messages are buffered per peer up to futureMessagesPerPeerMax", () => {
  const cluster = new Cluster({ config: { futureMessagesPerPeerMax: 3 } });
  cluster.deliverAll();
  for (let view = 1; view <= 5; view++) {
    const prepare: Prepare = cluster.sign(2, {
      kind: "prepare",
      chainId: "test-chain",
      view,
      height: 1,
      blockHash: "a".repeat(64),
      replica: 2,
      signature: "",
    });
    cluster.deliver({ from: 2, to: 1, message: prepare });
  }
  assertEquals(cluster.replicas[1].inspect().futureMessagesBuffered, 3);
  assertEquals(
    cluster.rejectionReasons(1).filter((reason) => reason.includes("buffer for this peer is full"))
      .length,
    1,
  );
  const far: Prepare = cluster.sign(2, {
    kind: "prepare",
    chainId: "test-chain",
    view: 100,
    height: 1,
    blockHash: "a".repeat(64),
    replica: 2,
    signature: "",
  });
  cluster.deliver({ from: 2, to: 1, message: far });
  assert(cluster.rejectionReasons(1).some((reason) => reason.includes("view too far")));
});

Deno.test("limits: oversized payloads, foreign chains and sender mismatches are rejected", () => {
  const cluster = new Cluster({ config: { payloadBytesMax: 2048 } });
  cluster.deliverAll();
  const base = {
    kind: "pre-prepare" as const,
    chainId: "test-chain",
    view: 0,
    height: 1,
    blockHash: "b".repeat(64),
    parentBlockHash: GENESIS,
    requestIds: [],
    replica: 0,
    signature: "",
  };
  cluster.deliver({
    from: 0,
    to: 1,
    message: cluster.sign(0, { ...base, payload: new Uint8Array(2049) }),
  });
  cluster.deliver({
    from: 0,
    to: 1,
    message: cluster.sign(0, { ...base, chainId: "other", payload: new Uint8Array(1) }),
  });
  cluster.step(1, {
    type: "message",
    from: 2,
    message: cluster.sign(0, { ...base, payload: new Uint8Array(1) }),
  });
  assertEquals(cluster.rejectionReasons(1), [
    "pre-prepare: payload larger than payloadBytesMax",
    "pre-prepare: message for another chain",
    "pre-prepare: signer field differs from the authenticated sender",
  ]);
  assertEquals(cluster.replicas[1].inspect().slotsInWindow, 0, "nothing was stored");
});

Deno.test("limits: a view-change carrying more than the window of certificates is rejected", () => {
  const cluster = new Cluster();
  cluster.deliverAll();
  const certificates = [...Array(5).keys()].map((i) => ({
    prePrepare: {
      kind: "pre-prepare" as const,
      chainId: "test-chain",
      view: 0,
      height: i + 1,
      blockHash: "c".repeat(64),
      parentBlockHash: GENESIS,
      payload: new Uint8Array(1),
      requestIds: [],
      replica: 0,
      signature: "",
    },
    prepares: [],
  }));
  const viewChange: ViewChange = cluster.sign(2, {
    kind: "view-change",
    chainId: "test-chain",
    newView: 1,
    stableHeight: 0,
    stableBlockHash: GENESIS,
    checkpointProof: [],
    prepared: certificates.map((certificate) => ({
      ...certificate,
      prePrepare: cluster.sign(0, certificate.prePrepare),
    })),
    replica: 2,
    signature: "",
  });
  cluster.deliver({ from: 2, to: 1, message: viewChange });
  assert(
    cluster.rejectionReasons(1).some((reason) => reason.includes("more prepared certificates")),
  );
});
