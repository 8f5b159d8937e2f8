// The negative space: malformed JSON, wrong types, oversized bodies, unknown routes and methods,
// missing or wrong tokens, path traversal. Each gets the error shape and the right code, nothing
// changes in the view, and the server keeps serving.
import assert from "node:assert/strict";
import { type AdminActions, type AdminResult, ViewError } from "../../web/node_view.ts";
import { DETECT_BODY_LIMIT } from "../../web/routes.ts";
import { ADMIN_TOKEN, READ_TOKEN, seededView } from "./fixtures.ts";
import { app, assertError, call } from "./helpers.ts";

function recordingAdmin(reply: AdminResult = { accepted: true, message: "ok" }) {
  const calls: string[] = [];
  const admin: AdminActions = {
    startRound: (r) => (calls.push(`start ${r.rounds ?? "-"}`), Promise.resolve(reply)),
    stopRound: () => (calls.push("stop"), Promise.resolve(reply)),
    quarantine: (id, reason) => (calls.push(`quarantine ${id} ${reason}`), Promise.resolve(reply)),
    readmit: (id) => (calls.push(`readmit ${id}`), Promise.resolve(reply)),
  };
  return { admin, calls };
}

function setup() {
  const { view } = seededView();
  const { admin, calls } = recordingAdmin();
  view.setAdmin(admin);
  view.setDetector((flows) =>
    Promise.resolve({
      modelRound: 1,
      results: flows.map(() => ({ label: "benign", attack: false, score: 0.9 })),
    })
  );
  const a = app(view, { readToken: undefined });
  const snapshot = () =>
    JSON.stringify([view.devices(), view.blocks({ limit: 500 }), view.rounds({ limit: 500 })]);
  return { view, a, calls, snapshot };
}

Deno.test("malformed JSON, wrong types, wrong content type and unknown fields are 4xx with details", async () => {
  const { a, calls, snapshot } = setup();
  const before = snapshot();
  const t = ADMIN_TOKEN;
  const cases: [
    string,
    string,
    { body?: string; json?: unknown; headers?: Record<string, string> },
    number,
    string,
  ][] = [
    [
      "POST",
      "/api/v1/detect",
      { body: "{", headers: { "content-type": "application/json" } },
      400,
      "malformed_json",
    ],
    [
      "POST",
      "/api/v1/detect",
      { body: "", headers: { "content-type": "application/json" } },
      400,
      "malformed_json",
    ],
    [
      "POST",
      "/api/v1/detect",
      {
        body: new Uint8Array([0x7b, 0xff, 0x7d]) as unknown as string,
        headers: { "content-type": "application/json" },
      },
      400,
      "malformed_json",
    ],
    ["POST", "/api/v1/detect", { json: { flows: "all" } }, 400, "invalid_body"],
    ["POST", "/api/v1/detect", { json: { flows: [] } }, 400, "invalid_body"],
    ["POST", "/api/v1/detect", { json: { flows: [{ features: ["1"] }] } }, 400, "invalid_body"],
    [
      "POST",
      "/api/v1/detect",
      { json: { flows: [{ features: [1] }], extra: 1 } },
      400,
      "invalid_body",
    ],
    ["POST", "/api/v1/detect", { json: [1, 2] }, 400, "invalid_body"],
    ["POST", "/api/v1/detect", { json: null }, 400, "invalid_body"],
    [
      "POST",
      "/api/v1/detect",
      { body: "{}", headers: { "content-type": "text/plain" } },
      415,
      "unsupported_media_type",
    ],
    ["POST", "/api/v1/detect", { body: "{}" }, 415, "unsupported_media_type"],
    ["POST", "/api/v1/admin/rounds/start", { json: { rounds: "5" } }, 400, "invalid_body"],
    ["POST", "/api/v1/admin/rounds/start", { json: { rounds: 0 } }, 400, "invalid_body"],
    ["POST", "/api/v1/admin/rounds/start", { json: { rounds: 2.5 } }, 400, "invalid_body"],
    ["POST", "/api/v1/admin/devices/dev-01/quarantine", { json: {} }, 400, "invalid_body"],
    [
      "POST",
      "/api/v1/admin/devices/dev-01/quarantine",
      { json: { reason: "" } },
      400,
      "invalid_body",
    ],
    ["POST", "/api/v1/admin/rounds/stop", { body: "please" }, 400, "unexpected_body"],
  ];
  for (const [method, path, init, status, code] of cases) {
    const e = await assertError(await call(a, method, path, { ...init, token: t }), status, code);
    if (code === "invalid_body") {
      const issues = (e.details as { issues: { path: string; message: string }[] }).issues;
      assert.ok(issues.length > 0 && issues[0].path.startsWith("body"), JSON.stringify(e));
    }
  }
  assert.deepEqual(calls, [], "no admin action ran");
  assert.equal(snapshot(), before, "nothing changed");
  assert.equal((await call(a, "GET", "/healthz")).status, 200);
});

