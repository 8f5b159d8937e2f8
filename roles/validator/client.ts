// What devices, the edge and tools use to talk to validators: submit signed transactions (to
// every validator, as PBFT clients do), wait for them to commit, upload and fetch content-
// addressed blobs, and fetch the committed global model with a certificate checked against
// genesis. No answer from a validator is trusted beyond what the client can verify itself.
import { blockHash } from "../../ledger/chain/block.ts";
import { verifyCertificate } from "../../ledger/chain/certificate.ts";
import { type ChainContext, chainContext } from "../../ledger/chain/genesis.ts";
import { signTx, txHash, validateTxShape } from "../../ledger/chain/tx.ts";
import type { Certificate, Genesis, Tx, TxBody, TxType } from "../../ledger/chain/types.ts";
import { sha256HexAsync } from "../../ledger/crypto/sha256.ts";
import { nonceCounter, type RequestSigner, signRequest } from "../../net/signed_request.ts";
import type { GlobalModelReference } from "./http.ts";

export interface ValidatorClientOptions {
  genesis: Genesis;
  /** Needed to sign txs and blob uploads. */
  signer?: RequestSigner;
  /** Base URLs; default: every validator endpoint in genesis. */
  endpoints?: string[];
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
}

export interface SubmitOutcome {
  id: string;
  /** Validators that accepted it (202). */
  accepted: number;
  errors: string[];
}

export interface CommittedTx {
  id: string;
  height: number;
  index: number;
}

export interface GlobalModel {
  round: number;
  sha256: string;
  bytes: Uint8Array;
  /** 0 and null for the genesis model, trusted through genesis itself. */
  height: number;
  certificate: Certificate | null;
  /** Which committed tx named it (round_open, round_result, ...) or "genesis". */
  source: GlobalModelReference["source"];
}

/** Longest long poll (`?wait_ms=`) a client asks a validator for. */
const LONG_POLL_MS_MAX = 5_000;

export class ValidatorClientError extends Error {
  override name = "ValidatorClientError";
}

export class ValidatorClient {
  readonly ctx: ChainContext;
  readonly endpoints: string[];
  readonly #signer?: RequestSigner;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #requestNonce = nonceCounter();
  #txNonce: number | null = null;

  constructor(options: ValidatorClientOptions) {
    this.ctx = chainContext(options.genesis);
    this.endpoints = options.endpoints ??
      this.ctx.validators.flatMap((v) => (v.endpoint ? [v.endpoint] : []));
    if (this.endpoints.length === 0) {
      throw new ValidatorClientError(
        "no validator endpoints: genesis lists none and none were given",
      );
    }
    this.#signer = options.signer;
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#fetch = options.fetch ?? fetch;
  }

