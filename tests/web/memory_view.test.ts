// MemoryView as the store `run` publishes into: bounded collections, upserts, ordering and schema
// checks on publish, events to subscribers, and isolation from a subscriber that throws.
import assert from "node:assert/strict";
import { MemoryView } from "../../web/memory_view.ts";
import { Ring } from "../../web/ring.ts";
import type { NodeEvent } from "../../web/node_view.ts";
import { makeBlock, makeDevice, makeRound, T0 } from "./fixtures.ts";

const status = {
  nodeId: "run-1",
  role: "run" as const,
  startedAt: new Date(T0).toISOString(),
  peers: [],
};

Deno.test("ring keeps the newest items in order", () => {
  const r = new Ring<number>(3);
  assert.equal(r.push(1), undefined);
  r.push(2);
  r.push(3);
  assert.equal(r.push(4), 1);
  assert.deepEqual(r.toArray(), [2, 3, 4]);
  r.set(0, 20);
  assert.deepEqual([r.at(0), r.last(), r.at(3)], [20, 4, undefined]);
  assert.throws(() => new Ring(0), RangeError);
});

Deno.test("rounds, blocks, certificates and devices stay within their limits", () => {
  const v = new MemoryView({
    status,
    limits: { rounds: 5, blocks: 4, devices: 3, certificates: 2 },
  });
  for (let r = 1; r <= 20; r++) {
    v.publishRound(makeRound(r, "splitfed"));
    v.publishBlock(makeBlock(r));
  }
  assert.deepEqual(v.rounds({ limit: 100 }).map((r) => r.round), [20, 19, 18, 17, 16]);
  assert.deepEqual(v.blocks({ limit: 100 }).map((b) => b.height), [20, 19, 18, 17]);
  assert.equal(v.block(16), undefined, "evicted block is gone from the index");
  assert.equal(v.transaction(makeBlock(16).transactions[0].id), undefined, "and its transactions");
  assert.ok(v.transaction(makeBlock(17).transactions[0].id));
  assert.deepEqual(v.certificates({ limit: 10 }).map((c) => c.round), [20, 19]);
  // Higher numbers were seen longer ago; each newcomer evicts the stalest device already kept.
  for (let i = 0; i < 5; i++) v.upsertDevice(makeDevice(i));
  assert.deepEqual(v.devices().map((d) => d.id), ["dev-00", "dev-01", "dev-04"]);
  assert.equal(v.status().round, 20);
  assert.equal(v.status().ledgerHeight, 20);
});

Deno.test("a rounds page holds `limit` rounds of each mode, even when one mode has fewer", () => {
  const v = new MemoryView({ status });
  for (let r = 1; r <= 12; r++) v.publishRound(makeRound(r, "splitfed"));
  for (let r = 1; r <= 3; r++) v.publishRound(makeRound(r, "fedavg"));
  const page = v.rounds({ limit: 5 });
  assert.deepEqual(page.filter((r) => r.mode === "splitfed").map((r) => r.round), [
    12,
    11,
    10,
    9,
    8,
  ]);
  assert.deepEqual(page.filter((r) => r.mode === "fedavg").map((r) => r.round), [3, 2, 1]);
  assert.deepEqual(v.rounds({ limit: 2, beforeRound: 3 }).map((r) => `${r.round}${r.mode[0]}`), [
    "2s",
    "2f",
    "1s",
    "1f",
  ]);
});

Deno.test("a round is replaced in place when republished (running, then finished)", () => {
  const v = new MemoryView({ status });
  const running = { ...makeRound(1, "splitfed"), finishedAt: undefined };
  v.publishRound(running);
  v.publishRound(makeRound(1, "splitfed"));
  v.publishRound(makeRound(1, "fedavg"));
  assert.equal(v.rounds({ limit: 10 }).length, 2);
  assert.ok(v.round(1, "splitfed")!.finishedAt);
  assert.throws(() => v.publishRound(makeRound(0, "splitfed")), /after round 1/);
});

Deno.test("publishing data the API could not serve throws and changes nothing", () => {
  const v = new MemoryView({ status });
  v.publishBlock(makeBlock(0));
  assert.throws(() => v.publishBlock(makeBlock(0)), /after block 0/);
  assert.throws(() => v.publishBlock({ ...makeBlock(1), hash: "NOT-HEX" }), /block.hash/);
  assert.throws(() => v.publishBlock({ ...makeBlock(1), verified: false }), /verified=false/);
  assert.throws(() => v.upsertDevice({ ...makeDevice(1), reputation: 1.5 }), /device.reputation/);
  assert.throws(() => v.upsertDevice({ ...makeDevice(1), id: "../../etc" }), /device.id/);
  assert.throws(
    () =>
      v.publishRound({
        ...makeRound(1, "splitfed"),
        metrics: { accuracy: NaN, f1: 0, fpr: 0, loss: 0 },
      }),
    /accuracy/,
  );
  assert.throws(
    () =>
      v.setGlobalModel({
        info: { round: 1, sha256: "ab", sizeBytes: 9, format: "x", certificate: null },
        bytes: new Uint8Array(3),
      }),
    /sizeBytes/,
  );
  assert.deepEqual(v.blocks({ limit: 10 }).map((b) => b.height), [0]);
  assert.deepEqual(v.devices(), []);
  assert.deepEqual(v.rounds({ limit: 10 }), []);
});

Deno.test("readers get copies: mutating an answer does not change the store", () => {
  const v = new MemoryView({ status });
  v.upsertDevice(makeDevice(1));
  v.devices()[0].flags.push("tampered");
  v.device("dev-01")!.reputation = 0;
  assert.deepEqual(v.device("dev-01"), makeDevice(1));
});

Deno.test("subscribers get typed events; a throwing one is counted and does not stop the others", () => {
  const v = new MemoryView({ status, limits: { subscribers: 2 } });
  const seen: NodeEvent["type"][] = [];
  v.subscribe(() => {
    throw new Error("broken listener");
  });
  const off = v.subscribe((e) => seen.push(e.type));
  assert.throws(() => v.subscribe(() => {}), /subscriber limit/);
  v.setStatus({ roundState: "running" });
  v.publishRound(makeRound(1, "splitfed"));
  v.publishBlock(makeBlock(1));
  v.upsertDevice(makeDevice(1));
  assert.equal(v.patchDevice("dev-01", { status: "quarantined" }), true);
  assert.equal(v.patchDevice("dev-99", { status: "quarantined" }), false);
  v.setValidators({
    view: 1,
    height: 1,
    f: 1,
    primary: "val-1",
    checkpoint: { height: 0, digest: "00" },
    validators: [],
  });
  assert.deepEqual(seen, ["status", "round", "block", "device", "device", "validator"]);
  assert.equal(v.listenerErrors, 6);
  off();
  off();
  assert.equal(v.subscriberCount, 1);
});

Deno.test("detect and admin are not available until the role provides them", async () => {
  const v = new MemoryView({ status });
  await assert.rejects(v.detect([{ features: [1] }]), /no detector/);
  assert.equal(v.admin, undefined);
});
