// The validator's HTTP surface as one Hono value (served by runtime/adapter.ts, tested through
// app.fetch). Peer and client endpoints live under /v1; the node's web API and UI (web/) answer
// everything else. Every body is read with a hard byte limit before it is parsed.
import { Hono } from "hono";
import { isHex } from "../../ledger/crypto/bytes.ts";
import { LedgerError } from "../../ledger/chain/errors.ts";
import type { Block, Certificate } from "../../ledger/chain/types.ts";
import type { LedgerStore } from "../../ledger/store/store.ts";
import { RequestVerifier } from "../../net/signed_request.ts";
import { createApp } from "../../web/app.ts";
import type { NodeMetrics } from "../../web/metrics.ts";
import { COMMIT_WAIT_MS_MAX, type ValidatorNode } from "./node.ts";
import { validatorView } from "./view.ts";
import type { NodeView } from "../../web/node_view.ts";

/** Client txs per POST /v1/tx. */
export const TXS_PER_REQUEST_MAX = 1000;
/** Roles that may upload blobs (model weights): everyone in genesis. */
const BLOB_UPLOAD_ROLES = ["device", "edge", "admin", "validator"];

export interface ValidatorHttpOptions {
  version: string;
  startedAtMs?: number;
  metrics?: NodeMetrics;
  adminToken?: string;
  readToken?: string;
  /** Extra NodeView parts (update consensus: devices, see update_view.ts). */
  view?: Partial<NodeView>;
}

class BodyTooLarge extends Error {}

