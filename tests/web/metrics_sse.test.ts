// Prometheus text from the registry, and the event stream through app.fetch: events arrive in
// order, the subscriber limit answers 503 with the error shape, and closing frees the slot.
import assert from "node:assert/strict";
import { createNodeMetrics, Registry, SERIES_MAX } from "../../web/metrics.ts";
import { makeBlock, makeRound, seededView } from "./fixtures.ts";
import { app, assertError, call } from "./helpers.ts";

Deno.test("/metrics exposes round, accuracy, ledger height, commit latency, tx and rejected counters", async () => {
  const { view, metrics } = seededView(12);
  metrics.rejectedMessages.inc({ reason: "bad_signature" }, 4);
  metrics.rejectedMessages.inc({ reason: "stale_view" });
  const a = app(view, { metrics });
  await call(a, "GET", "/api/v1/nope");
  const res = await call(a, "GET", "/metrics");
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  assert.match(text, /^# TYPE iomt_round gauge$/m);
  assert.match(text, /^iomt_round\{mode="splitfed"\} 12$/m);
  assert.match(text, /^iomt_round\{mode="fedavg"\} 12$/m);
  assert.match(text, /^iomt_accuracy\{mode="splitfed"\} 0\.9\d+$/m);
  assert.match(text, /^iomt_ledger_height 12$/m);
  assert.match(text, /^iomt_commit_latency_seconds_bucket\{le="0\.25"\} 10$/m);
  assert.match(text, /^iomt_commit_latency_seconds_bucket\{le="\+Inf"\} 12$/m);
  assert.match(text, /^iomt_commit_latency_seconds_count 12$/m);
  assert.match(text, /^iomt_ledger_transactions_total\{type="model_update"\} 39$/m);
  assert.match(text, /^iomt_rejected_messages_total\{reason="bad_signature"\} 4$/m);
  assert.match(text, /^iomt_http_requests_total\{code="4xx"\} 1$/m);
  // Every sample line is `name{labels} value`.
  for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
    assert.match(
      line,
      /^[a-z_:][a-z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eInfNa]+$/,
      line,
    );
  }
});

Deno.test("registry: label escaping, series cap, bad names and wrong labels throw", () => {
  const r = new Registry();
  const c = r.counter("x_total", "help with \\ and\nnewline", ["reason"]);
  c.inc({ reason: 'quote " back \\ nl \n' });
  assert.match(r.render(), /x_total\{reason="quote \\" back \\\\ nl \\n"\} 1/);
  assert.match(r.render(), /# HELP x_total help with \\\\ and\\nnewline/);
  for (let i = 0; i < SERIES_MAX + 10; i++) c.inc({ reason: `r${i}` });
  assert.equal(c.dropped, 11);
  assert.throws(() => c.inc({}), /expects labels/);
  assert.throws(() => c.inc({ reason: "a" }, -1), /increment/);
  assert.throws(() => r.counter("x_total", "again"), /twice/);
  assert.throws(() => r.gauge("bad-name", "h"), /invalid metric name/);
  assert.throws(() => r.histogram("h", "h", [1, 1]), /increase/);
  assert.throws(() => r.histogram("h2", "h", [1], ["le"]), /invalid label/);
  createNodeMetrics(new Registry()); // the standard set registers cleanly
});

async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  pred: (text: string) => boolean,
): Promise<string> {
  let text = "";
  const dec = new TextDecoder();
  while (!pred(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  return text;
}

Deno.test("events: hello, then round, block and device events as they are published", async () => {
  const { view } = seededView(3);
  const a = app(view, { sseHeartbeatMs: 60_000 });
  const res = await call(a, "GET", "/api/v1/events");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.getReader();
  const hello = await readUntil(reader, (t) => t.includes("event: hello"));
  assert.match(hello, /retry: 3000/);
  view.publishRound(makeRound(4, "splitfed"));
  view.publishBlock(makeBlock(4));
  view.patchDevice("dev-01", { reputation: 0.5 });
  const text = await readUntil(reader, (t) => t.includes("event: device"));
  const events = [...text.matchAll(/id: (\d+)\nevent: (\w+)\ndata: (.*)\n\n/g)].map((
    m,
  ) => [Number(m[1]), m[2], JSON.parse(m[3])]);
  assert.deepEqual(events.map((e) => e[1]), ["round", "block", "device"]);
  assert.deepEqual(events.map((e) => e[0]), [2, 3, 4]);
  assert.equal(events[0][2].round, 4);
  assert.equal(events[1][2].height, 4);
  assert.equal(events[2][2].reputation, 0.5);
  assert.equal(view.subscriberCount, 1);
  await reader.cancel();
  assert.equal(view.subscriberCount, 0, "cancel unsubscribes");
});

Deno.test("events: the stream limit answers 503 and a closed stream frees its slot", async () => {
  const { view, metrics } = seededView(1);
  const a = app(view, { sseClientsMax: 2, metrics });
  const s1 = await call(a, "GET", "/api/v1/events");
  const s2 = await call(a, "GET", "/api/v1/events");
  assert.equal(metrics.sseClients.get(), 2);
  const third = await call(a, "GET", "/api/v1/events");
  assert.equal(third.headers.get("retry-after"), "5");
  await assertError(third, 503, "too_many_subscribers");
  await s1.body!.cancel();
  const s3 = await call(a, "GET", "/api/v1/events");
  assert.equal(s3.status, 200);
  await s2.body!.cancel();
  await s3.body!.cancel();
  assert.equal(metrics.sseClients.get(), 0);
  assert.equal(view.subscriberCount, 0);
});

Deno.test("events: a client that stops reading is dropped instead of buffered without bound", async () => {
  const { view } = seededView(1);
  const a = app(view, { sseQueueMax: 8, sseHeartbeatMs: 60_000 });
  const res = await call(a, "GET", "/api/v1/events");
  for (let r = 2; r < 40; r++) view.publishRound(makeRound(r, "splitfed"));
  assert.equal(view.subscriberCount, 0, "slow subscriber released");
  // What was queued before the drop can still be read, then the stream ends.
  const text = await new Response(res.body).text();
  assert.ok(text.split("event: round").length - 1 <= 8);
  assert.equal((await call(a, "GET", "/healthz")).status, 200);
});

Deno.test("events: HEAD answers the headers without opening a stream", async () => {
  const { view } = seededView(1);
  const res = await call(app(view), "HEAD", "/api/v1/events");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(view.subscriberCount, 0);
});

Deno.test("events: a view whose subscriber limit is reached answers 503, not 500", async () => {
  const { view } = seededView(1);
  for (let i = 0; i < view.limits.subscribers; i++) view.subscribe(() => {});
  const a = app(view, { sseClientsMax: 1000 });
  await assertError(await call(a, "GET", "/api/v1/events"), 503, "unavailable");
  const again = await call(a, "GET", "/api/v1/events");
  await assertError(again, 503, "unavailable");
});
