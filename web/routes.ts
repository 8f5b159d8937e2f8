// Every API route, each defined once (see route.ts). Handlers only translate between HTTP and
// the NodeView; a view method that is absent answers 501 `not_available`.
import * as S from "./api_schemas.ts";
import { ApiError, errorResponse, notAvailable } from "./errors.ts";
import { type NodeMetrics, PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
import type { AdminResult, NodeView } from "./node_view.ts";
import { route, type RouteSpec } from "./route.ts";
import {
  array,
  boolean,
  integer,
  type JsonSchema,
  literal,
  object,
  optional,
  string,
} from "./schema.ts";
import { eventStream } from "./sse.ts";

export interface RouteContext {
  version: string;
  metrics: NodeMetrics;
  now: () => number;
  sseClientsMax: number;
  sseHeartbeatMs: number;
  sseQueueMax: number;
  document: () => JsonSchema;
}

export const PAGE_LIMIT_MAX = 500;
const limit = optional(
  integer({ minimum: 1, maximum: PAGE_LIMIT_MAX, description: "Page size (default 100)." }),
);
const ADMIN_BODY_LIMIT = 1024;
export const DETECT_BODY_LIMIT = 1024 * 1024;

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  "x-accel-buffering": "no",
};

const json = (data: unknown, status = 200) =>
  new Response(JSON.stringify(data), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw notAvailable(what);
  return value;
}

function found<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new ApiError(404, "not_found", `${what} not found`);
  return value;
}

function adminReply(result: AdminResult): Response {
  if (!result.accepted) return errorResponse(409, "rejected", result.message);
  return json(result, 202);
}

