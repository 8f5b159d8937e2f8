// A minimal libSQL server for tests: Hrana v2 over HTTP (POST /v2/pipeline, JSON), backed by one
// local SQLite connection. Enough for @libsql/client's http:// and libsql:// paths (execute,
// batch with conditions, close), listening on 127.0.0.1 only. Not a real sqld: no auth, no
// concurrency between streams beyond one connection, one baton at a time.
import Database from "libsql";
import { Buffer } from "node:buffer";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

type HranaValue =
  | { type: "null" }
  | { type: "integer"; value: string }
  | { type: "float"; value: number }
  | { type: "text"; value: string }
  | { type: "blob"; base64: string };

interface HranaStmt {
  sql?: string;
  /** A statement stored earlier with `store_sql` (the client caches repeated SQL). */
  sql_id?: number;
  args?: HranaValue[];
  named_args?: { name: string; value: HranaValue }[];
  want_rows?: boolean;
}

type Cond =
  | { type: "ok"; step: number }
  | { type: "error"; step: number }
  | { type: "not"; cond: Cond }
  | { type: "and"; conds: Cond[] }
  | { type: "or"; conds: Cond[] }
  | { type: "is_autocommit" };

interface Db {
  prepare(sql: string): {
    reader: boolean;
    raw(on: boolean): unknown;
    safeIntegers(on: boolean): unknown;
    all(...args: unknown[]): unknown[][];
    run(...args: unknown[]): { changes: number; lastInsertRowid: number | bigint };
    columns(): { name: string; type: string | null }[];
  };
  inTransaction: boolean;
  close(): void;
}

const REQUEST_BYTES_MAX = 64 * 1024 * 1024;

export interface HranaServer {
  url: string;
  /** Requests served, by request type; lets a test prove it really went over HTTP. */
  counts: Map<string, number>;
  close(): Promise<void>;
}

export async function startHranaServer(path: string): Promise<HranaServer> {
  const db = new (Database as unknown as new (path: string) => Db)(path);
  const counts = new Map<string, number>();
  const storedSql = new Map<number, string>();
  const server: Server = createServer((req, res) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    req.on("data", (chunk: Uint8Array) => {
      size += chunk.length;
      if (size <= REQUEST_BYTES_MAX) chunks.push(chunk);
    });
    req.on("end", () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method === "GET" && (req.url === "/v2" || req.url === "/")) return send(200, {});
      if (req.method !== "POST" || req.url !== "/v2/pipeline" || size > REQUEST_BYTES_MAX) {
        return send(404, { message: "not found" });
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const results = body.requests.map((request: { type: string }) => {
        counts.set(request.type, (counts.get(request.type) ?? 0) + 1);
        try {
          return { type: "ok", response: handle(db, storedSql, request) };
        } catch (error) {
          return {
            type: "error",
            error: { message: (error as Error).message, code: "SQLITE_ERROR" },
          };
        }
      });
      send(200, { baton: null, base_url: null, results });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        db.close();
      }),
  };
}

function handle(db: Db, storedSql: Map<number, string>, request: Record<string, unknown>): unknown {
  switch (request.type) {
    case "store_sql":
      storedSql.set(request.sql_id as number, request.sql as string);
      return { type: "store_sql" };
    case "close_sql":
      storedSql.delete(request.sql_id as number);
      return { type: "close_sql" };
    case "execute":
      return { type: "execute", result: execute(db, storedSql, request.stmt as HranaStmt) };
    case "batch": {
      const steps = (request.batch as { steps: { condition?: Cond; stmt: HranaStmt }[] }).steps;
      const results: unknown[] = [];
      const errors: unknown[] = [];
      const outcome: ("ok" | "error" | "skipped")[] = [];
      for (const step of steps) {
        if (step.condition && !evaluate(db, step.condition, outcome)) {
          results.push(null);
          errors.push(null);
          outcome.push("skipped");
          continue;
        }
        try {
          results.push(execute(db, storedSql, step.stmt));
          errors.push(null);
          outcome.push("ok");
        } catch (error) {
          results.push(null);
          errors.push({ message: (error as Error).message, code: "SQLITE_CONSTRAINT" });
          outcome.push("error");
        }
      }
      return { type: "batch", result: { step_results: results, step_errors: errors } };
    }
    case "sequence":
      execute(db, storedSql, { sql: request.sql as string });
      return { type: "sequence" };
    case "get_autocommit":
      return { type: "get_autocommit", is_autocommit: !db.inTransaction };
    case "close":
      return { type: "close" };
    default:
      throw new Error(`unsupported request ${String(request.type)}`);
  }
}

function evaluate(db: Db, cond: Cond, outcome: string[]): boolean {
  switch (cond.type) {
    case "ok":
      return outcome[cond.step] === "ok";
    case "error":
      return outcome[cond.step] === "error";
    case "not":
      return !evaluate(db, cond.cond, outcome);
    case "and":
      return cond.conds.every((c) => evaluate(db, c, outcome));
    case "or":
      return cond.conds.some((c) => evaluate(db, c, outcome));
    case "is_autocommit":
      return !db.inTransaction;
  }
}

function execute(db: Db, storedSql: Map<number, string>, stmt: HranaStmt): unknown {
  if (stmt.named_args && stmt.named_args.length > 0) throw new Error("named args not supported");
  const sql = stmt.sql ?? (stmt.sql_id === undefined ? undefined : storedSql.get(stmt.sql_id));
  if (sql === undefined) throw new Error("statement has neither sql nor a known sql_id");
  const statement = db.prepare(sql);
  const args = (stmt.args ?? []).map(fromValue);
  if (statement.reader) {
    statement.raw(true);
    statement.safeIntegers(true);
    const rows = statement.all(...args);
    return {
      cols: statement.columns().map((c) => ({ name: c.name, decltype: c.type })),
      rows: rows.map((row) => row.map(toValue)),
      affected_row_count: 0,
      last_insert_rowid: null,
    };
  }
  const info = statement.run(...args);
  return {
    cols: [],
    rows: [],
    affected_row_count: info.changes,
    last_insert_rowid: String(info.lastInsertRowid),
  };
}

function fromValue(value: HranaValue): unknown {
  switch (value.type) {
    case "null":
      return null;
    case "integer":
      return BigInt(value.value);
    case "float":
      return value.value;
    case "text":
      return value.value;
    case "blob":
      return Buffer.from(value.base64, "base64");
  }
}

function toValue(value: unknown): HranaValue {
  if (value === null || value === undefined) return { type: "null" };
  if (typeof value === "bigint") return { type: "integer", value: value.toString() };
  if (typeof value === "number") {
    return Number.isInteger(value)
      ? { type: "integer", value: String(value) }
      : { type: "float", value };
  }
  if (typeof value === "string") return { type: "text", value };
  if (value instanceof Uint8Array) {
    return { type: "blob", base64: Buffer.from(value).toString("base64") };
  }
  throw new Error(`cannot encode ${typeof value}`);
}
