// The read API through app.fetch against a seeded MemoryView: every resource, paging, 404s, 501s
// for roles that lack a part, and token protection of read-only views.
import assert from "node:assert/strict";
import { MemoryView } from "../../web/memory_view.ts";
import type { NodeView } from "../../web/node_view.ts";
import { ADMIN_TOKEN, READ_TOKEN, seededView, T0 } from "./fixtures.ts";
import { app, assertError, call, getJson } from "./helpers.ts";

Deno.test("status carries role, version, peers and uptime from the pinned clock", async () => {
  const a = app(seededView().view);
  const s = await getJson(a, "/api/v1/status");
  assert.equal(s.role, "run");
  assert.equal(s.version, "0.1.0-test");
  assert.equal(s.uptimeSeconds, 3600);
  assert.equal(s.round, 12);
  assert.equal(s.ledgerHeight, 12);
  assert.equal((s.peers as unknown[]).length, 6);
});

Deno.test("rounds: newest first, both modes, mode filter, limit and before paging", async () => {
  const a = app(seededView().view);
  const all = await getJson<{ rounds: { round: number; mode: string; confusion?: unknown }[] }>(
    a,
    "/api/v1/rounds",
  );
  assert.equal(all.rounds.length, 24);
  assert.deepEqual(all.rounds.slice(0, 2).map((r) => [r.round, r.mode]), [[12, "splitfed"], [
    12,
    "fedavg",
  ]]);
  assert.ok(
    all.rounds.every((r) => r.confusion === undefined),
    "the list omits confusion matrices",
  );
  const fed = await getJson<{ rounds: { round: number; mode: string }[] }>(
    a,
    "/api/v1/rounds?mode=fedavg&limit=3",
  );
  assert.deepEqual(fed.rounds.map((r) => [r.round, r.mode]), [[12, "fedavg"], [11, "fedavg"], [
    10,
    "fedavg",
  ]]);
  const page = await getJson<{ rounds: { round: number }[] }>(
    a,
    "/api/v1/rounds?mode=splitfed&before=4",
  );
  assert.deepEqual(page.rounds.map((r) => r.round), [3, 2, 1]);
});

Deno.test("one round has its metrics and confusion matrix; an unknown round is 404", async () => {
  const a = app(seededView().view);
  const r = await getJson<
    { round: number; mode: string; confusion: { labels: string[]; matrix: number[][] } }
  >(
    a,
    "/api/v1/rounds/5?mode=fedavg",
  );
  assert.equal(r.round, 5);
  assert.equal(r.mode, "fedavg");
  assert.equal(r.confusion.matrix.length, r.confusion.labels.length);
  assert.equal(
    (await getJson(a, "/api/v1/rounds/5")).mode,
    "splitfed",
    "mode defaults to splitfed",
  );
  await assertError(await call(a, "GET", "/api/v1/rounds/99"), 404, "not_found");
});

Deno.test("devices list and one device; unknown device is 404", async () => {
  const a = app(seededView().view);
  const { devices } = await getJson<{ devices: { id: string; status: string; flags: string[] }[] }>(
    a,
    "/api/v1/devices",
  );
  assert.equal(devices.length, 8);
  const q = devices.find((d) => d.status === "quarantined")!;
  assert.deepEqual(q.flags, ["quarantined", "label_flip_suspect"]);
  assert.equal((await getJson(a, `/api/v1/devices/${q.id}`)).id, q.id);
  await assertError(await call(a, "GET", "/api/v1/devices/dev-99"), 404, "not_found");
});

Deno.test("ledger: blocks with marks, one block with verification, transactions, certificates", async () => {
  const a = app(seededView().view);
  const { blocks } = await getJson<{ blocks: { height: number; verified: boolean }[] }>(
    a,
    "/api/v1/ledger/blocks?limit=5",
  );
  assert.deepEqual(blocks.map((b) => b.height), [12, 11, 10, 9, 8]);
  const older = await getJson<{ blocks: { height: number; verified: boolean }[] }>(
    a,
    "/api/v1/ledger/blocks?before=8&limit=2",
  );
  assert.deepEqual(older.blocks.map((b) => [b.height, b.verified]), [[7, false], [6, true]]);

  const b7 = await getJson<{
    verified: boolean;
    verification: { ok: boolean; checks: { name: string; ok: boolean }[] };
    transactions: { id: string }[];
    commit: { quorum: number; signers: string[] };
    modelCertificate: { round: number };
  }>(a, "/api/v1/ledger/blocks/7");
  assert.equal(b7.verified, false);
  assert.equal(b7.verification.checks.find((c) => c.name === "signatures")!.ok, false);
  assert.equal(b7.commit.quorum, 3);
  assert.equal(b7.commit.signers.length, 3);
  assert.equal(b7.modelCertificate.round, 7);

  const tx = await getJson<{ id: string; height: number }>(
    a,
    `/api/v1/ledger/transactions/${b7.transactions[0].id}`,
  );
  assert.equal(tx.height, 7);
  await assertError(
    await call(a, "GET", `/api/v1/ledger/transactions/${"0".repeat(64)}`),
    404,
    "not_found",
  );
  await assertError(await call(a, "GET", "/api/v1/ledger/blocks/999"), 404, "not_found");

  const certs = await getJson<{ certificates: { round: number }[] }>(
    a,
    "/api/v1/ledger/certificates?round=3",
  );
  assert.deepEqual(certs.certificates.map((c) => c.round), [3]);
});

Deno.test("validators' state", async () => {
  const v = await getJson<{ f: number; validators: { healthy: boolean }[] }>(
    app(seededView().view),
    "/api/v1/validators",
  );
  assert.equal(v.f, 1);
  assert.equal(v.validators.filter((x) => x.healthy).length, 3);
});