export function buildRoutes(view: NodeView, ctx: RouteContext): RouteSpec[] {
  let sseClients = 0;

  const statusNow = async () => {
    const s = await view.status();
    const started = Date.parse(s.startedAt);
    const uptimeSeconds = Number.isFinite(started) ? Math.max(0, (ctx.now() - started) / 1000) : 0;
    return { ...s, version: ctx.version, uptimeSeconds };
  };

  const routes = [
    route({
      method: "get",
      path: "/healthz",
      operationId: "health",
      summary: "Liveness: the process answers.",
      tag: "operations",
      auth: "public",
      responses: { 200: { description: "Alive.", schema: object({ status: literal(["ok"]) }) } },
      handler: () => json({ status: "ok" }),
    }),
    route({
      method: "get",
      path: "/readyz",
      operationId: "ready",
      summary: "Readiness: the node has loaded its state and serves traffic.",
      tag: "operations",
      auth: "public",
      responses: { 200: { description: "Ready.", schema: object({ ready: boolean() }) } },
      errors: [503],
      handler: async () => {
        const r = view.ready ? await view.ready() : { ready: true };
        if (!r.ready) return errorResponse(503, "not_ready", r.reason ?? "not ready yet");
        return json({ ready: true });
      },
    }),
    route({
      method: "get",
      path: "/metrics",
      operationId: "metrics",
      summary: "Prometheus text metrics.",
      tag: "operations",
      auth: "read",
      responses: {
        200: { description: "Text exposition format 0.0.4.", contentType: "text/plain" },
      },
      handler: () =>
        new Response(ctx.metrics.registry.render(), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
        }),
    }),
    route({
      method: "get",
      path: "/openapi.json",
      operationId: "openapi",
      summary: "This document.",
      tag: "operations",
      auth: "public",
      responses: { 200: { description: "OpenAPI 3.0 document.", contentType: "application/json" } },
      handler: () => json(ctx.document()),
    }),
    route({
      method: "get",
      path: "/api/v1/status",
      operationId: "getStatus",
      summary: "Role, version, peers and uptime.",
      tag: "status",
      auth: "read",
      responses: { 200: { description: "Node status.", schema: S.Status } },
      handler: async () => json(await statusNow()),
    }),
    route({
      method: "get",
      path: "/api/v1/rounds",
      operationId: "listRounds",
      summary: "Rounds with their metrics, newest first; both modes after `--compare`.",
      tag: "training",
      auth: "read",
      query: object({
        mode: optional(S.RoundSummary.shape.mode),
        before: optional(integer({ minimum: 0, description: "Only rounds below this number." })),
        limit,
      }),
      responses: {
        200: {
          description: "Rounds.",
          schema: object({ rounds: array(S.RoundSummary, { maxItems: 2 * PAGE_LIMIT_MAX }) }),
        },
      },
      errors: [501],
      handler: async ({ query }) => {
        const rounds = need(view.rounds, "training rounds");
        return json({
          rounds: await rounds.call(view, {
            mode: query.mode,
            beforeRound: query.before,
            limit: query.limit ?? 100,
          }),
        });
      },
    }),
    route({
      method: "get",
      path: "/api/v1/rounds/{round}",
      operationId: "getRound",
      summary: "One round with its confusion matrix.",
      tag: "training",
      auth: "read",
      params: object({ round: integer({ minimum: 0 }) }),
      query: object({ mode: optional(S.RoundSummary.shape.mode) }),
      responses: { 200: { description: "The round.", schema: S.RoundDetail } },
      errors: [404, 501],
      handler: async ({ params, query }) => {
        const get = need(view.round, "training rounds");
        const mode = query.mode ?? "splitfed";
        return json(
          found(await get.call(view, params.round, mode), `round ${params.round} (${mode})`),
        );
      },
    }),
    route({
      method: "get",
      path: "/api/v1/devices",
      operationId: "listDevices",
      summary: "Devices with reputation, rewards, flags and last seen.",
      tag: "devices",
      auth: "read",
      responses: {
        200: {
          description: "Devices.",
          schema: object({ devices: array(S.Device, { maxItems: 10_000 }) }),
        },
      },
      errors: [501],
      handler: async () => json({ devices: await need(view.devices, "devices").call(view) }),
    }),
    route({
      method: "get",
      path: "/api/v1/devices/{id}",
      operationId: "getDevice",
      summary: "One device.",
      tag: "devices",
      auth: "read",
      params: object({ id: S.Device.shape.id }),
      responses: { 200: { description: "The device.", schema: S.Device } },
      errors: [404, 501],
      handler: async ({ params }) =>
        json(
          found(await need(view.device, "devices").call(view, params.id), `device ${params.id}`),
        ),
    }),
    route({
      method: "get",
      path: "/api/v1/ledger/blocks",
      operationId: "listBlocks",
      summary: "Blocks, newest first, each with its verification mark.",
      tag: "ledger",
      auth: "read",
      query: object({
        before: optional(integer({ minimum: 0, description: "Only blocks below this height." })),
        limit,
      }),
      responses: {
        200: {
          description: "Blocks.",
          schema: object({ blocks: array(S.BlockSummary, { maxItems: PAGE_LIMIT_MAX }) }),
        },
      },
      errors: [501],
      handler: async ({ query }) =>
        json({
          blocks: await need(view.blocks, "the ledger").call(view, {
            beforeHeight: query.before,
            limit: query.limit ?? 100,
          }),
        }),
    }),
    route({
      method: "get",
      path: "/api/v1/ledger/blocks/{height}",
      operationId: "getBlock",
      summary: "One block with its transactions, certificate and verification result.",
      tag: "ledger",
      auth: "read",
      params: object({ height: integer({ minimum: 0 }) }),
      responses: { 200: { description: "The block.", schema: S.BlockDetail } },
      errors: [404, 501],
      handler: async ({ params }) =>
        json(
          found(
            await need(view.block, "the ledger").call(view, params.height),
            `block ${params.height}`,
          ),
        ),
    }),
    route({
      method: "get",
      path: "/api/v1/ledger/transactions/{id}",
      operationId: "getTransaction",
      summary: "One transaction by id.",
      tag: "ledger",
      auth: "read",
      params: object({ id: string({ minLength: 1, maxLength: 128, pattern: /^[0-9a-f]+$/ }) }),
      responses: { 200: { description: "The transaction.", schema: S.Transaction } },
      errors: [404, 501],
      handler: async ({ params }) =>
        json(
          found(
            await need(view.transaction, "the ledger").call(view, params.id),
            `transaction ${params.id}`,
          ),
        ),
    }),
    route({
      method: "get",
      path: "/api/v1/ledger/certificates",
      operationId: "listCertificates",
      summary: "Quorum certificates of global models, newest first.",
      tag: "ledger",
      auth: "read",
      query: object({ round: optional(integer({ minimum: 0 })), limit }),
      responses: {
        200: {
          description: "Certificates.",
          schema: object({ certificates: array(S.Certificate, { maxItems: PAGE_LIMIT_MAX }) }),
        },
      },
      errors: [501],
      handler: async ({ query }) =>
        json({
          certificates: await need(view.certificates, "the ledger").call(view, {
            round: query.round,
            limit: query.limit ?? 100,
          }),
        }),
    }),
    route({
      method: "get",
      path: "/api/v1/validators",
      operationId: "getValidators",
      summary: "PBFT view, height, checkpoint and each validator's health.",
      tag: "validators",
      auth: "read",
      responses: { 200: { description: "Validators' state.", schema: S.Validators } },
      errors: [404, 501],
      handler: async () =>
        json(found(await need(view.validators, "validator state").call(view), "validator state")),
    }),
    route({
      method: "get",
      path: "/api/v1/models/global",
      operationId: "getGlobalModel",
      summary: "The current global model's round, hash and quorum certificate.",
      tag: "models",
      auth: "read",
      responses: { 200: { description: "Model metadata.", schema: S.ModelInfo } },
      errors: [404, 501],
      handler: async () =>
        json(
          found(await need(view.globalModel, "the global model").call(view), "global model").info,
        ),
    }),
    route({
      method: "get",
      path: "/api/v1/models/global/weights",
      operationId: "downloadGlobalModel",
      summary: "The global model's bytes; verify them against `sha256` in the certificate.",
      tag: "models",
      auth: "read",
      responses: {
        200: {
          description: "Weights; headers `x-model-round` and `x-model-sha256` repeat the metadata.",
          contentType: "application/octet-stream",
        },
      },
      errors: [404, 501],
      handler: async () => {
        const m = found(
          await need(view.globalModel, "the global model").call(view),
          "global model",
        );
        // Copy only when the bytes sit in a shared buffer, which a Response cannot take.
        const body = m.bytes.buffer instanceof ArrayBuffer
          ? m.bytes as Uint8Array<ArrayBuffer>
          : m.bytes.slice();
        return new Response(body, {
          headers: {
            "content-type": "application/octet-stream",
            "content-disposition": `attachment; filename="global-model-r${m.info.round}.bin"`,
            "cache-control": "no-store",
            "x-model-round": String(m.info.round),
            "x-model-sha256": m.info.sha256,
          },
        });
      },
    }),
    route({
      method: "post",
      path: "/api/v1/detect",
      operationId: "detect",
      summary: "Score preprocessed flows with the current global model.",
      tag: "detection",
      auth: "read",
      body: S.DetectRequest,
      bodyLimitBytes: DETECT_BODY_LIMIT,
      responses: {
        200: { description: "One result per flow, in order.", schema: S.DetectResponse },
      },
      errors: [501, 503],
      handler: async ({ body }) => {
        const detect = need(view.detect, "detection");
        const out = await detect.call(view, body.flows);
        if (out.results.length !== body.flows.length) {
          throw new Error(
            `detector returned ${out.results.length} results for ${body.flows.length} flows`,
          );
        }
        return json(out);
      },
    }),
    route({
      method: "get",
      path: "/api/v1/events",
      operationId: "events",
      summary:
        "Server-sent events: `hello` (status), `status`, `round`, `block`, `device`, `validator`.",
      tag: "status",
      auth: "read",
      passThroughQuery: ["access_token"],
      responses: {
        200: {
          description: "`text/event-stream`; `data` is the JSON of the named schema.",
          contentType: "text/event-stream",
        },
      },
      errors: [501, 503],
      handler: async ({ c }) => {
        const subscribe = need(view.subscribe, "live events");
        // Hono answers HEAD by running GET and dropping the body unread; a stream opened for it
        // would never be cancelled, so HEAD gets the headers and nothing is subscribed.
        if (c.req.method === "HEAD") return new Response(null, { headers: SSE_HEADERS });
        if (sseClients >= ctx.sseClientsMax) {
          return errorResponse(
            503,
            "too_many_subscribers",
            `at most ${ctx.sseClientsMax} event streams`,
            null,
            {
              "retry-after": "5",
            },
          );
        }
        const hello = await statusNow();
        sseClients++;
        ctx.metrics.sseClients.set(sseClients);
        const onClose = () => {
          sseClients--;
          ctx.metrics.sseClients.set(sseClients);
        };
        let stream: ReadableStream<Uint8Array>;
        try {
          stream = eventStream(subscribe.bind(view), hello, {
            heartbeatMs: ctx.sseHeartbeatMs,
            queueMax: ctx.sseQueueMax,
            onClose,
          });
        } catch (err) {
          onClose();
          throw err;
        }
        return new Response(stream, { headers: SSE_HEADERS });
      },
    }),
    route({
      method: "post",
      path: "/api/v1/admin/rounds/start",
      operationId: "startRound",
      summary: "Start training rounds.",
      tag: "admin",
      auth: "admin",
      body: object({
        rounds: optional(integer({ minimum: 1, maximum: 10_000, description: "How many rounds." })),
      }),
      bodyLimitBytes: ADMIN_BODY_LIMIT,
      responses: { 202: { description: "Accepted.", schema: S.AdminResult } },
      errors: [409, 501],
      handler: async ({ body }) =>
        adminReply(await need(view.admin, "admin actions").startRound({ rounds: body.rounds })),
    }),
    route({
      method: "post",
      path: "/api/v1/admin/rounds/stop",
      operationId: "stopRound",
      summary: "Stop after the current round.",
      tag: "admin",
      auth: "admin",
      responses: { 202: { description: "Accepted.", schema: S.AdminResult } },
      errors: [409, 501],
      handler: async () => adminReply(await need(view.admin, "admin actions").stopRound()),
    }),
    route({
      method: "post",
      path: "/api/v1/admin/devices/{id}/quarantine",
      operationId: "quarantineDevice",
      summary: "Quarantine a device: its updates are ignored until readmitted.",
      tag: "admin",
      auth: "admin",
      params: object({ id: S.Device.shape.id }),
      body: object({
        reason: string({ minLength: 1, maxLength: 200, description: "Recorded on the ledger." }),
      }),
      bodyLimitBytes: ADMIN_BODY_LIMIT,
      responses: { 202: { description: "Accepted.", schema: S.AdminResult } },
      errors: [404, 409, 501],
      handler: async ({ params, body }) => {
        const admin = need(view.admin, "admin actions");
        if (view.device) found(await view.device(params.id), `device ${params.id}`);
        return adminReply(await admin.quarantine(params.id, body.reason));
      },
    }),
    route({
      method: "post",
      path: "/api/v1/admin/devices/{id}/readmit",
      operationId: "readmitDevice",
      summary: "Readmit a quarantined device.",
      tag: "admin",
      auth: "admin",
      params: object({ id: S.Device.shape.id }),
      responses: { 202: { description: "Accepted.", schema: S.AdminResult } },
      errors: [404, 409, 501],
      handler: async ({ params }) => {
        const admin = need(view.admin, "admin actions");
        if (view.device) found(await view.device(params.id), `device ${params.id}`);
        return adminReply(await admin.readmit(params.id));
      },
    }),
  ];
  return routes as unknown as RouteSpec[];
}
