// A route is defined once: method, path, auth, the schemas of its inputs and outputs, its body
// limit and its handler. From that list come both the Hono registrations (with validation) and
// the OpenAPI document, so what is documented is what is enforced.
import type { Context, Hono } from "hono";
import { ApiError, type ErrorStatus } from "./errors.ts";
import { collectComponents, type Issue, type JsonSchema, ref, type Schema } from "./schema.ts";
import { ErrorBody } from "./api_schemas.ts";

export type Auth = "public" | "read" | "admin";

type ObjectSchema<T> = Schema<T> & { shape: Record<string, Schema<unknown>> };

export interface ResponseSpec {
  description: string;
  schema?: Schema<unknown>;
  /** Default `application/json` when a schema is given. */
  contentType?: string;
}

export interface HandlerInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  c: Context;
}

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: "get" | "post";
  /** OpenAPI form, e.g. `/api/v1/devices/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  auth: Auth;
  params?: ObjectSchema<P>;
  query?: ObjectSchema<Q>;
  body?: Schema<B>;
  /** Largest accepted request body. Routes without `body` refuse any (400, or 413 past 1 KiB). */
  bodyLimitBytes?: number;
  responses: Record<number, ResponseSpec>;
  /** Extra error statuses this route can answer, beyond the ones derived from its inputs. */
  errors?: ErrorStatus[];
  /** Query keys accepted but not validated (e.g. `access_token` on the event stream). */
  passThroughQuery?: string[];
  handler(input: HandlerInput<P, Q, B>): Response | Promise<Response>;
}

/** Identity with inference, so each handler sees typed params, query and body. */
export function route<P = Record<string, never>, Q = Record<string, never>, B = undefined>(
  spec: RouteSpec<P, Q, B>,
): RouteSpec<P, Q, B> {
  return spec;
}

export interface Authorizer {
  (c: Context, auth: Auth, allowQueryToken: boolean): void;
}

export function register(app: Hono, routes: RouteSpec[], authorize: Authorizer): void {
  for (const spec of routes) {
    const honoPath = spec.path.replace(/\{(\w+)\}/g, ":$1");
    app.on(spec.method.toUpperCase(), honoPath, async (c) => {
      authorize(c, spec.auth, spec.passThroughQuery?.includes("access_token") ?? false);
      const params = validate(spec.params, c.req.param(), "path", true, 400);
      const query = validate(
        spec.query,
        readQuery(c.req.url, spec.passThroughQuery ?? []),
        "query",
        true,
        400,
      );
      const body = spec.body
        ? await readJsonBody(c.req.raw, spec)
        : await refuseBody(c.req.raw, spec);
      return spec.handler({ params, query, body, c } as HandlerInput<unknown, unknown, unknown>);
    });
  }
}

/** Allowed methods for a path that matched no route, for 405 versus 404. */
export function allowedMethods(routes: RouteSpec[], pathname: string): string[] {
  const out = new Set<string>();
  for (const r of routes) {
    const re = new RegExp(
      "^" + r.path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{\w+\}/g, "[^/]+") + "$",
    );
    if (re.test(pathname)) {
      out.add(r.method.toUpperCase());
      if (r.method === "get") out.add("HEAD");
    }
  }
  return [...out];
}

function validate<T>(
  schema: ObjectSchema<T> | undefined,
  input: Record<string, unknown>,
  where: string,
  coerce: boolean,
  status: ErrorStatus,
): T | Record<string, never> {
  if (!schema) {
    const extra = Object.keys(input);
    if (extra.length > 0) {
      throw new ApiError(status, `invalid_${where}`, `unexpected ${where} parameters`, {
        issues: extra.slice(0, 20).map((k): Issue => ({
          path: `${where}.${k}`,
          message: "unknown field",
        })),
      });
    }
    return {};
  }
  const r = schema.parse(input, where, coerce);
  if (!r.ok) {
    throw new ApiError(
      status,
      `invalid_${where}`,
      `${where} failed validation: ${r.issues[0].path} ${r.issues[0].message}`,
      {
        issues: r.issues,
      },
    );
  }
  return r.value;
}

function readQuery(url: string, passThrough: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const issues: Issue[] = [];
  for (const [k, v] of new URL(url).searchParams) {
    if (passThrough.includes(k)) continue;
    if (Object.hasOwn(out, k)) issues.push({ path: `query.${k}`, message: "given more than once" });
    out[k] = v;
  }
  if (issues.length > 0) {
    throw new ApiError(400, "invalid_query", "a query parameter was repeated", { issues });
  }
  return out;
}

const STRAY_BODY_LIMIT = 1024;

async function refuseBody(req: Request, spec: RouteSpec): Promise<undefined> {
  if (!req.body) return undefined;
  // Read a little, so a stray body is named as such (400) rather than as too large.
  const bytes = await readLimited(req, spec.bodyLimitBytes ?? STRAY_BODY_LIMIT);
  if (bytes.byteLength > 0) {
    throw new ApiError(400, "unexpected_body", "this route takes no request body");
  }
  return undefined;
}

