// Transactions: typed, versioned, signed by their sender over the canonical bytes of everything
// but `sig`. chain_id in the signed bytes stops cross-chain replay; nonce stops in-chain replay.
import { bytesEqual, fromHex, toHex } from "../crypto/bytes.ts";
import { sign, verify } from "../crypto/ed25519.ts";
import { sha256Hex } from "../crypto/sha256.ts";
import { canonicalBytes, canonicalHash } from "./canonical.ts";
import { merkleLeafHash } from "./merkle.ts";
import * as check from "./check.ts";
import { fail } from "./errors.ts";
import type { ChainContext } from "./genesis.ts";
import {
  EXTENSION_TX_TYPE_PATTERN,
  KNOWN_TX_TYPES,
  type KnownTxType,
  LIMITS,
  type ParticipantRole,
  type Tx,
  type TxBody,
  type TxType,
  type UnsignedTx,
} from "./types.ts";

/** Which roles may send each type; extension types (`x.*`) may be sent by anyone in genesis. */
export const TX_SENDER_ROLES: Record<KnownTxType, readonly (ParticipantRole | "validator")[]> = {
  model_update: ["device"],
  edge_update: ["edge"],
  // The edge coordinates rounds (docs/architecture.md); validators may too (timeouts).
  round_open: ["edge", "validator"],
  round_close: ["edge", "validator"],
  round_result: ["validator"],
  quarantine: ["admin", "validator"],
  readmit: ["admin", "validator"],
};

export interface TxSigner {
  address: string;
  privateKey: CryptoKey;
}

export function unsignedTx<T extends TxType>(
  chainId: string,
  type: T,
  from: string,
  nonce: number,
  body: TxBody<T>,
): UnsignedTx<T> {
  return { v: 1, chain_id: chainId, type, from, nonce, body };
}

// Sealed txs: a validator encodes, hashes and verifies a tx once, where it enters the process
// (admission, or decoding a block payload), and carries the results with it. A sealed tx is
// deeply frozen, so the memo can never describe an object that changed after it was computed
// (a write to it throws). Unsealed txs are encoded afresh on every call, as before.
interface SealedTx {
  bytes: Uint8Array;
  hash?: string;
  leafHash?: Uint8Array;
  signingBytes?: Uint8Array;
  /** The genesis public key this process verified the signature with (verifyTxAuth). */
  verifiedWith?: Uint8Array;
}
const sealed = new WeakMap<object, SealedTx>();

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const inner of Object.values(value)) deepFreeze(inner);
}

/**
 * Shape-checks a decoded tx, freezes it and remembers its canonical bytes, so later encodeTx,
 * txHash, txSigningBytes and verifyTxAuth on this object cost nothing. For txs that enter a
 * validator; the object must not be modified afterwards (it is frozen).
 */
export function sealTx(value: unknown, txBytesMax: number, path = "tx"): Tx {
  const known = typeof value === "object" && value !== null ? sealed.get(value) : undefined;
  if (known) {
    if (known.bytes.length > txBytesMax) {
      fail("malformed", `${path}: ${known.bytes.length} bytes, limit ${txBytesMax}`);
    }
    return value as Tx;
  }
  const { tx, bytes } = checkTxShape(value, txBytesMax, path);
  deepFreeze(tx);
  sealed.set(tx, { bytes });
  return tx;
}

/** Whether `tx` carries memoized bytes (sealTx). */
export function isSealedTx(tx: Tx): boolean {
  return sealed.has(tx);
}

/** The bytes a sender signs: canonical JSON of the tx without `sig`. */
export function txSigningBytes(tx: UnsignedTx | Tx): Uint8Array {
  const memo = sealed.get(tx);
  if (memo?.signingBytes) return memo.signingBytes;
  const { sig: _sig, ...unsigned } = tx as Tx;
  const bytes = canonicalBytes(unsigned);
  if (memo) memo.signingBytes = bytes;
  return bytes;
}

/** Builds, shape-checks and signs a transaction. */
export async function signTx<T extends TxType>(
  signer: TxSigner,
  chainId: string,
  type: T,
  nonce: number,
  body: TxBody<T>,
): Promise<Tx<T>> {
  const unsigned = unsignedTx(chainId, type, signer.address, nonce, body);
  const signature = await sign(signer.privateKey, txSigningBytes(unsigned));
  const tx = { ...unsigned, sig: toHex(signature) };
  validateTxShape(tx, LIMITS.tx_bytes_max);
  return tx;
}

