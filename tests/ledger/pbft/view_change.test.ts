// Castro & Liskov (OSDI '99) §4.4 view changes: view-change and new-view messages, their proofs,
// and the new primary's re-proposals. Also the crash-recovery rule that a restarted replica never
// contradicts what it sent before (its protocol log is persisted).
import { assert, assertEquals } from "../../assert.ts";
import { planNewView } from "../../../ledger/pbft/new_view.ts";
import type {
  NewView,
  Prepare,
  PreparedCertificate,
  PrePrepare,
  ViewChange,
} from "../../../ledger/pbft/types.ts";
import { buildBlock } from "../../../ledger/sim/app.ts";
import { Cluster } from "./cluster.ts";

const GENESIS = "0".repeat(64);

Deno.test("§4.4 a silent primary is replaced when the backups' view-change timers expire", () => {
  const cluster = new Cluster();
  cluster.down.add(0);
  cluster.request("a", 1, [1, 2, 3]);
  cluster.request("b", 1, [1, 2, 3]);
  cluster.deliverAll();
  for (const i of [1, 2, 3]) cluster.fireTimer(i, "view-change");
  cluster.deliverAll();
  for (const i of [1, 2, 3]) {
    const state = cluster.replicas[i].inspect();
    assertEquals([state.view, state.viewActive], [1, true], `replica ${i}`);
    assertEquals(cluster.committedHeights(i), [1]);
    assertEquals(cluster.commits[i][0].view, 1);
  }
});

Deno.test("§4.4 a request prepared in the old view is re-proposed with the same digest in the new view", () => {
  const cluster = new Cluster();
  cluster.request("a", 1);
  cluster.request("b", 1);
  cluster.deliverAll((inFlight) => inFlight.message.kind !== "commit");
  const preparedDigest = cluster.snapshots[2]!.preparedCertificates[0].prePrepare.blockHash;
  assertEquals(cluster.committedHeights(2), []);
  for (const i of [1, 2, 3]) cluster.fireTimer(i, "view-change");
  cluster.deliverAll();
  for (let i = 0; i < 4; i++) {
    assertEquals(cluster.replicas[i].inspect().view, 1, `replica ${i} (0 joins: f+1 rule)`);
    assertEquals(cluster.committedHeights(i), [1]);
    assertEquals(cluster.commits[i][0].blockHash, preparedDigest);
    assertEquals(cluster.commits[i][0].view, 1);
  }
});

Deno.test("§4.4 a new-view whose re-proposals do not follow from its view-change proofs is rejected", () => {
  const cluster = new Cluster();
  cluster.request("a", 1);
  cluster.request("b", 1);
  cluster.deliverAll((inFlight) => inFlight.message.kind !== "commit");
  const viewChanges: ViewChange[] = [];
  for (const i of [1, 2, 3]) cluster.fireTimer(i, "view-change");
  cluster.deliverAll((inFlight) => {
    if (inFlight.message.kind === "view-change" && inFlight.to === 1) {
      viewChanges.push(inFlight.message);
    }
    return inFlight.message.kind !== "view-change" && inFlight.message.kind !== "new-view";
  });
  assert(viewChanges.length >= 3);
  const lying: NewView = cluster.sign(1, {
    kind: "new-view",
    chainId: "test-chain",
    view: 1,
    viewChanges: viewChanges.slice(0, 3),
    reproposals: [], // drops the prepared block at height 1
    replica: 1,
    signature: "",
  });
  cluster.deliver({ from: 1, to: 2, message: lying });
  assert(cluster.rejectionReasons(2).some((reason) => reason.includes("do not follow")));
  assertEquals(cluster.replicas[2].inspect().viewActive, false);
});

Deno.test("§4.4 f+1 view-change messages for a later view make a replica join it", () => {
  const cluster = new Cluster();
  cluster.deliverAll();
  cluster.request("a", 1, [1, 2]);
  for (const i of [1, 2]) cluster.fireTimer(i, "view-change");
  cluster.deliverAll((inFlight) => inFlight.to === 3 && inFlight.message.kind === "view-change");
  const state = cluster.replicas[3].inspect();
  assertEquals([state.view, state.viewActive], [1, false]);
});