Deno.test("global model: 404 before one exists, then metadata with certificate and the bytes", async () => {
  const { view } = seededView();
  const a = app(view);
  await assertError(await call(a, "GET", "/api/v1/models/global"), 404, "not_found");
  const bytes = new Uint8Array([1, 2, 3, 4, 5]);
  const cert = view.certificates({ round: 12, limit: 1 })[0];
  view.setGlobalModel({
    info: {
      round: 12,
      sha256: cert.modelHash,
      sizeBytes: 5,
      format: "tfjs-weights-v1",
      certificate: cert,
    },
    bytes,
  });
  const info = await getJson<{ round: number; certificate: { signers: string[] } }>(
    a,
    "/api/v1/models/global",
  );
  assert.equal(info.round, 12);
  assert.equal(info.certificate.signers.length, 3);
  const res = await call(a, "GET", "/api/v1/models/global/weights");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/octet-stream");
  assert.equal(res.headers.get("x-model-sha256"), cert.modelHash);
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
});

Deno.test("detect scores posted flows through the view's detector", async () => {
  const { view } = seededView();
  const a = app(view);
  const flows = { flows: [{ id: "f1", features: [0.1, 0.9] }, { features: [0.5, 0.5] }] };
  await assertError(await call(a, "POST", "/api/v1/detect", { json: flows }), 501, "not_available");
  view.setDetector((fl) =>
    Promise.resolve({
      modelRound: 12,
      results: fl.map((f) => ({
        id: f.id,
        label: f.features[1] > 0.8 ? "spoofing" : "benign",
        attack: f.features[1] > 0.8,
        score: 0.93,
      })),
    })
  );
  const res = await call(a, "POST", "/api/v1/detect", { json: flows });
  assert.equal(res.status, 200);
  const out = await res.json();
  assert.equal(out.modelRound, 12);
  assert.deepEqual(out.results.map((r: { label: string }) => r.label), ["spoofing", "benign"]);
});

Deno.test("a role without a part answers 501 not_available, with the error shape", async () => {
  const deviceOnly: NodeView = {
    status: () => ({
      nodeId: "dev-01",
      role: "device",
      startedAt: new Date(T0).toISOString(),
      peers: [],
    }),
  };
  const a = app(deviceOnly);
  assert.equal((await getJson(a, "/api/v1/status")).role, "device");
  for (
    const path of [
      "/api/v1/rounds",
      "/api/v1/rounds/1",
      "/api/v1/devices",
      "/api/v1/ledger/blocks",
      "/api/v1/ledger/blocks/1",
      "/api/v1/ledger/certificates",
      "/api/v1/validators",
      "/api/v1/models/global",
      "/api/v1/events",
    ]
  ) {
    await assertError(await call(a, "GET", path), 501, "not_available");
  }
  await assertError(
    await call(a, "POST", "/api/v1/admin/rounds/stop", { token: ADMIN_TOKEN }),
    501,
    "not_available",
  );
  assert.deepEqual(await getJson(a, "/readyz"), { ready: true });
});

Deno.test("readiness reports 503 with the reason until the view is ready", async () => {
  const { view } = seededView();
  const a = app(view);
  view.setReady({ ready: false, reason: "ledger replay at 120/400" });
  const e = await call(a, "GET", "/readyz");
  assert.equal(e.status, 503);
  assert.equal((await e.json()).error.message, "ledger replay at 120/400");
  assert.equal(
    (await call(a, "GET", "/healthz")).status,
    200,
    "liveness does not depend on readiness",
  );
  view.setReady({ ready: true });
  assert.equal((await call(a, "GET", "/readyz")).status, 200);
});

Deno.test("read token: reads need it (or the admin token); health, UI and the document stay public", async () => {
  const a = app(seededView().view, { readToken: READ_TOKEN });
  const res = await call(a, "GET", "/api/v1/status");
  await assertError(res.clone(), 401, "unauthorized");
  assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
  await assertError(
    await call(a, "GET", "/api/v1/status", { token: "x".repeat(27) }),
    401,
    "unauthorized",
  );
  await assertError(await call(a, "GET", "/metrics"), 401, "unauthorized");
  assert.equal((await call(a, "GET", "/api/v1/status", { token: READ_TOKEN })).status, 200);
  assert.equal((await call(a, "GET", "/api/v1/status", { token: ADMIN_TOKEN })).status, 200);
  assert.equal((await call(a, "GET", "/metrics", { token: READ_TOKEN })).status, 200);
  // A query token is accepted on the event stream only (EventSource cannot set headers).
  await assertError(
    await call(a, "GET", `/api/v1/status?access_token=${READ_TOKEN}`),
    401,
    "unauthorized",
  );
  await assertError(
    await call(a, "GET", `/api/v1/status?access_token=${READ_TOKEN}`, { token: READ_TOKEN }),
    400,
    "invalid_query",
  );
  const sse = await call(a, "GET", `/api/v1/events?access_token=${READ_TOKEN}`);
  assert.equal(sse.status, 200);
  await sse.body!.cancel();
  for (const p of ["/healthz", "/readyz", "/openapi.json", "/", "/ui/app.js"]) {
    assert.equal((await call(a, "GET", p)).status, 200, p);
  }
});

Deno.test("tokens shorter than 16 characters are refused at construction", () => {
  assert.throws(
    () =>
      app(new MemoryView({ status: { nodeId: "n", role: "run", startedAt: "", peers: [] } }), {
        adminToken: "short",
      }),
    /adminToken/,
  );
});

Deno.test("HEAD works on GET routes without a body", async () => {
  const res = await call(app(seededView().view), "HEAD", "/api/v1/status");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "");
});
