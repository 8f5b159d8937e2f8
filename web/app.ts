// createApp: the node's HTTP API and UI as one Hono value. The runtime adapter serves `app.fetch`;
// tests call it directly. No I/O here beyond answering requests.
import { Hono } from "hono";
import type { Context } from "hono";
import { ASSETS } from "./assets.ts";
import { ApiError, errorResponse, toErrorResponse } from "./errors.ts";
import { createNodeMetrics, type NodeMetrics } from "./metrics.ts";
import type { NodeView } from "./node_view.ts";
import { allowedMethods, type Auth, openApiDocument, register } from "./route.ts";
import { buildRoutes } from "./routes.ts";
import { logger } from "../util/log.ts";

const log = logger("web");

export interface AppOptions {
  version: string;
  /** Bearer token for admin actions. Without it admin routes answer 403 `admin_disabled`. */
  adminToken?: string;
  /** Bearer token for read-only views. Without it they are public. The admin token also reads. */
  readToken?: string;
  metrics?: NodeMetrics;
  /** Open event streams at most; the next one gets 503. */
  sseClientsMax?: number;
  sseHeartbeatMs?: number;
  /** Unsent events per stream before that client is dropped. */
  sseQueueMax?: number;
  /** Clock for uptime; tests pin it. */
  now?: () => number;
  /** Where unexpected errors go (the message is not sent to the client). */
  onUnexpectedError?: (err: unknown, req: Request) => void;
}

export const CSP =
  "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

export function createApp(view: NodeView, options: AppOptions): Hono {
  for (
    const [name, token] of [["adminToken", options.adminToken], [
      "readToken",
      options.readToken,
    ]] as const
  ) {
    if (token !== undefined && token.length < 16) {
      throw new RangeError(`${name} must be at least 16 characters`);
    }
  }
  const metrics = options.metrics ?? createNodeMetrics();
  const onUnexpected = options.onUnexpectedError ??
    ((err: unknown, req: Request) =>
      log.error("request failed", {
        method: req.method,
        path: new URL(req.url).pathname,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      }));
  const routes = buildRoutes(view, {
    version: options.version,
    metrics,
    now: options.now ?? Date.now,
    sseClientsMax: options.sseClientsMax ?? 32,
    sseHeartbeatMs: options.sseHeartbeatMs ?? 15_000,
    sseQueueMax: options.sseQueueMax ?? 256,
    document: () => openapi,
  });
  const openapi = openApiDocument(routes, {
    title: "iomt-sfl node API",
    version: options.version,
    description:
      "Status, training rounds, devices, ledger, validators, model and detection of one " +
      "iomt-sfl node. Every error is `{error: {code, message, details}}`.",
  }, options.readToken !== undefined);

  const app = new Hono({ strict: true });

  app.use("*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
    metrics.httpRequests.inc({ code: `${Math.floor(c.res.status / 100)}xx` });
  });

  // UI: a fixed table of embedded files; any other path under /ui/ is a 404 (no traversal possible).
  const serveAsset = (c: Context) => {
    const path = new URL(c.req.url).pathname;
    const asset = ASSETS.get(path === "/index.html" ? "/" : path);
    if (!asset) throw new ApiError(404, "not_found", `no such file: ${path.slice(0, 200)}`);
    const headers: Record<string, string> = {
      "content-type": asset.contentType,
      etag: asset.etag,
      "cache-control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    };
    if (c.req.header("if-none-match") === asset.etag) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(asset.body, { status: 200, headers });
  };
  app.get("/", serveAsset);
  app.get("/index.html", serveAsset);
  app.get("/ui/*", serveAsset);
  app.get("/favicon.ico", (c) => c.redirect("/ui/favicon.svg", 301));

  register(app, routes, authorizer(options));

  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const allow = allowedMethods(routes, path);
    if (allow.length > 0) {
      return errorResponse(405, "method_not_allowed", `${c.req.method} is not allowed here`, {
        allow,
      }, {
        allow: allow.join(", "),
      });
    }
    return errorResponse(404, "not_found", `no route for ${c.req.method} ${path.slice(0, 200)}`);
  });
  app.onError((err, c) => {
    const { response, unexpected } = toErrorResponse(err);
    if (unexpected) onUnexpected(err, c.req.raw);
    return response;
  });
  return app;
}

function authorizer(options: AppOptions) {
  return (c: Context, auth: Auth, allowQueryToken: boolean) => {
    if (auth === "public") return;
    if (auth === "read" && options.readToken === undefined) return;
    if (auth === "admin" && options.adminToken === undefined) {
      throw new ApiError(
        403,
        "admin_disabled",
        "admin actions are disabled: no admin token is configured",
      );
    }
    const token = bearer(c.req.header("authorization")) ??
      (allowQueryToken
        ? new URL(c.req.url).searchParams.get("access_token") ?? undefined
        : undefined);
    const challenge = { "www-authenticate": 'Bearer realm="iomt-sfl"' };
    if (token === undefined) {
      throw new ApiError(401, "unauthorized", "a bearer token is required", null, challenge);
    }
    const isAdmin = options.adminToken !== undefined && sameToken(token, options.adminToken);
    if (auth === "admin") {
      if (isAdmin) return;
      if (options.readToken !== undefined && sameToken(token, options.readToken)) {
        throw new ApiError(403, "forbidden", "this token may read but not administer");
      }
      throw new ApiError(401, "unauthorized", "wrong token", null, challenge);
    }
    if (isAdmin || sameToken(token, options.readToken!)) return;
    throw new ApiError(401, "unauthorized", "wrong token", null, challenge);
  };
}

function bearer(header: string | undefined): string | undefined {
  const m = header?.match(/^Bearer +([^\s]+) *$/i);
  return m?.[1];
}

/** Compares without an early exit, so response time does not reveal how much of a guess matched. */
function sameToken(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}