/** Full canonical bytes of a signed tx: Merkle leaf data and the preimage of its hash. */
export function encodeTx(tx: Tx): Uint8Array {
  return sealed.get(tx)?.bytes ?? canonicalBytes(tx);
}

/** Transaction id: SHA-256 of the signed tx's canonical bytes, lowercase hex. */
export function txHash(tx: Tx): string {
  const memo = sealed.get(tx);
  if (!memo) return canonicalHash(tx);
  memo.hash ??= sha256Hex(memo.bytes);
  return memo.hash;
}

/** Merkle leaf hash of the tx's canonical bytes (RFC 6962 leaf, see merkle.ts), memoized if sealed. */
export function txLeafHash(tx: Tx): Uint8Array {
  const memo = sealed.get(tx);
  if (!memo) return merkleLeafHash(canonicalBytes(tx));
  memo.leafHash ??= merkleLeafHash(memo.bytes);
  return memo.leafHash;
}

/** Checks fields, types and limits of a decoded tx (no signature, no chain state). */
export function validateTxShape(value: unknown, txBytesMax: number, path = "tx"): Tx {
  // A sealed tx was checked when it was sealed and is frozen: only the size limit may differ.
  if (typeof value === "object" && value !== null && sealed.has(value)) {
    return sealTx(value, txBytesMax, path);
  }
  return checkTxShape(value, txBytesMax, path).tx;
}

function checkTxShape(
  value: unknown,
  txBytesMax: number,
  path: string,
): { tx: Tx; bytes: Uint8Array } {
  const tx = check.object(value, path, ["v", "chain_id", "type", "from", "nonce", "body", "sig"]);
  check.literal(tx.v, `${path}.v`, 1);
  if (typeof tx.chain_id !== "string") fail("malformed", `${path}.chain_id: expected a string`);
  const type = tx.type;
  if (
    typeof type !== "string" ||
    !(KNOWN_TX_TYPES.includes(type as KnownTxType) || EXTENSION_TX_TYPE_PATTERN.test(type))
  ) {
    fail("malformed", `${path}.type: unknown type ${JSON.stringify(type)}`);
  }
  check.hex(tx.from, `${path}.from`, 20);
  check.int(tx.nonce, `${path}.nonce`, 1, Number.MAX_SAFE_INTEGER);
  check.hex(tx.sig, `${path}.sig`, 64);
  validateBody(type as TxType, tx.body, `${path}.body`);
  const bytes = canonicalBytes(tx);
  if (bytes.length > txBytesMax) {
    fail("malformed", `${path}: ${bytes.length} bytes, limit ${txBytesMax}`);
  }
  return { tx: value as Tx, bytes };
}

const ROUND_MAX = 1_000_000_000;
const UPDATE_OPTIONAL = ["base_round", "base_model_sha256", "metrics", "meta"];