Deno.test("path and query parameters are validated and coerced strictly", async () => {
  const { a } = setup();
  for (
    const path of [
      "/api/v1/rounds/-1",
      "/api/v1/rounds/abc",
      "/api/v1/rounds/1e3",
      "/api/v1/rounds/0x10",
      "/api/v1/rounds/99999999999999999999",
      "/api/v1/ledger/blocks/1.5",
      "/api/v1/ledger/transactions/XYZ",
      "/api/v1/devices/a%20b",
    ]
  ) await assertError(await call(a, "GET", path), 400, "invalid_path");
  for (
    const q of [
      "/api/v1/rounds?limit=0",
      "/api/v1/rounds?limit=501",
      "/api/v1/rounds?limit=",
      "/api/v1/rounds?mode=sgd",
      "/api/v1/rounds?limt=5",
      "/api/v1/rounds?limit=5&limit=6",
      "/api/v1/devices?x=1",
      "/api/v1/ledger/blocks?before=-3",
    ]
  ) await assertError(await call(a, "GET", q), 400, "invalid_query");
});

Deno.test("bodies over the route's limit are 413, whether declared or streamed", async () => {
  const { a, calls } = setup();
  const big = JSON.stringify({ flows: [{ features: new Array(DETECT_BODY_LIMIT / 2).fill(1) }] });
  assert.ok(big.length > DETECT_BODY_LIMIT);
  const e = await assertError(
    await call(a, "POST", "/api/v1/detect", {
      body: big,
      headers: { "content-type": "application/json" },
    }),
    413,
    "payload_too_large",
  );
  assert.deepEqual(e.details, { limitBytes: DETECT_BODY_LIMIT });

  // No content-length: the reader stops at the limit instead of buffering the rest.
  let pulled = 0;
  const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled += chunk.byteLength;
      c.enqueue(chunk);
    },
  });
  await assertError(
    await call(a, "POST", "/api/v1/detect", {
      body: endless,
      headers: { "content-type": "application/json" },
    }),
    413,
    "payload_too_large",
  );
  assert.ok(pulled <= DETECT_BODY_LIMIT + 3 * chunk.byteLength, `read ${pulled} bytes`);

  // Admin routes have a 1 KiB limit, far below the detect route's.
  await assertError(
    await call(a, "POST", "/api/v1/admin/devices/dev-01/quarantine", {
      json: { reason: "x".repeat(2000) },
      token: ADMIN_TOKEN,
    }),
    413,
    "payload_too_large",
  );
  await assertError(
    await call(a, "POST", "/api/v1/admin/rounds/stop", {
      body: "x".repeat(2000),
      token: ADMIN_TOKEN,
    }),
    413,
    "payload_too_large",
  );
  assert.deepEqual(calls, []);
});

Deno.test("unknown routes are 404 and wrong methods 405 with Allow, both with the error shape", async () => {
  const { a } = setup();
  for (const p of ["/nope", "/api/v2/status", "/api/v1/status/", "/api/v1/ledger", "/ui/"]) {
    await assertError(await call(a, "GET", p), 404, "not_found");
  }
  const res = await call(a, "DELETE", "/api/v1/devices/dev-01");
  assert.equal(res.headers.get("allow"), "GET, HEAD");
  await assertError(res, 405, "method_not_allowed");
  await assertError(await call(a, "GET", "/api/v1/admin/rounds/start"), 405, "method_not_allowed");
  await assertError(
    await call(a, "PUT", "/api/v1/detect", { json: {} }),
    405,
    "method_not_allowed",
  );
});