/** Reads at most `bytesMax` bytes of a request body; throws BodyTooLarge past it. */
export async function readBody(request: Request, bytesMax: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > bytesMax) {
    throw new BodyTooLarge(`body of ${declared} bytes, limit ${bytesMax}`);
  }
  if (!request.body) return new Uint8Array(0);
  // Declared length within the limit: the server reads exactly that many bytes, in one go (the
  // chunked stream below cost a validator more CPU than the small protocol messages themselves).
  if (Number.isFinite(declared)) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.length > bytesMax) throw new BodyTooLarge(`body larger than ${bytesMax} bytes`);
    return bytes;
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > bytesMax) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge(`body larger than ${bytesMax} bytes`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

const error = (status: number, code: string, message: string) =>
  Response.json({ error: { code, message: message.slice(0, 1000) } }, { status });

/** `?wait_ms=N` of a long poll: 0 when absent, null when not an integer in 0…COMMIT_WAIT_MS_MAX. */
function waitMsOf(value: string | undefined): number | null {
  if (value === undefined) return 0;
  const ms = Number(value);
  return /^[0-9]{1,6}$/.test(value) && ms <= COMMIT_WAIT_MS_MAX ? ms : null;
}
const badWait = () =>
  error(400, "malformed", `wait_ms must be an integer from 0 to ${COMMIT_WAIT_MS_MAX}`);

export function createValidatorApp(
  node: ValidatorNode,
  store: LedgerStore,
  options: ValidatorHttpOptions,
): Hono {
  const ctx = node.ctx;
  const startedAtMs = options.startedAtMs ?? Date.now();
  const peerBodyBytesMax = node.requestBodyBytesMax;
  const txBodyBytesMax = TXS_PER_REQUEST_MAX * (ctx.genesis.params.batch.max_tx_bytes + 64) + 1024;
  const blobBytesMax = ctx.genesis.params.model_update.max_blob_bytes;
  const verifier = new RequestVerifier(ctx.chainId, (address) => {
    const key = ctx.keys.get(address);
    return key ? { publicKey: key.publicKey, role: key.role } : undefined;
  });
  const web = createApp({ ...validatorView(node, store, startedAtMs), ...options.view }, {
    version: options.version,
    metrics: options.metrics,
    adminToken: options.adminToken,
    readToken: options.readToken,
  });
  const app = new Hono({ strict: true });

  app.onError((err) => {
    if (err instanceof BodyTooLarge) return error(413, "oversized", err.message);
    if (err instanceof LedgerError) return error(400, err.code, err.message);
    // The sender gave up (its timeout) while we read the body: nothing to answer, nothing to log.
    if ((err as Error)?.name === "AbortError") {
      return error(400, "aborted", "the request was aborted by the client");
    }
    console.error("validator http: unexpected error", err);
    return error(500, "internal", "unexpected error; see the validator's log");
  });

  app.post("/v1/pbft", async (c) => {
    let body: Uint8Array;
    try {
      body = await readBody(c.req.raw, peerBodyBytesMax);
    } catch (err) {
      if (err instanceof BodyTooLarge) node.noteRejected("oversized", err.message);
      throw err;
    }
    const result = await node.receivePeer(new TextDecoder().decode(body));
    const status = result.accepted === 0 && result.rejected.length > 0 ? 400 : 202;
    return c.json(result, status);
  });

  app.post("/v1/tx", async (c) => {
    const body = await readBody(c.req.raw, txBodyBytesMax);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return error(400, "malformed", 'body is not JSON: send one signed tx or {"txs": [...]}');
    }
    const batch = value !== null && typeof value === "object" && "txs" in value;
    const txs = batch ? (value as { txs: unknown }).txs : [value];
    if (!Array.isArray(txs) || txs.length === 0 || txs.length > TXS_PER_REQUEST_MAX) {
      return error(
        400,
        "malformed",
        `txs must be a list of 1 to ${TXS_PER_REQUEST_MAX} signed transactions`,
      );
    }
    const forwarded = batch && (value as { forwarded?: unknown }).forwarded === true;
    // In order: a sender's nonces in one request keep their order.
    const results = await node.submitTxs(txs, { forwarded });
    if (!batch) {
      const r = results[0];
      return r.ok
        ? c.json({ id: r.id, duplicate: r.duplicate }, 202)
        : error(r.status, r.code, r.message);
    }
    const accepted = results.filter((r) => r.ok).length;
    return c.json({
      results: results.map((
        r,
      ) => (r.ok
        ? { ok: true, id: r.id, duplicate: r.duplicate }
        : { ok: false, code: r.code, message: r.message })
      ),
    }, accepted > 0 ? 202 : 400);
  });

  // `?wait_ms=N` (long poll): answers once the tx is committed or rejected here, or after N ms.
  app.get("/v1/tx/:id", async (c) => {
    const id = c.req.param("id");
    if (!isHex(id, 32)) return error(400, "malformed", "tx id must be 64 lowercase hex digits");
    const waitMs = waitMsOf(c.req.query("wait_ms"));
    if (waitMs === null) return badWait();
    const deadline = Date.now() + waitMs;
    let status = await node.txStatus(id);
    while (
      (status.status === "pending" || status.status === "unknown") && Date.now() < deadline &&
      await node.waitForHeight(node.app.committed.height + 1, deadline - Date.now())
    ) {
      status = await node.txStatus(id);
    }
    return c.json(status, status.status === "unknown" ? 404 : 200);
  });

  app.put("/v1/blobs/:sha256", async (c) => {
    const sha256 = c.req.param("sha256");
    if (!isHex(sha256, 32)) {
      return error(400, "malformed", "blob id must be 64 lowercase hex digits (SHA-256)");
    }
    const body = await readBody(c.req.raw, blobBytesMax);
    const url = new URL(c.req.url);
    const auth = await verifier.verify(
      c.req.raw.headers,
      "PUT",
      url.pathname + url.search,
      body,
      BLOB_UPLOAD_ROLES,
    );
    if (!auth.ok) {
      return error(auth.reason === "role_not_allowed" ? 403 : 401, auth.reason, auth.message);
    }
    try {
      await store.putBlob(body, sha256);
    } catch (err) {
      if (err instanceof LedgerError && err.code === "blob_mismatch") {
        return error(400, "blob_mismatch", err.message);
      }
      throw err;
    }
    return c.json({ sha256, size_bytes: body.length }, 201);
  });

  app.get("/v1/blobs/:sha256", async (c) => {
    const sha256 = c.req.param("sha256");
    if (!isHex(sha256, 32)) {
      return error(400, "malformed", "blob id must be 64 lowercase hex digits (SHA-256)");
    }
    const bytes = await store.getBlob(sha256);
    if (!bytes) return error(404, "not_found", `no blob ${sha256} here`);
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": "application/octet-stream",
        "x-content-sha256": sha256,
        "cache-control": "public, max-age=31536000, immutable",
      },
    });
  });

  app.get("/v1/status", (c) => c.json(node.status()));

  app.get("/v1/accounts/:address", (c) => {
    const address = c.req.param("address");
    if (!isHex(address, 20)) {
      return error(400, "malformed", "address must be 40 lowercase hex digits");
    }
    const key = ctx.keys.get(address);
    if (!key) return error(404, "not_found", `${address} is not in genesis`);
    return c.json({ address, id: key.id, role: key.role, nonce: node.app.committedNonce(address) });
  });

  // `?wait_ms=N` (long poll): a block not committed here yet is waited for up to N ms.
  app.get("/v1/blocks/:height", async (c) => {
    const height = Number(c.req.param("height"));
    if (!Number.isSafeInteger(height) || height < 1) {
      return error(400, "malformed", "height must be an integer ≥ 1");
    }
    const waitMs = waitMsOf(c.req.query("wait_ms"));
    if (waitMs === null) return badWait();
    if (waitMs > 0) await node.waitForHeight(height, waitMs);
    for await (const committed of store.readCommitted(height, height)) {
      return c.json({
        height,
        hash: committed.hash,
        block: committed.block,
        certificate: committed.certificate,
      });
    }
    return error(404, "not_found", `no block ${height} here (height ${node.app.committed.height})`);
  });

  app.get("/v1/model/global", async (c) => {
    const found = await globalModel(node, store);
    if (!found) {
      return error(404, "not_found", "no global model is committed yet and genesis names none");
    }
    return c.json(found);
  });

  // Everything else: the node's web API and UI.
  app.all("*", (c) => web.fetch(c.req.raw));
  return app;
}

