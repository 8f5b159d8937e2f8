// The OpenAPI document matches what the server does (every $ref resolves, every GET answer from a
// seeded node validates against its documented schema), and the embedded UI is served with the
// right types, caching, CSP and weight, with nothing loaded from outside the node.
import assert from "node:assert/strict";
import { ErrorBody } from "../../web/api_schemas.ts";
import { ASSETS, PAGE_WEIGHT_BYTES } from "../../web/assets.ts";
import { CSP } from "../../web/app.ts";
import { ISSUES_MAX, type JsonSchema, type Schema } from "../../web/schema.ts";
import { ADMIN_TOKEN, READ_TOKEN, seededView } from "./fixtures.ts";
import { app, call, getJson } from "./helpers.ts";
import { buildRoutes } from "../../web/routes.ts";
import { createNodeMetrics } from "../../web/metrics.ts";

type Doc = {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        parameters: { name: string; in: string }[];
        responses: Record<string, unknown>;
        security: unknown[];
      }
    >
  >;
  components: { schemas: Record<string, JsonSchema> };
};

Deno.test("openapi.json lists every route with its parameters, errors and resolvable $refs", async () => {
  const doc = await getJson<Doc>(
    app(seededView().view, { readToken: READ_TOKEN }),
    "/openapi.json",
  );
  assert.equal(doc.openapi, "3.0.3");
  const ops = Object.entries(doc.paths).flatMap(([p, m]) =>
    Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`)
  );
  for (
    const op of [
      "GET /api/v1/status",
      "GET /api/v1/rounds",
      "GET /api/v1/rounds/{round}",
      "GET /api/v1/devices/{id}",
      "GET /api/v1/ledger/blocks/{height}",
      "GET /api/v1/ledger/transactions/{id}",
      "GET /api/v1/ledger/certificates",
      "GET /api/v1/validators",
      "GET /api/v1/models/global",
      "GET /api/v1/models/global/weights",
      "POST /api/v1/detect",
      "GET /api/v1/events",
      "POST /api/v1/admin/rounds/start",
      "POST /api/v1/admin/devices/{id}/quarantine",
      "GET /metrics",
      "GET /healthz",
      "GET /readyz",
    ]
  ) assert.ok(ops.includes(op), `${op} missing from ${ops.join(", ")}`);

  const round = doc.paths["/api/v1/rounds/{round}"].get;
  assert.deepEqual(round.parameters.map((p) => `${p.in}:${p.name}`), ["path:round", "query:mode"]);
  assert.ok("404" in round.responses && "400" in round.responses && "401" in round.responses);
  const detect = doc.paths["/api/v1/detect"].post;
  assert.ok("413" in detect.responses && "415" in detect.responses);
  assert.deepEqual(doc.paths["/api/v1/admin/rounds/stop"].post.security, [{ adminToken: [] }]);
  assert.deepEqual(doc.paths["/healthz"].get.security, []);

  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((
    m,
  ) => m[1]);
  assert.ok(refs.length > 20);
  for (const r of refs) assert.ok(r in doc.components.schemas, `dangling $ref ${r}`);
  assert.deepEqual(doc.components.schemas.Error, ErrorBody.json);
});

Deno.test("every GET answer of a seeded node conforms to the schema its route documents", async () => {
  const { view, metrics } = seededView();
  const cert = view.certificates({ limit: 1 })[0];
  view.setGlobalModel({
    info: {
      round: cert.round,
      sha256: cert.modelHash,
      sizeBytes: 3,
      format: "tfjs-weights-v1",
      certificate: cert,
    },
    bytes: new Uint8Array(3),
  });
  const a = app(view, { metrics });
  const routes = buildRoutes(view, {
    version: "x",
    metrics: createNodeMetrics(),
    now: Date.now,
    sseClientsMax: 1,
    sseHeartbeatMs: 1000,
    sseQueueMax: 1,
    document: () => ({}),
  });
  const tx = view.block(3)!.transactions[0].id;
  const fill: Record<string, string> = { round: "3", id: "dev-01", height: "3" };
  let checked = 0;
  for (const r of routes) {
    const ok = r.responses[200];
    if (r.method !== "get" || !ok?.schema) continue;
    const path = r.path.replace(
      /\{(\w+)\}/g,
      (_, k) => (r.path.includes("transactions") ? tx : fill[k]),
    );
    const body = await getJson(a, path);
    const parsed = (ok.schema as Schema<unknown>).parse(body, "response", false);
    assert.ok(parsed.ok, `${path}: ${JSON.stringify(!parsed.ok && parsed.issues)}`);
    checked++;
  }
  assert.ok(checked >= 12, `checked ${checked} routes`);
});

Deno.test("validation issues are capped, so a huge bad array does not make a huge error", async () => {
  const { view } = seededView();
  view.setDetector(() => Promise.resolve({ modelRound: null, results: [] }));
  const flows = Array.from({ length: 500 }, () => ({ features: ["x"] }));
  const res = await call(app(view), "POST", "/api/v1/detect", { json: { flows } });
  assert.equal(res.status, 400);
  const { error } = await res.json();
  assert.equal(error.details.issues.length, ISSUES_MAX);
});

Deno.test("UI assets: content types, caching, ETag revalidation, security headers", async () => {
  const a = app(seededView().view);
  const page = await call(a, "GET", "/");
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(page.headers.get("cache-control"), "no-cache");
  assert.equal(page.headers.get("content-security-policy"), CSP);
  assert.match(CSP, /^default-src 'self'/);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  assert.equal(page.headers.get("x-frame-options"), "DENY");
  const etag = page.headers.get("etag")!;
  const again = await call(a, "GET", "/", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), "");

  const js = await call(a, "GET", "/ui/app.js");
  assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  const css = await call(a, "GET", "/ui/style.css");
  assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
  const vendor = await call(a, "GET", "/ui/vendor/uplot-1.6.32.min.js");
  assert.equal(vendor.headers.get("cache-control"), "public, max-age=31536000, immutable");
  assert.match(await vendor.text(), /uPlot/);
  assert.equal(
    (await call(a, "GET", "/ui/favicon.svg")).headers.get("content-type"),
    "image/svg+xml",
  );
  assert.equal((await call(a, "GET", "/favicon.ico")).status, 301);
  // API answers are never cached and carry the same security headers.
  const api = await call(a, "GET", "/api/v1/status");
  assert.equal(api.headers.get("cache-control"), "no-store");
  assert.equal(api.headers.get("content-security-policy"), CSP);
});

Deno.test("UI weight is under 300 KB and every reference stays on this node", async () => {
  assert.ok(PAGE_WEIGHT_BYTES < 300_000, `page weight ${PAGE_WEIGHT_BYTES}`);
  const a = app(seededView().view);
  const html = await (await call(a, "GET", "/")).text();
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  for (const r of refs) {
    assert.ok(r.startsWith("/") || r.startsWith("#"), `external reference ${r}`);
    if (r.startsWith("/")) {
      assert.ok(ASSETS.has(r) || ["/openapi.json", "/metrics"].includes(r), `dangling ${r}`);
    }
  }
  assert.doesNotMatch(
    html,
    /<script>|<style>|style="/,
    "inline script or style would need CSP exceptions",
  );
  for (const [path, asset] of ASSETS) {
    const text = new TextDecoder().decode(asset.body);
    if (path.includes("vendor")) continue;
    assert.doesNotMatch(text, /https?:\/\/(?!www\.w3\.org)/, `${path} names an outside URL`);
    assert.doesNotMatch(
      text,
      /\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|\beval\(/,
      `${path} builds markup from strings`,
    );
  }
});

Deno.test("with a read token the UI is still served, so it can ask for the token", async () => {
  const a = app(seededView().view, { readToken: READ_TOKEN, adminToken: ADMIN_TOKEN });
  assert.equal((await call(a, "GET", "/")).status, 200);
  assert.equal((await call(a, "GET", "/ui/app.js")).status, 200);
});
