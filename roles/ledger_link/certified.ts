// Reads what the validators committed, trusting no single validator: a block is taken only with a
// commit certificate that verifies against genesis (2f+1 genesis validators signed its hash) and
// txs that match the header's tx_root; a model only if its bytes hash to the certified SHA-256.
import { blockHash, txRoot, validateBlockShape } from "../../ledger/chain/block.ts";
import { verifyCertificate } from "../../ledger/chain/certificate.ts";
import type { ChainContext } from "../../ledger/chain/genesis.ts";
import type { Block, Certificate, RoundResultBody } from "../../ledger/chain/types.ts";
import { checkModelBlob, decodeWeights } from "../../ledger/app/blob.ts";
import type { RoundRecord } from "../../ledger/app/record.ts";
import { type ValidatorClient, ValidatorClientError } from "../validator/client.ts";

export interface CertifiedBlock {
  height: number;
  hash: string;
  block: Block;
  certificate: Certificate;
}

export interface CertifiedRoundResult {
  round: number;
  height: number;
  record: RoundRecord;
  /** The new global device-side model (the record's aggregate). */
  modelSha256: string;
  certificate: Certificate;
}

export interface CertifiedModel {
  round: number;
  sha256: string;
  weights: Float32Array;
  /** 0 / null for the genesis model, trusted through genesis itself. */
  height: number;
  certificate: Certificate | null;
}

/** How long a certified model's bytes may take to appear at the validators after its block. */
const BLOB_WAIT_MS = 10_000;
/** Longest long poll (`?wait_ms=`) asked of a validator while waiting for a block. */
const LONG_POLL_MS_MAX = 5_000;

export class CertificateError extends Error {
  override name = "CertificateError";
}

/**
 * One committed block from the first validator that has it, verified; null if none has it.
 * With `waitMs` > 0 every validator is asked at once with a long poll (`?wait_ms=`: each answers
 * the moment it commits the block, or 404 after waitMs) and the first valid answer wins.
 */
