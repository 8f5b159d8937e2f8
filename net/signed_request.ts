// Authenticated HTTP between nodes. Every request carries the sender's address, a nonce that
// must grow per sender (replay protection) and an Ed25519 signature over the chain id, method,
// path, sender, nonce and SHA-256 of the body. The receiver checks the sender against genesis.
import { canonicalBytes } from "../ledger/chain/canonical.ts";
import { fromBase64, toBase64 } from "../ledger/crypto/bytes.ts";
import { sign, verify } from "../ledger/crypto/ed25519.ts";
import { sha256HexAsync } from "../ledger/crypto/sha256.ts";

export const HEADER_SENDER = "x-iomt-sender";
export const HEADER_NONCE = "x-iomt-nonce";
export const HEADER_SIGNATURE = "x-iomt-signature";
/** Nonces are decimal integers; the replay window remembers this many senders. */
export const REPLAY_SENDERS_MAX = 10_000;

export interface RequestSigner {
  address: string;
  privateKey: CryptoKey;
}

export interface SignedRequestParts {
  chainId: string;
  method: string;
  /** Path with query, e.g. "/v1/split/step?round=3". */
  path: string;
  body: Uint8Array;
}

function signingBytes(
  parts: SignedRequestParts,
  sender: string,
  nonce: number,
  bodySha256: string,
): Uint8Array {
  return canonicalBytes({
    kind: "http-request",
    chain_id: parts.chainId,
    method: parts.method.toUpperCase(),
    path: parts.path,
    sender,
    nonce,
    body_sha256: bodySha256,
  });
}

/** Headers that authenticate one request. */
export async function signRequest(
  signer: RequestSigner,
  parts: SignedRequestParts,
  nonce: number,
): Promise<Record<string, string>> {
  if (!Number.isSafeInteger(nonce) || nonce < 0) {
    throw new Error(`nonce must be a safe integer ≥ 0, got ${nonce}`);
  }
  const bodySha256 = await sha256HexAsync(parts.body);
  const signature = await sign(
    signer.privateKey,
    signingBytes(parts, signer.address, nonce, bodySha256),
  );
  return {
    [HEADER_SENDER]: signer.address,
    [HEADER_NONCE]: String(nonce),
    [HEADER_SIGNATURE]: toBase64(signature),
  };
}

export type VerifyFailure =
  | "missing_headers"
  | "unknown_sender"
  | "role_not_allowed"
  | "bad_nonce"
  | "replayed_nonce"
  | "bad_signature";

export type VerifyResult =
  | { ok: true; sender: string; nonce: number }
  | { ok: false; reason: VerifyFailure; message: string };

export interface KnownKey {
  publicKey: Uint8Array;
  role: string;
}

/**
 * Verifies signed requests and rejects replays. A sender's nonce must be strictly greater than
 * the last one accepted from it; clients use a millisecond clock or a counter.
 */
export class RequestVerifier {
  readonly #lastNonce = new Map<string, number>();

  constructor(
    private readonly chainId: string,
    private readonly lookup: (address: string) => KnownKey | undefined,
  ) {}

  async verify(
    headers: Headers,
    method: string,
    path: string,
    body: Uint8Array,
    allowedRoles: readonly string[],
  ): Promise<VerifyResult> {
    const sender = headers.get(HEADER_SENDER);
    const nonceText = headers.get(HEADER_NONCE);
    const signatureText = headers.get(HEADER_SIGNATURE);
    if (!sender || !nonceText || !signatureText) {
      return {
        ok: false,
        reason: "missing_headers",
        message: `${HEADER_SENDER}, ${HEADER_NONCE} and ${HEADER_SIGNATURE} are required`,
      };
    }
    const key = this.lookup(sender);
    if (!key) {
      return { ok: false, reason: "unknown_sender", message: `sender ${sender} is not in genesis` };
    }
    if (!allowedRoles.includes(key.role)) {
      return {
        ok: false,
        reason: "role_not_allowed",
        message: `a ${key.role} may not call ${method} ${path}`,
      };
    }
    if (!/^\d{1,16}$/.test(nonceText) || !Number.isSafeInteger(Number(nonceText))) {
      return { ok: false, reason: "bad_nonce", message: "nonce must be a decimal integer" };
    }
    const nonce = Number(nonceText);
    const last = this.#lastNonce.get(sender);
    if (last !== undefined && nonce <= last) {
      return {
        ok: false,
        reason: "replayed_nonce",
        message: `nonce ${nonce} is not above the last accepted ${last}`,
      };
    }
    let signature: Uint8Array;
    try {
      signature = fromBase64(signatureText);
    } catch {
      return { ok: false, reason: "bad_signature", message: "signature is not base64" };
    }
    const bodySha256 = await sha256HexAsync(body);
    const bytes = signingBytes(
      { chainId: this.chainId, method, path, body },
      sender,
      nonce,
      bodySha256,
    );
    if (!(await verify(key.publicKey, signature, bytes))) {
      return {
        ok: false,
        reason: "bad_signature",
        message: "signature does not match the request",
      };
    }
    // Check again after the awaits: a concurrent request may have used a higher nonce meanwhile.
    const lastNow = this.#lastNonce.get(sender);
    if (lastNow !== undefined && nonce <= lastNow) {
      return {
        ok: false,
        reason: "replayed_nonce",
        message: `nonce ${nonce} is not above the last accepted ${lastNow}`,
      };
    }
    if (!this.#lastNonce.has(sender) && this.#lastNonce.size >= REPLAY_SENDERS_MAX) {
      // Senders come from genesis, so this bound is only reached by a misconfiguration.
      throw new Error(`more than ${REPLAY_SENDERS_MAX} distinct senders`);
    }
    this.#lastNonce.set(sender, nonce);
    return { ok: true, sender, nonce };
  }
}

/** A nonce source for a client: strictly increasing, seeded from the clock so restarts move on. */
export function nonceCounter(startMs = Date.now()): () => number {
  let last = startMs * 1000;
  return () => ++last;
}