Deno.test("admin: missing, wrong or read-only token is refused and nothing runs", async () => {
  const { view, calls } = setup();
  const a = app(view, { readToken: READ_TOKEN });
  const body = { json: { reason: "poisoning" } };
  const path = "/api/v1/admin/devices/dev-01/quarantine";
  await assertError(await call(a, "POST", path, body), 401, "unauthorized");
  await assertError(
    await call(a, "POST", path, { ...body, token: "wrong-token-wrong-token" }),
    401,
    "unauthorized",
  );
  await assertError(
    await call(a, "POST", path, { ...body, headers: { authorization: `Basic ${btoa("a:b")}` } }),
    401,
    "unauthorized",
  );
  await assertError(
    await call(a, "POST", path, { ...body, token: ADMIN_TOKEN.slice(0, -1) }),
    401,
    "unauthorized",
  );
  await assertError(
    await call(a, "POST", path, { ...body, token: ADMIN_TOKEN + "x" }),
    401,
    "unauthorized",
  );
  await assertError(await call(a, "POST", path, { ...body, token: READ_TOKEN }), 403, "forbidden");
  await assertError(
    await call(a, "POST", `${path}?access_token=${ADMIN_TOKEN}`, body),
    401,
    "unauthorized",
  );
  assert.deepEqual(calls, []);

  const noAdmin = app(view, { adminToken: undefined });
  await assertError(
    await call(noAdmin, "POST", "/api/v1/admin/rounds/stop", { token: ADMIN_TOKEN }),
    403,
    "admin_disabled",
  );
  assert.deepEqual(calls, []);
});

Deno.test("admin: accepted actions are relayed; unknown devices are 404; refusals are 409", async () => {
  const { view, a, calls } = setup();
  const t = ADMIN_TOKEN;
  let res = await call(a, "POST", "/api/v1/admin/rounds/start", { json: { rounds: 3 }, token: t });
  assert.equal(res.status, 202);
  assert.deepEqual(await res.json(), { accepted: true, message: "ok" });
  res = await call(a, "POST", "/api/v1/admin/rounds/start", { json: {}, token: t });
  assert.equal(res.status, 202);
  assert.equal((await call(a, "POST", "/api/v1/admin/rounds/stop", { token: t })).status, 202);
  assert.equal(
    (await call(a, "POST", "/api/v1/admin/devices/dev-02/quarantine", {
      json: { reason: "outlier" },
      token: t,
    })).status,
    202,
  );
  assert.equal(
    (await call(a, "POST", "/api/v1/admin/devices/dev-05/readmit", { token: t })).status,
    202,
  );
  await assertError(
    await call(a, "POST", "/api/v1/admin/devices/dev-77/readmit", { token: t }),
    404,
    "not_found",
  );
  assert.deepEqual(calls, [
    "start 3",
    "start -",
    "stop",
    "quarantine dev-02 outlier",
    "readmit dev-05",
  ]);

  view.setAdmin(recordingAdmin({ accepted: false, message: "a round is already running" }).admin);
  await assertError(
    await call(a, "POST", "/api/v1/admin/rounds/start", { json: {}, token: t }),
    409,
    "rejected",
  );
  view.setAdmin(undefined);
  await assertError(
    await call(a, "POST", "/api/v1/admin/rounds/stop", { token: t }),
    501,
    "not_available",
  );
});

Deno.test("a view that throws: ViewError maps to its status, anything else is an opaque 500", async () => {
  const { view } = seededView();
  const seen: unknown[] = [];
  const a = app(
    {
      status: () => view.status(),
      devices: () => {
        throw new Error("database password is hunter2");
      },
      detect: () => Promise.reject(new (class extends Error {})("boom")),
      rounds: () => Promise.reject(new ViewError("unavailable", "replaying")),
    },
    { onUnexpectedError: (e) => seen.push(e) },
  );
  const e = await assertError(await call(a, "GET", "/api/v1/devices"), 500, "internal");
  assert.doesNotMatch(JSON.stringify(e), /hunter2/);
  await assertError(
    await call(a, "POST", "/api/v1/detect", { json: { flows: [{ features: [1] }] } }),
    500,
    "internal",
  );
  await assertError(await call(a, "GET", "/api/v1/rounds"), 503, "unavailable");
  assert.equal(seen.length, 2, "unexpected errors reach the log hook");
  assert.equal((await call(a, "GET", "/api/v1/status")).status, 200, "still serving");
});

Deno.test("static routes: traversal and encoded tricks are 404, never a file", async () => {
  const { a } = setup();
  for (
    const p of [
      "/ui/%2e%2e/web/app.ts",
      "/ui/..%2f..%2fetc%2fpasswd",
      "/ui/%2e%2e%2f%2e%2e%2fdeno.json",
      "/ui/vendor/..%5c..%5capp.ts",
      "/ui/app.js%00.html",
      "/ui/app.js/",
      "/ui/APP.JS",
      "/ui/vendor/",
      "/..%2f..%2fetc/passwd",
    ]
  ) {
    const res = await a.fetch(new Request(`http://node.test${p}`));
    await assertError(res, 404, "not_found");
  }
  // A raw request line with dot segments (URL parsing resolves them first).
  const res = await a.fetch(new Request("http://node.test/ui/../../etc/passwd"));
  await assertError(res, 404, "not_found");
});