export async function certifiedBlock(
  client: ValidatorClient,
  height: number,
  options: { fetch?: typeof fetch; timeoutMs?: number; waitMs?: number; signal?: AbortSignal } = {},
): Promise<CertifiedBlock | null> {
  const ctx = client.ctx;
  const doFetch = options.fetch ?? fetch;
  const problems: string[] = [];
  const waitMs = Math.max(0, Math.floor(options.waitMs ?? 0));
  const query = waitMs > 0 ? `?wait_ms=${waitMs}` : "";
  const fromOne = async (base: string, signal?: AbortSignal) => {
    try {
      const timeout = AbortSignal.timeout((options.timeoutMs ?? 10_000) + waitMs);
      const response = await doFetch(`${base}/v1/blocks/${height}${query}`, {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (response.status === 404) {
        await response.body?.cancel();
        return null;
      }
      if (!response.ok) {
        await response.body?.cancel();
        problems.push(`${base}: HTTP ${response.status}`);
        return null;
      }
      const answer = await response.json() as { block: unknown; certificate: Certificate | null };
      return await verifyBlock(ctx, height, answer.block, answer.certificate);
    } catch (error) {
      if (!signal?.aborted) problems.push(`${base}: ${(error as Error).message}`);
      return null;
    }
  };
  let found: CertifiedBlock | null = null;
  if (waitMs === 0) {
    for (const base of client.endpoints) {
      found = await fromOne(base);
      if (found) return found;
    }
  } else {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    found = await new Promise<CertifiedBlock | null>((resolve) => {
      let running = client.endpoints.length;
      for (const base of client.endpoints) {
        void fromOne(base, controller.signal).then((block) => {
          running--;
          if (block) resolve(block);
          else if (running === 0) resolve(null);
        });
      }
    });
    controller.abort();
    options.signal?.removeEventListener("abort", onAbort);
    options.signal?.throwIfAborted();
    if (found) return found;
  }
  if (problems.length === client.endpoints.length) {
    throw new CertificateError(`block ${height}: no validator served a valid block: ${problems}`);
  }
  return null;
}

export async function verifyBlock(
  ctx: ChainContext,
  height: number,
  value: unknown,
  certificate: Certificate | null,
): Promise<CertifiedBlock> {
  const batch = ctx.genesis.params.batch;
  const block = validateBlockShape(value, {
    maxTxs: batch.max_txs_per_block,
    maxTxBytes: batch.max_tx_bytes,
  });
  if (block.header.height !== height) {
    throw new CertificateError(`block ${height}: header says ${block.header.height}`);
  }
  if (txRoot(block.txs) !== block.header.tx_root) {
    throw new CertificateError(`block ${height}: txs do not match tx_root`);
  }
  if (!certificate) throw new CertificateError(`block ${height}: no commit certificate`);
  const hash = blockHash(block);
  await verifyCertificate(ctx, certificate, {
    height,
    blockHash: hash,
    headerView: block.header.view,
  });
  return { height, hash, block, certificate };
}

/**
 * Scans certified blocks from `fromHeight` for the round_result of `round`, polling until it is
 * committed or `timeoutMs` passes. Bounded: at most `blocksMax` heights are read.
 */
export async function waitForRoundResult(
  client: ValidatorClient,
  round: number,
  fromHeight: number,
  options: {
    timeoutMs: number;
    pollMs?: number;
    blocksMax?: number;
    fetch?: typeof fetch;
    signal?: AbortSignal;
  },
): Promise<CertifiedRoundResult> {
  const deadline = Date.now() + options.timeoutMs;
  const blocksMax = options.blocksMax ?? 10_000;
  let height = fromHeight;
  while (height < fromHeight + blocksMax) {
    options.signal?.throwIfAborted();
    const started = Date.now();
    // Long poll: the validators answer the moment the next block commits (older ones at once).
    const found = await certifiedBlock(client, height, {
      fetch: options.fetch,
      waitMs: Math.max(0, Math.min(LONG_POLL_MS_MAX, deadline - started)),
      signal: options.signal,
    });
    if (!found) {
      if (Date.now() > deadline) {
        throw new CertificateError(
          `round ${round}: no round_result committed within ${options.timeoutMs} ms ` +
            `(read up to block ${height - 1})`,
        );
      }
      const early = (options.pollMs ?? 100) - (Date.now() - started);
      if (early > 0) await new Promise((resolve) => setTimeout(resolve, early));
      continue;
    }
    for (const tx of found.block.txs) {
      if (tx.type !== "round_result") continue;
      const body = tx.body as RoundResultBody;
      if (body.round !== round) continue;
      const record = body.record as unknown as RoundRecord;
      const modelSha256 = record?.aggregation?.modelHash;
      if (typeof modelSha256 !== "string" || record.round !== round) {
        throw new CertificateError(`round ${round}: certified round_result has no aggregate`);
      }
      return { round, height, record, modelSha256, certificate: found.certificate };
    }
    height++;
  }
  throw new CertificateError(`round ${round}: no round_result in ${blocksMax} blocks`);
}

/** Bytes of a certified model, checked against its hash and size. */
export async function fetchModelBytes(
  client: ValidatorClient,
  sha256: string,
  parameterCount: number,
): Promise<Float32Array> {
  // A validator stores the round's aggregate while it applies the committed round_result, a
  // moment after the block commits (which is when a long poll answers): ask again, bounded.
  const deadline = Date.now() + BLOB_WAIT_MS;
  let bytes: Uint8Array;
  for (;;) {
    try {
      bytes = await client.getBlob(sha256);
      break;
    } catch (error) {
      if (!(error instanceof ValidatorClientError) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  const check = checkModelBlob(bytes, sha256, parameterCount);
  if (!check.ok) throw new CertificateError(`model ${sha256}: ${check.reason}: ${check.detail}`);
  return check.weights;
}

/**
 * The global device-side model a ledger round trains from, accepted only with a certificate:
 * the round's committed round_open (via GET /v1/model/global, which ValidatorClient checks
 * against genesis), or for round 1 the genesis `params.initial_model_sha256`.
 */
export async function certifiedRoundModel(
  client: ValidatorClient,
  round: number,
  expectedSha256?: string,
  options: { timeoutMs?: number; pollMs?: number } = {},
): Promise<CertifiedModel> {
  const genesisModel = client.ctx.genesis.params.initial_model_sha256;
  // The validator asked may not have committed the round_open yet: poll, bounded.
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const model = await client.globalModel();
    const ok = model.round === round ||
      (round === 1 && model.certificate === null && model.sha256 === genesisModel);
    if (ok) {
      if (expectedSha256 !== undefined && model.sha256 !== expectedSha256) {
        throw new CertificateError(
          `round ${round}: certified model is ${model.sha256}, offered ${expectedSha256}`,
        );
      }
      return {
        round,
        sha256: model.sha256,
        weights: decodeWeights(model.bytes),
        height: model.height,
        certificate: model.certificate,
      };
    }
    if (model.round > round || Date.now() > deadline) {
      throw new CertificateError(
        `round ${round}: the newest certified model is for round ${model.round}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 100));
  }
}