  async #request(base: string, path: string, init: RequestInit = {}): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    const outer = init.signal;
    const onAbort = () => controller.abort();
    outer?.addEventListener("abort", onAbort, { once: true });
    if (outer?.aborted) controller.abort();
    try {
      return await this.#fetch(`${base}${path}`, { ...init, signal: controller.signal });
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    }
  }

  #requireSigner(): RequestSigner {
    if (!this.#signer) throw new ValidatorClientError("this client has no signing key");
    return this.#signer;
  }

  /** Next tx nonce of the signer: one above its last committed nonce (asked once), then counted. */
  async nextNonce(): Promise<number> {
    if (this.#txNonce === null) {
      const signer = this.#requireSigner();
      let highest = 0;
      await Promise.all(this.endpoints.map(async (base) => {
        try {
          const response = await this.#request(base, `/v1/accounts/${signer.address}`);
          if (response.ok) highest = Math.max(highest, Number((await response.json()).nonce) || 0);
          else await response.body?.cancel();
        } catch { /* an unreachable validator does not know more than the others */ }
      }));
      this.#txNonce = highest;
    }
    return ++this.#txNonce;
  }

  /** Signs a tx of this client's key with the next nonce and submits it to every validator. */
  async submit<T extends TxType>(type: T, body: TxBody<T>): Promise<SubmitOutcome> {
    const signer = this.#requireSigner();
    const tx = await signTx(signer, this.ctx.chainId, type, await this.nextNonce(), body);
    return await this.submitTx(tx);
  }

  /** Sends an already signed tx to every validator; succeeds when at least one accepted it. */
  async submitTx(tx: Tx): Promise<SubmitOutcome> {
    validateTxShape(tx, this.ctx.genesis.params.batch.max_tx_bytes);
    const id = txHash(tx);
    const body = JSON.stringify(tx);
    const errors: string[] = [];
    let accepted = 0;
    await Promise.all(this.endpoints.map(async (base) => {
      try {
        const response = await this.#request(base, "/v1/tx", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const answer = await response.json().catch(() => ({}));
        if (response.status === 202) accepted++;
        else {errors.push(
            `${base}: HTTP ${response.status} ${answer?.error?.code ?? ""} ${
              answer?.error?.message ?? ""
            }`.trim(),
          );}
      } catch (error) {
        errors.push(`${base}: ${(error as Error).message}`);
      }
    }));
    if (accepted === 0) {
      throw new ValidatorClientError(`no validator accepted tx ${id}: ${errors.join("; ")}`);
    }
    return { id, accepted, errors };
  }

  /** Waits until a quorum (2f+1) of validators answers /v1/status, polling every `pollMs`;
   * `waiting` is called once if it has to wait. Throws after `timeoutMs` naming who is missing. */
  async awaitQuorum(
    timeoutMs: number,
    waiting: (missing: string[]) => void = () => {},
    pollMs = 500,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let told = false;
    for (;;) {
      const missing: string[] = [];
      await Promise.all(this.endpoints.map(async (base) => {
        const ok = await this.#request(base, "/v1/status")
          .then((r) => {
            void r.body?.cancel();
            return r.ok;
          })
          .catch(() => false);
        if (!ok) missing.push(base);
      }));
      if (this.endpoints.length - missing.length >= this.ctx.quorum) return;
      if (Date.now() > deadline) {
        throw new ValidatorClientError(
          `no quorum of ${this.ctx.quorum} validators answered within ${timeoutMs} ms; ` +
            `not answering: ${missing.join(" ")}`,
        );
      }
      if (!told) waiting(missing);
      told = true;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /**
   * Waits until the tx is committed (by any validator's account); throws if refused or late.
   * Asks every validator at once with a long poll (`?wait_ms=`, answered the moment the tx
   * commits there) and returns on the first that has it; a validator that answers early without
   * it (an older one, or one at its wait limit) is asked again after `pollMs`.
   */
  async waitForTx(id: string, timeoutMs = 30_000, pollMs = 100): Promise<CommittedTx> {
    const deadline = Date.now() + timeoutMs;
    const last = new Map<string, string>();
    // Each long poll ends well before the request timeout.
    const longPollMs = Math.max(0, Math.min(LONG_POLL_MS_MAX, this.#timeoutMs - 1_000));
    const controller = new AbortController();
    const outcome: { found: CommittedTx | null; refused: ValidatorClientError | null } = {
      found: null,
      refused: null,
    };
    const ask = async (base: string) => {
      while (!outcome.found && !outcome.refused && Date.now() < deadline) {
        const started = Date.now();
        const waitMs = Math.max(0, Math.min(longPollMs, deadline - started));
        try {
          const response = await this.#request(base, `/v1/tx/${id}?wait_ms=${waitMs}`, {
            signal: controller.signal,
          });
          const status = await response.json();
          if (status.status === "committed") {
            outcome.found ??= { id, height: status.height, index: status.index };
            return;
          }
          if (status.status === "rejected") {
            outcome.refused ??= new ValidatorClientError(
              `tx ${id} was left out of its block: ${status.reason}`,
            );
            return;
          }
          last.set(base, `${base}: ${status.status ?? `HTTP ${response.status}`}`);
        } catch (error) {
          if (outcome.found || outcome.refused) return;
          last.set(base, `${base}: ${(error as Error).message}`);
        }
        const early = pollMs - (Date.now() - started);
        if (early > 0 && !outcome.found && !outcome.refused) {
          await new Promise((resolve) =>
            setTimeout(resolve, Math.min(early, Math.max(0, deadline - Date.now())))
          );
        }
      }
    };
    // Done at the first answer that settles it (the other polls are aborted), or when all gave up.
    await new Promise<void>((resolve) => {
      let running = this.endpoints.length;
      for (const base of this.endpoints) {
        void ask(base).then(() => {
          running--;
          if (outcome.found || outcome.refused || running === 0) {
            controller.abort();
            resolve();
          }
        });
      }
    });
    if (outcome.found) return outcome.found;
    if (outcome.refused) {
      // Only the proposer knows why it left a tx out; the others say "left out". Ask in endpoint
      // order, as a plain poll does, so the answer names the reason when a validator has it.
      for (const base of this.endpoints) {
        try {
          const status = await (await this.#request(base, `/v1/tx/${id}`)).json();
          if (status.status === "committed") {
            return { id, height: status.height, index: status.index };
          }
          if (status.status === "rejected") {
            throw new ValidatorClientError(`tx ${id} was left out of its block: ${status.reason}`);
          }
        } catch (error) {
          if (error instanceof ValidatorClientError) throw error;
        }
      }
      throw outcome.refused;
    }
    throw new ValidatorClientError(
      `tx ${id} not committed after ${timeoutMs} ms (${
        [...last.values()].join("; ") || "no answer yet"
      })`,
    );
  }

  /** Uploads a blob to every validator (signed request); returns its SHA-256 and how many stored it. */
  async putBlob(bytes: Uint8Array): Promise<{ sha256: string; stored: number; errors: string[] }> {
    const signer = this.#requireSigner();
    const sha256 = await sha256HexAsync(bytes);
    const path = `/v1/blobs/${sha256}`;
    const errors: string[] = [];
    let stored = 0;
    // One at a time: the receiver requires this sender's request nonces to rise.
    for (const base of this.endpoints) {
      try {
        const headers = await signRequest(signer, {
          chainId: this.ctx.chainId,
          method: "PUT",
          path,
          body: bytes,
        }, this.#requestNonce());
        const response = await this.#request(base, path, {
          method: "PUT",
          headers: { ...headers, "content-type": "application/octet-stream" },
          body: bytes as Uint8Array<ArrayBuffer>,
        });
        await response.body?.cancel();
        if (response.status === 201) stored++;
        else errors.push(`${base}: HTTP ${response.status}`);
      } catch (error) {
        errors.push(`${base}: ${(error as Error).message}`);
      }
    }
    if (stored === 0) {
      throw new ValidatorClientError(`no validator stored blob ${sha256}: ${errors.join("; ")}`);
    }
    return { sha256, stored, errors };
  }

  /** Fetches a blob from the first validator that has it; the bytes must hash to `sha256`. */
  async getBlob(sha256: string): Promise<Uint8Array> {
    const problems: string[] = [];
    for (const base of this.endpoints) {
      try {
        const response = await this.#request(base, `/v1/blobs/${sha256}`);
        if (!response.ok) {
          await response.body?.cancel();
          problems.push(`${base}: HTTP ${response.status}`);
          continue;
        }
        const bytes = new Uint8Array(await response.arrayBuffer());
        if ((await sha256HexAsync(bytes)) === sha256) return bytes;
        problems.push(`${base}: bytes do not hash to ${sha256}`);
      } catch (error) {
        problems.push(`${base}: ${(error as Error).message}`);
      }
    }
    throw new ValidatorClientError(`blob ${sha256} not available: ${problems.join("; ")}`);
  }

  /**
   * The newest committed global model: its reference is taken only with a commit certificate of
   * 2f+1 genesis validators over the block holding it (or from genesis itself), and its bytes
   * only if they hash to the certified SHA-256.
   */
  async globalModel(): Promise<GlobalModel> {
    const problems: string[] = [];
    for (const base of this.endpoints) {
      try {
        const response = await this.#request(base, "/v1/model/global");
        if (!response.ok) {
          await response.body?.cancel();
          problems.push(`${base}: HTTP ${response.status}`);
          continue;
        }
        const reference = await response.json() as GlobalModelReference;
        await this.#checkModelReference(reference);
        return {
          round: reference.round,
          sha256: reference.sha256,
          bytes: await this.getBlob(reference.sha256),
          height: reference.height,
          certificate: reference.certificate,
          source: reference.source,
        };
      } catch (error) {
        problems.push(`${base}: ${(error as Error).message}`);
      }
    }
    throw new ValidatorClientError(`no verifiable global model: ${problems.join("; ")}`);
  }

  async #checkModelReference(reference: GlobalModelReference): Promise<void> {
    if (reference.source === "genesis") {
      if (reference.sha256 !== this.ctx.genesis.params.initial_model_sha256) {
        throw new ValidatorClientError("genesis model hash differs from genesis");
      }
      return;
    }
    const { block, certificate } = reference;
    if (!block || !certificate || reference.tx_index === null) {
      throw new ValidatorClientError("model reference without block and certificate");
    }
    const hash = blockHash(block);
    await verifyCertificate(this.ctx, certificate, {
      height: reference.height,
      blockHash: hash,
      headerView: block.header.view,
    });
    const tx = block.txs[reference.tx_index];
    // The tx must be in the certified block: the header binds the txs through tx_root.
    const { txRoot } = await import("../../ledger/chain/block.ts");
    if (txRoot(block.txs) !== block.header.tx_root) {
      throw new ValidatorClientError("block txs do not match its tx_root");
    }
    const body = tx?.body as {
      round?: number;
      aggregate_sha256?: string;
      global_model_sha256?: string;
    } | undefined;
    const named = tx?.type === "round_close"
      ? body?.aggregate_sha256
      : tx?.type === "round_open" || tx?.type === "round_result"
      ? body?.global_model_sha256
      : undefined;
    if (named !== reference.sha256 || body?.round !== reference.round) {
      throw new ValidatorClientError("the certified block does not name this model for this round");
    }
  }
}
