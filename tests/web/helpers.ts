// Requests through app.fetch (no port) and checks of the one error shape.
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { type AppOptions, createApp } from "../../web/app.ts";
import type { NodeView } from "../../web/node_view.ts";
import { ADMIN_TOKEN, T0 } from "./fixtures.ts";

export const BASE = "http://node.test";

export function app(view: NodeView, options: Partial<AppOptions> = {}): Hono {
  return createApp(view, {
    version: "0.1.0-test",
    adminToken: ADMIN_TOKEN,
    now: () => T0 + 3_600_000,
    onUnexpectedError: () => {},
    ...options,
  });
}

export async function call(
  a: Hono,
  method: string,
  path: string,
  init: { body?: BodyInit; json?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers["content-type"] ??= "application/json";
  }
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  return await a.fetch(new Request(BASE + path, { method, headers, body }));
}

export async function getJson<T = Record<string, unknown>>(
  a: Hono,
  path: string,
  token?: string,
): Promise<T> {
  const res = await call(a, "GET", path, { token });
  assert.equal(res.status, 200, `${path}: ${res.status} ${await res.clone().text()}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return await res.json() as T;
}

/** Asserts the status, the `{error: {code, message, details}}` shape, and the code. */
export async function assertError(
  res: Response,
  status: number,
  code: string,
): Promise<{ details: unknown }> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "details", "message"]);
  assert.equal(body.error.code, code, text);
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
  return body.error;
}