async function readJsonBody(req: Request, spec: RouteSpec): Promise<unknown> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new ApiError(415, "unsupported_media_type", "send the body as application/json", {
      got: type || null,
    });
  }
  const bytes = await readLimited(req, spec.bodyLimitBytes ?? 0);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "malformed_json", "body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, "malformed_json", "body is not valid JSON", {
      parser: String((e as Error).message).slice(0, 200),
    });
  }
  const r = spec.body!.parse(value, "body", false);
  if (!r.ok) {
    throw new ApiError(
      400,
      "invalid_body",
      `body failed validation: ${r.issues[0].path} ${r.issues[0].message}`,
      {
        issues: r.issues,
      },
    );
  }
  return r.value;
}

/** Reads at most `limit` bytes; refuses early on a declared length and stops reading past the limit. */
export async function readLimited(req: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () =>
    new ApiError(413, "payload_too_large", `request body larger than ${limit} bytes`, {
      limitBytes: limit,
    });
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge();
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const ch of chunks) {
    out.set(ch, offset);
    offset += ch.byteLength;
  }
  return out;
}

// ---- OpenAPI ----

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
}

const ERROR_TEXT: Record<number, string> = {
  400:
    "Invalid input (`invalid_path`, `invalid_query`, `invalid_body`, `malformed_json`, `unexpected_body`).",
  401: "Missing or wrong bearer token (`unauthorized`).",
  403: "Token lacks the admin right, or admin is disabled (`forbidden`, `admin_disabled`).",
  404: "No such resource (`not_found`).",
  405: "Method not allowed.",
  409: "The node refused the command (`conflict`, `rejected`).",
  413: "Body larger than this route's limit (`payload_too_large`).",
  415: "Body is not `application/json` (`unsupported_media_type`).",
  500: "Unexpected failure (`internal`); details are in the node's log.",
  501: "This node's role does not provide this (`not_available`).",
  503: "Not ready, or too many event subscribers (`unavailable`, `too_many_subscribers`).",
};

export function openApiDocument(
  routes: RouteSpec[],
  info: DocumentInfo,
  readProtected: boolean,
): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  const roots: Schema<unknown>[] = [ErrorBody];
  for (const r of routes) {
    const parameters: unknown[] = [];
    for (const [where, schema] of [["path", r.params], ["query", r.query]] as const) {
      if (!schema) continue;
      for (const [name, s] of Object.entries(schema.shape)) {
        roots.push(s);
        parameters.push({
          name,
          in: where,
          required: where === "path" || !s.optional,
          schema: ref(s),
          ...(s.json.description ? { description: s.json.description } : {}),
        });
      }
    }
    if (r.passThroughQuery?.includes("access_token")) {
      parameters.push({
        name: "access_token",
        in: "query",
        required: false,
        schema: { type: "string" },
        description: "Bearer token for clients that cannot set headers (EventSource).",
      });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, spec] of Object.entries(r.responses)) {
      if (spec.schema) roots.push(spec.schema);
      responses[status] = {
        description: spec.description,
        ...(spec.schema || spec.contentType
          ? {
            content: {
              [spec.contentType ?? "application/json"]: {
                schema: spec.schema ? ref(spec.schema) : {},
              },
            },
          }
          : {}),
      };
    }
    const errors = new Set<number>([500, ...(r.errors ?? [])]);
    if (r.params || r.query || r.body) errors.add(400);
    if (r.auth === "admin" || (r.auth === "read" && readProtected)) errors.add(401);
    if (r.auth === "admin") errors.add(403);
    if (r.body) [413, 415].forEach((s) => errors.add(s));
    for (const s of [...errors].sort()) {
      responses[String(s)] = {
        description: ERROR_TEXT[s] ?? "Error.",
        content: { "application/json": { schema: ref(ErrorBody) } },
      };
    }
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      parameters,
      responses,
    };
    if (r.body) {
      roots.push(r.body);
      op.requestBody = {
        required: true,
        description: `At most ${r.bodyLimitBytes} bytes.`,
        content: { "application/json": { schema: ref(r.body) } },
      };
    }
    if (r.auth === "admin") op.security = [{ adminToken: [] }];
    else if (r.auth === "read") {
      op.security = readProtected ? [{ readToken: [] }, { adminToken: [] }] : [];
    } else op.security = [];
    (paths[r.path] ??= {})[r.method] = op;
  }
  return {
    openapi: "3.0.3",
    info,
    paths,
    components: {
      schemas: collectComponents(roots),
      securitySchemes: {
        readToken: {
          type: "http",
          scheme: "bearer",
          description: "The read token from the node's config.",
        },
        adminToken: {
          type: "http",
          scheme: "bearer",
          description: "The admin token from the node's config.",
        },
      },
    },
  };
}