Deno.test("§4.4 view-change messages with an invalid prepared certificate are rejected", () => {
  const cluster = new Cluster();
  cluster.deliverAll();
  const block = buildBlock(1, GENESIS, []);
  const prePrepare: PrePrepare = cluster.sign(0, {
    kind: "pre-prepare",
    chainId: "test-chain",
    view: 0,
    height: 1,
    blockHash: block.blockHash,
    parentBlockHash: GENESIS,
    payload: block.payload,
    requestIds: [],
    replica: 0,
    signature: "",
  });
  const prepare = (replica: number): Prepare =>
    cluster.sign(replica, {
      kind: "prepare",
      chainId: "test-chain",
      view: 0,
      height: 1,
      blockHash: block.blockHash,
      replica,
      signature: "",
    });
  const viewChange = (prepared: PreparedCertificate[]): ViewChange =>
    cluster.sign(2, {
      kind: "view-change",
      chainId: "test-chain",
      newView: 1,
      stableHeight: 0,
      stableBlockHash: GENESIS,
      checkpointProof: [],
      prepared,
      replica: 2,
      signature: "",
    });
  cluster.deliver({
    from: 2,
    to: 1,
    message: viewChange([{ prePrepare, prepares: [prepare(2)] }]),
  });
  cluster.deliver({
    from: 2,
    to: 1,
    message: viewChange([{ prePrepare, prepares: [prepare(2), prepare(2)] }]),
  });
  cluster.deliver({
    from: 2,
    to: 1,
    message: viewChange([{
      prePrepare: cluster.sign(3, { ...prePrepare, replica: 3, signature: "" }),
      prepares: [prepare(1), prepare(2)],
    }]),
  });
  const reasons = cluster.rejectionReasons(1).filter((reason) => reason.startsWith("view-change"));
  assertEquals(reasons.length, 3, reasons.join(" | "));
  assert(reasons[0].includes("1 distinct prepares, needs 2"));
  assert(reasons[1].includes("1 distinct prepares, needs 2"));
  assert(reasons[2].includes("not from the view's primary"));
  cluster.deliver({
    from: 2,
    to: 1,
    message: viewChange([{ prePrepare, prepares: [prepare(2), prepare(3)] }]),
  });
  const after = cluster.rejectionReasons(1).filter((reason) => reason.startsWith("view-change"));
  assertEquals(after.length, 3, "a valid certificate is accepted");
});

Deno.test("§4.4 new-view planning: highest-view certificate wins; a gap or broken parent link truncates", () => {
  const certificate = (
    height: number,
    view: number,
    salt: string,
    parent: string,
  ): PreparedCertificate => {
    const block = buildBlock(height, parent, [], salt);
    return {
      prePrepare: {
        kind: "pre-prepare",
        chainId: "c",
        view,
        height,
        blockHash: block.blockHash,
        parentBlockHash: parent,
        payload: block.payload,
        requestIds: [],
        replica: view % 4,
        signature: "",
      },
      prepares: [],
    };
  };
  const viewChange = (replica: number, prepared: PreparedCertificate[]): ViewChange => ({
    kind: "view-change",
    chainId: "c",
    newView: 5,
    stableHeight: 0,
    stableBlockHash: GENESIS,
    checkpointProof: [],
    prepared,
    replica,
    signature: "",
  });
  const h1old = certificate(1, 1, "old", GENESIS);
  const h1new = certificate(1, 3, "new", GENESIS);
  const h2 = certificate(2, 3, "", h1new.prePrepare.blockHash);
  const h2orphan = certificate(2, 2, "orphan", h1old.prePrepare.blockHash);
  const h4 = certificate(4, 3, "", "a".repeat(64));
  const plan = planNewView([
    viewChange(0, [h1old, h2orphan]),
    viewChange(1, [h1new, h2, h4]),
    viewChange(2, []),
  ]);
  assertEquals(plan.reproposals.map((r) => r.blockHash), [
    h1new.prePrepare.blockHash,
    h2.prePrepare.blockHash,
  ]);
  assertEquals(plan.nextFreshHeight, 3, "height 3 is a gap, so 4 is dropped");
  const broken = planNewView([viewChange(0, [h1old]), viewChange(1, [h2]), viewChange(2, [])]);
  assertEquals(broken.reproposals.length, 1, "h2 does not extend h1old: truncated");
});

Deno.test("§4.4/§4.5 crash recovery: a restarted replica never prepares a different block at the same view and height", () => {
  const cluster = new Cluster();
  cluster.request("a", 1);
  cluster.request("b", 1);
  // Replica 2 sends its prepare, then crashes before anything commits.
  cluster.deliverAll((inFlight) => inFlight.message.kind !== "commit");
  const sent = cluster.snapshots[2]!.votes.find((vote) => vote.kind === "prepare");
  assert(sent, "the prepare vote was persisted before it was sent");
  cluster.restart(2);
  const other = buildBlock(1, GENESIS, [], "equivocation");
  const conflicting: PrePrepare = cluster.sign(0, {
    kind: "pre-prepare",
    chainId: "test-chain",
    view: 0,
    height: 1,
    blockHash: other.blockHash,
    parentBlockHash: GENESIS,
    payload: other.payload,
    requestIds: [],
    replica: 0,
    signature: "",
  });
  cluster.network.length = 0;
  cluster.deliver({ from: 0, to: 2, message: conflicting });
  assert(
    cluster.rejectionReasons(2).some((reason) => reason.includes("already prepared another")),
    cluster.rejectionReasons(2).join(" | "),
  );
  assertEquals(
    cluster.network.filter((m) => m.from === 2 && m.message.kind === "prepare").length,
    0,
  );
});