export interface GlobalModelReference {
  /** Round whose closing block committed this model (0 = genesis). */
  round: number;
  sha256: string;
  /** "round_result" (the validators' record of a closed round), "round_close" (aggregate),
   * "round_open" (model a round trains from) or "genesis". */
  source: "round_result" | "round_close" | "round_open" | "genesis";
  height: number;
  tx_index: number | null;
  block: Block | null;
  certificate: Certificate | null;
}

/** The newest committed global model reference with the block and certificate that prove it. */
export async function globalModel(
  node: ValidatorNode,
  store: LedgerStore,
): Promise<GlobalModelReference | null> {
  type Rows = { rows: ArrayLike<ArrayLike<unknown>> };
  const rows = await store.execute(
    `SELECT height, idx, type, tx_json FROM transactions
     WHERE (type = 'round_close' AND tx_json LIKE '%"aggregate_sha256"%')
        OR (type IN ('round_open', 'round_result') AND tx_json LIKE '%"global_model_sha256"%')
     ORDER BY height DESC, idx DESC LIMIT 1`,
  ) as Rows;
  const row = rows.rows[0];
  if (row) {
    const height = Number(row[0]);
    for await (const committed of store.readCommitted(height, height)) {
      const index = Number(row[1]);
      const tx = committed.block.txs[index];
      const body = tx.body as {
        round: number;
        aggregate_sha256?: string;
        global_model_sha256?: string;
      };
      const sha256 = tx.type === "round_close" ? body.aggregate_sha256 : body.global_model_sha256;
      if (sha256 === undefined) break; // the text matched inside meta/record, not the field
      return {
        round: body.round,
        sha256: sha256,
        source: tx.type as "round_result" | "round_close" | "round_open",
        height,
        tx_index: index,
        block: committed.block,
        certificate: committed.certificate,
      };
    }
  }
  const initial = node.ctx.genesis.params.initial_model_sha256;
  if (!initial) return null;
  return {
    round: 0,
    sha256: initial,
    source: "genesis",
    height: 0,
    tx_index: null,
    block: null,
    certificate: null,
  };
}