function validateBody(type: TxType, value: unknown, path: string): void {
  switch (type) {
    case "model_update":
    case "edge_update": {
      const required = ["round", "sample_count", "blob_sha256", "blob_size_bytes"];
      const body = check.object(
        value,
        path,
        required,
        type === "edge_update" ? [...UPDATE_OPTIONAL, "devices"] : UPDATE_OPTIONAL,
      );
      check.int(body.round, `${path}.round`, 1, ROUND_MAX);
      check.int(body.sample_count, `${path}.sample_count`, 1, Number.MAX_SAFE_INTEGER);
      check.hex(body.blob_sha256, `${path}.blob_sha256`, 32);
      check.int(body.blob_size_bytes, `${path}.blob_size_bytes`, 1, LIMITS.blob_bytes_max);
      if (body.base_model_sha256 !== undefined) {
        check.hex(body.base_model_sha256, `${path}.base_model_sha256`, 32);
      }
      if (body.metrics !== undefined) validateMetrics(body.metrics, `${path}.metrics`);
      if (body.devices !== undefined) {
        check.array(body.devices, `${path}.devices`, LIMITS.hash_list_max).forEach((d, i) =>
          check.hex(d, `${path}.devices[${i}]`, 20)
        );
      }
      if (body.meta !== undefined) check.freeObject(body.meta, `${path}.meta`);
      return;
    }
    case "round_open": {
      const body = check.object(value, path, ["round"], [
        "global_model_sha256",
        "deadline_ms",
        "meta",
      ]);
      check.int(body.round, `${path}.round`, 1, ROUND_MAX);
      if (body.global_model_sha256 !== undefined) {
        check.hex(body.global_model_sha256, `${path}.global_model_sha256`, 32);
      }
      if (body.deadline_ms !== undefined) {
        check.int(body.deadline_ms, `${path}.deadline_ms`, 0, Number.MAX_SAFE_INTEGER);
      }
      if (body.meta !== undefined) check.freeObject(body.meta, `${path}.meta`);
      return;
    }
    case "round_close": {
      const body = check.object(value, path, ["round"], [
        "aggregate_sha256",
        "accepted",
        "rejected",
        "meta",
      ]);
      check.int(body.round, `${path}.round`, 1, ROUND_MAX);
      if (body.aggregate_sha256 !== undefined) {
        check.hex(body.aggregate_sha256, `${path}.aggregate_sha256`, 32);
      }
      for (const key of ["accepted", "rejected"]) {
        if (body[key] === undefined) continue;
        check.array(body[key], `${path}.${key}`, LIMITS.hash_list_max).forEach((h, i) =>
          check.hex(h, `${path}.${key}[${i}]`, 32)
        );
      }
      if (body.meta !== undefined) check.freeObject(body.meta, `${path}.meta`);
      return;
    }
    case "round_result": {
      const body = check.object(value, path, ["round", "record"], ["global_model_sha256", "meta"]);
      check.int(body.round, `${path}.round`, 1, ROUND_MAX);
      check.freeObject(body.record, `${path}.record`);
      if (body.global_model_sha256 !== undefined) {
        check.hex(body.global_model_sha256, `${path}.global_model_sha256`, 32);
      }
      if (body.meta !== undefined) check.freeObject(body.meta, `${path}.meta`);
      return;
    }
    case "quarantine":
    case "readmit": {
      const body = check.object(value, path, ["target", "reason"], ["round", "meta"]);
      check.hex(body.target, `${path}.target`, 20);
      if (typeof body.reason !== "string" || body.reason.length > LIMITS.reason_chars_max) {
        fail(
          "malformed",
          `${path}.reason: expected a string of at most ${LIMITS.reason_chars_max} characters`,
        );
      }
      if (body.round !== undefined) check.int(body.round, `${path}.round`, 1, ROUND_MAX);
      if (body.meta !== undefined) check.freeObject(body.meta, `${path}.meta`);
      return;
    }
    default:
      check.freeObject(value, path);
  }
}

function validateMetrics(value: unknown, path: string): void {
  const metrics = check.freeObject(value, path);
  const names = Object.keys(metrics);
  if (names.length > LIMITS.metrics_max) {
    fail("malformed", `${path}: more than ${LIMITS.metrics_max} metrics`);
  }
  for (const name of names) {
    check.text(name, `${path}.${name}`, /^[a-z0-9_]{1,64}$/, "a snake_case metric name");
    check.int(metrics[name], `${path}.${name}`, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }
}

/**
 * Sender is in genesis, allowed to send this type, and signed it. Throws LedgerError
 * (wrong_chain | unknown_sender | unauthorized | bad_signature).
 */
export async function verifyTxAuth(ctx: ChainContext, tx: Tx, path = "tx"): Promise<void> {
  const memo = sealed.get(tx);
  if (tx.chain_id !== ctx.chainId) {
    fail("wrong_chain", `${path}: chain_id ${JSON.stringify(tx.chain_id)} is not ${ctx.chainId}`);
  }
  const sender = ctx.keys.get(tx.from);
  if (!sender) fail("unknown_sender", `${path}: sender ${tx.from} is not in genesis`);
  const roles = TX_SENDER_ROLES[tx.type as KnownTxType];
  if (roles && !roles.includes(sender.role)) {
    fail("unauthorized", `${path}: a ${sender.role} (${sender.id}) may not send ${tx.type}`);
  }
  // A sealed tx is frozen: a signature this process verified with this same key stands (the key
  // is compared, not the genesis object: the store and the validator hold their own contexts).
  if (memo?.verifiedWith && bytesEqual(memo.verifiedWith, sender.publicKey)) return;
  const ok = await verify(sender.publicKey, fromHex(tx.sig), txSigningBytes(tx), {
    memo: memo === undefined,
  });
  if (!ok) fail("bad_signature", `${path}: signature of ${sender.id} does not verify`);
  if (memo) memo.verifiedWith = sender.publicKey;
}