Deno.test("§4.4/§4.5 crash recovery: a new primary restarted mid view change re-sends the same new-view", () => {
  const cluster = new Cluster();
  cluster.down.add(0);
  cluster.request("a", 1, [1, 2, 3]);
  cluster.request("b", 1, [1, 2, 3]);
  cluster.deliverAll();
  for (const i of [1, 2, 3]) cluster.fireTimer(i, "view-change");
  const newViews: NewView[] = [];
  cluster.deliverAll((inFlight) => {
    if (inFlight.message.kind !== "new-view") return true;
    if (inFlight.to === 2) newViews.push(inFlight.message);
    return false; // nobody enters view 1 yet
  });
  assertEquals(newViews.length, 1);
  assertEquals(cluster.snapshots[1]!.newView?.view, 1, "the new-view was persisted before sending");
  cluster.restart(1);
  const resent = cluster.network.filter((m) => m.from === 1 && m.message.kind === "new-view")
    .map((m) => m.message as NewView);
  assert(resent.length > 0, "restarted primary re-sends its new-view");
  assertEquals(
    resent[0].viewChanges.map((viewChange) => viewChange.replica),
    newViews[0].viewChanges.map((viewChange) => viewChange.replica),
  );
  assertEquals(resent[0].reproposals, newViews[0].reproposals);
  // Pending requests are not persisted; clients retransmit them.
  cluster.request("a", 1, [1]);
  cluster.request("b", 1, [1]);
  cluster.deliverAll();
  for (const i of [1, 2, 3]) {
    assertEquals(cluster.replicas[i].inspect().view, 1);
    assertEquals(cluster.committedHeights(i), [1]);
  }
});

Deno.test("§4.5 crash recovery: the restore event rebuilds a replica from its persisted state", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } });
  cluster.request("a", 1);
  cluster.deliverAll();
  const before = cluster.replicas[2].inspect();
  cluster.step(2, {
    type: "restore",
    state: { snapshot: cluster.snapshots[2]!, committedTail: cluster.commits[2] },
  });
  assertEquals(cluster.replicas[2].inspect().lastExecutedHeight, before.lastExecutedHeight);
  assertEquals(cluster.replicas[2].inspect().view, before.view);
  cluster.request("b", 1);
  cluster.deliverAll();
  assertEquals(cluster.committedHeights(2), [1, 2]);
});

Deno.test("§4.5 crash recovery: only a view's first prepare is persisted; a replica restarted in that view abstains there and votes again after a view change", () => {
  const cluster = new Cluster({ config: { batchSizeMax: 1 } });
  cluster.request("a", 1);
  cluster.deliverAll();
  const first = cluster.snapshots[2]!;
  assertEquals(first.lastVoteView, 0, "the first prepare of view 0 made a snapshot durable");
  // Later prepares in view 0 are sent without a write of their own: the snapshot only changes
  // with the prepared certificates and commits, which are persisted.
  const persisted: string[] = [];
  const step = cluster.step.bind(cluster);
  cluster.step = (replica, event) => {
    const output = step(replica, event);
    if (replica === 2 && output.messages.some((m) => m.message.kind === "prepare")) {
      persisted.push(output.persist ? "persist" : "no-persist");
    }
    return output;
  };
  cluster.request("b", 1);
  cluster.deliverAll();
  assertEquals(persisted, ["no-persist"]);
  cluster.step = step;

  // Restarted from its snapshot (lastVoteView 0): no prepares in view 0, yet it commits with the
  // others' votes, and so do they (2f + 1 = 3 without it).
  cluster.restart(2);
  cluster.request("c", 1);
  const sent: string[] = [];
  cluster.deliverAll((inFlight) => {
    const { message } = inFlight;
    if (inFlight.from === 2) sent.push(`${message.kind}@${"view" in message ? message.view : ""}`);
    return true;
  });
  assert(!sent.includes("prepare@0"), `restarted replica sent ${sent}`);
  for (const i of [0, 1, 2, 3]) assertEquals(cluster.committedHeights(i).at(-1), 3, `replica ${i}`);

  // A view change: from view 1 on it prepares again.
  cluster.down.add(0);
  cluster.request("d", 1, [1, 2, 3]);
  cluster.deliverAll();
  for (const i of [1, 2, 3]) cluster.fireTimer(i, "view-change");
  sent.length = 0;
  cluster.deliverAll((inFlight) => {
    const { message } = inFlight;
    if (inFlight.from === 2) sent.push(`${message.kind}@${"view" in message ? message.view : ""}`);
    return true;
  });
  assert(sent.includes("prepare@1"), `after the view change it sent ${sent}`);
  assertEquals(cluster.committedHeights(2).at(-1), 4);
});
