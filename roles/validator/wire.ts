// Wire format of PBFT messages between validators, and their Ed25519 signatures.
//
// A request to `POST /v1/pbft` carries one JSON envelope {v: 1, chain_id, messages: [...]}: a
// batch, so that a burst of votes to one peer costs one HTTP round trip. Each message is the
// core's object with its field names unchanged and every byte field (block payloads) as standard
// base64. The wire JSON itself is not signed: each message's `signature` (128 hex digits) covers
// the canonical bytes (RFC 8785) of `signedContentOf(message)` from ledger/pbft/signing.ts, so a
// commit's signature is exactly a ledger certificate signature (ledger/chain commitSigningBytes).
//
// Decoding is strict: unknown kinds, unknown or missing fields, wrong types and oversized lists
// are rejected with a reason before anything is verified or stepped.
import { Buffer } from "node:buffer";
import { canonicalBytes } from "../../ledger/chain/canonical.ts";
import { fromHex, isHex, toHex } from "../../ledger/crypto/bytes.ts";
import { sign, verify } from "../../ledger/crypto/ed25519.ts";
import { embeddedSignedMessages, signedContentOf } from "../../ledger/pbft/signing.ts";
import type {
  Checkpoint,
  Commit,
  CommittedEntry,
  Entries,
  NewView,
  Prepare,
  PreparedCertificate,
  PrePrepare,
  ProtocolMessage,
  ProtocolSnapshot,
  RequestId,
  SentVote,
  Status,
  ViewChange,
} from "../../ledger/pbft/types.ts";

/** Why a message was refused; each is a label of the `rejected` counter. */
export type RejectReason =
  | "malformed"
  | "oversized"
  | "wrong_chain"
  | "unknown_sender"
  | "bad_signature"
  | "far_future"
  | "overloaded";

export class WireError extends Error {
  override name = "WireError";
  constructor(readonly reason: RejectReason, message: string) {
    super(message);
  }
}

function bad(message: string): never {
  throw new WireError("malformed", message);
}

export interface WireLimits {
  replicaCount: number;
  /** Largest block payload (bytes, decoded). */
  payloadBytesMax: number;
  /** Requests per block. */
  batchSizeMax: number;
  clientIdLengthMax: number;
  /** Messages per envelope. */
  envelopeMessagesMax: number;
  /** Entries in one state-transfer message and prepared certificates in one view change. */
  listItemsMax: number;
}

// ------------------------------------------------------------------------------------------
// encoding

const KINDS = new Set([
  "pre-prepare",
  "prepare",
  "commit",
  "checkpoint",
  "view-change",
  "new-view",
  "status",
  "entries",
]);

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function fromBase64(text: unknown, path: string, bytesMax: number): Uint8Array {
  if (typeof text !== "string" || text.length % 4 !== 0 || !BASE64.test(text)) {
    bad(`${path}: expected standard base64`);
  }
  if ((text.length / 4) * 3 > bytesMax + 2) {
    throw new WireError("oversized", `${path}: more than ${bytesMax} bytes`);
  }
  const buffer = Buffer.from(text, "base64");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** JSON-ready form of a message (payloads as base64); the inverse is decodeMessage. */
export function messageToJson(message: ProtocolMessage): unknown {
  return JSON.parse(JSON.stringify(message, bytesReplacer));
}

function bytesReplacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? toBase64(value) : value;
}

/** The text of one envelope. Bytes become base64 during stringify (no intermediate copy). */
export function encodeEnvelope(chainId: string, messages: readonly ProtocolMessage[]): string {
  // Each message is encoded once and reused for every peer it goes to (a broadcast pre-prepare
  // carries the block payload: base64 of it 3 times was the primary's largest send cost).
  // Equivalent to JSON.stringify({v, chain_id, messages}, bytesReplacer).
  return `{"v":1,"chain_id":${JSON.stringify(chainId)},"messages":[${
    messages.map(encodedMessage).join(",")
  }]}`;
}

const encodedMessages = new WeakMap<ProtocolMessage, string>();

/** JSON text of a message, remembered per (immutable, signed) message object. */
function encodedMessage(message: ProtocolMessage): string {
  let text = encodedMessages.get(message);
  if (text === undefined) {
    text = JSON.stringify(message, bytesReplacer);
    encodedMessages.set(message, text);
  }
  return text;
}

export function decodeEnvelope(
  text: string,
  chainId: string,
  limits: WireLimits,
): ProtocolMessage[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    bad("envelope is not JSON");
  }
  const envelope = record(raw, "envelope", ["v", "chain_id", "messages"]);
  if (envelope.v !== 1) bad("envelope.v: expected 1");
  if (envelope.chain_id !== chainId) {
    throw new WireError(
      "wrong_chain",
      `envelope for chain ${JSON.stringify(envelope.chain_id)}, not ${chainId}`,
    );
  }
  const items = list(envelope.messages, "envelope.messages", limits.envelopeMessagesMax);
  const messages = items.map((item, i) => decodeMessage(item, limits, `messages[${i}]`));
  for (const message of messages) {
    for (const inner of [message, ...embeddedSignedMessages(message)]) {
      if (inner.chainId !== chainId) {
        throw new WireError(
          "wrong_chain",
          `${inner.kind} for chain ${JSON.stringify(inner.chainId)}, not ${chainId}`,
        );
      }
    }
  }
  return messages;
}

// ------------------------------------------------------------------------------------------
// strict decoding

type Json = Record<string, unknown>;

function record(value: unknown, path: string, keys: readonly string[]): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad(`${path}: expected an object`);
  }
  const object = value as Json;
  for (const key of keys) if (!(key in object)) bad(`${path}.${key}: missing`);
  for (const key of Object.keys(object)) {
    if (!keys.includes(key)) bad(`${path}.${key}: unknown field`);
  }
  return object;
}

function list(value: unknown, path: string, itemsMax: number): unknown[] {
  if (!Array.isArray(value)) bad(`${path}: expected an array`);
  if (value.length > itemsMax) {
    throw new WireError("oversized", `${path}: more than ${itemsMax} items`);
  }
  return value;
}

function int(value: unknown, path: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    bad(`${path}: expected an integer ≥ 0`);
  }
  return value;
}

function bool(value: unknown, path: string): boolean {
  if (typeof value !== "boolean") bad(`${path}: expected a boolean`);
  return value;
}

function hash(value: unknown, path: string): string {
  if (!isHex(value, 32)) bad(`${path}: expected 64 lowercase hex digits`);
  return value;
}

function str(value: unknown, path: string, lengthMax: number): string {
  if (typeof value !== "string" || value.length > lengthMax) {
    bad(`${path}: expected a string of at most ${lengthMax} characters`);
  }
  return value;
}

// Messages on the wire are always signed; "" (unsigned) appears only in what the core built itself
// and persisted (e.g. its own new-view), so only snapshot decoding allows it.
let allowUnsigned = false;

function signature(value: unknown, path: string): string {
  if (allowUnsigned && value === "") return "";
  if (!isHex(value, 64)) bad(`${path}: expected a 128-hex-digit Ed25519 signature`);
  return value;
}

function replica(value: unknown, path: string, limits: WireLimits): number {
  const index = int(value, path);
  if (index >= limits.replicaCount) {
    throw new WireError(
      "unknown_sender",
      `${path}: replica ${index} is not one of the ${limits.replicaCount} validators`,
    );
  }
  return index;
}

function requestIds(value: unknown, path: string, limits: WireLimits): RequestId[] {
  return list(value, path, limits.batchSizeMax).map((item, i) => {
    const id = record(item, `${path}[${i}]`, ["clientId", "nonce"]);
    return {
      clientId: str(id.clientId, `${path}[${i}].clientId`, limits.clientIdLengthMax),
      nonce: int(id.nonce, `${path}[${i}].nonce`),
    };
  });
}

const BASE = ["kind", "replica", "signature", "chainId"];

function base(raw: Json, path: string, limits: WireLimits) {
  return {
    replica: replica(raw.replica, `${path}.replica`, limits),
    signature: signature(raw.signature, `${path}.signature`),
    chainId: str(raw.chainId, `${path}.chainId`, 64),
  };
}

export function decodeMessage(
  value: unknown,
  limits: WireLimits,
  path = "message",
): ProtocolMessage {
  const kind = (value as Json | null)?.kind;
  if (typeof kind !== "string" || !KINDS.has(kind)) {
    bad(`${path}.kind: unknown kind ${JSON.stringify(kind)?.slice(0, 40)}`);
  }
  switch (kind) {
    case "pre-prepare":
      return decodePrePrepare(value, limits, path);
    case "prepare":
    case "commit":
      return decodeVote(value, limits, path, kind);
    case "checkpoint":
      return decodeCheckpoint(value, limits, path);
    case "view-change":
      return decodeViewChange(value, limits, path);
    case "new-view": {
      const raw = record(value, path, [...BASE, "view", "viewChanges", "reproposals"]);
      const message: NewView = {
        kind: "new-view",
        ...base(raw, path, limits),
        view: int(raw.view, `${path}.view`),
        viewChanges: list(raw.viewChanges, `${path}.viewChanges`, limits.replicaCount).map((v, i) =>
          decodeViewChange(v, limits, `${path}.viewChanges[${i}]`)
        ),
        reproposals: list(raw.reproposals, `${path}.reproposals`, limits.listItemsMax).map(
          (r, i) => {
            const entry = record(r, `${path}.reproposals[${i}]`, ["height", "blockHash"]);
            return {
              height: int(entry.height, `${path}.reproposals[${i}].height`),
              blockHash: hash(entry.blockHash, `${path}.reproposals[${i}].blockHash`),
            };
          },
        ),
      };
      return message;
    }
    case "status": {
      const raw = record(value, path, [
        ...BASE,
        "view",
        "viewActive",
        "lastExecutedHeight",
        "stableHeight",
      ]);
      const message: Status = {
        kind: "status",
        ...base(raw, path, limits),
        view: int(raw.view, `${path}.view`),
        viewActive: bool(raw.viewActive, `${path}.viewActive`),
        lastExecutedHeight: int(raw.lastExecutedHeight, `${path}.lastExecutedHeight`),
        stableHeight: int(raw.stableHeight, `${path}.stableHeight`),
      };
      return message;
    }
    case "entries": {
      const raw = record(value, path, [...BASE, "entries"]);
      const message: Entries = {
        kind: "entries",
        ...base(raw, path, limits),
        entries: list(raw.entries, `${path}.entries`, limits.listItemsMax).map((e, i) =>
          decodeCommittedEntry(e, limits, `${path}.entries[${i}]`)
        ),
      };
      return message;
    }
  }
  return bad(`${path}: unreachable kind`);
}

function decodePrePrepare(value: unknown, limits: WireLimits, path: string): PrePrepare {
  const raw = record(value, path, [
    ...BASE,
    "view",
    "height",
    "blockHash",
    "parentBlockHash",
    "payload",
    "requestIds",
  ]);
  return {
    kind: "pre-prepare",
    ...base(raw, path, limits),
    view: int(raw.view, `${path}.view`),
    height: int(raw.height, `${path}.height`),
    blockHash: hash(raw.blockHash, `${path}.blockHash`),
    parentBlockHash: hash(raw.parentBlockHash, `${path}.parentBlockHash`),
    payload: fromBase64(raw.payload, `${path}.payload`, limits.payloadBytesMax),
    requestIds: requestIds(raw.requestIds, `${path}.requestIds`, limits),
  };
}

function decodeVote<K extends "prepare" | "commit">(
  value: unknown,
  limits: WireLimits,
  path: string,
  kind: K,
): K extends "prepare" ? Prepare : Commit {
  const raw = record(value, path, [...BASE, "view", "height", "blockHash"]);
  if (raw.kind !== kind) bad(`${path}.kind: expected ${kind}`);
  return {
    kind,
    ...base(raw, path, limits),
    view: int(raw.view, `${path}.view`),
    height: int(raw.height, `${path}.height`),
    blockHash: hash(raw.blockHash, `${path}.blockHash`),
  } as K extends "prepare" ? Prepare : Commit;
}

function decodeCheckpoint(value: unknown, limits: WireLimits, path: string): Checkpoint {
  const raw = record(value, path, [...BASE, "height", "blockHash"]);
  if (raw.kind !== "checkpoint") bad(`${path}.kind: expected checkpoint`);
  return {
    kind: "checkpoint",
    ...base(raw, path, limits),
    height: int(raw.height, `${path}.height`),
    blockHash: hash(raw.blockHash, `${path}.blockHash`),
  };
}

function decodePrepared(value: unknown, limits: WireLimits, path: string): PreparedCertificate {
  const raw = record(value, path, ["prePrepare", "prepares"]);
  return {
    prePrepare: decodePrePrepare(raw.prePrepare, limits, `${path}.prePrepare`),
    prepares: list(raw.prepares, `${path}.prepares`, limits.replicaCount).map((p, i) =>
      decodeVote(p, limits, `${path}.prepares[${i}]`, "prepare")
    ),
  };
}

function decodeViewChange(value: unknown, limits: WireLimits, path: string): ViewChange {
  const raw = record(value, path, [
    ...BASE,
    "newView",
    "stableHeight",
    "stableBlockHash",
    "checkpointProof",
    "prepared",
  ]);
  if (raw.kind !== "view-change") bad(`${path}.kind: expected view-change`);
  return {
    kind: "view-change",
    ...base(raw, path, limits),
    newView: int(raw.newView, `${path}.newView`),
    stableHeight: int(raw.stableHeight, `${path}.stableHeight`),
    stableBlockHash: hash(raw.stableBlockHash, `${path}.stableBlockHash`),
    checkpointProof: list(raw.checkpointProof, `${path}.checkpointProof`, limits.replicaCount).map((
      c,
      i,
    ) => decodeCheckpoint(c, limits, `${path}.checkpointProof[${i}]`)),
    prepared: list(raw.prepared, `${path}.prepared`, limits.listItemsMax).map((c, i) =>
      decodePrepared(c, limits, `${path}.prepared[${i}]`)
    ),
  };
}

function decodeCommittedEntry(value: unknown, limits: WireLimits, path: string): CommittedEntry {
  const raw = record(value, path, [
    "height",
    "view",
    "blockHash",
    "payload",
    "requestIds",
    "certificate",
  ]);
  return {
    height: int(raw.height, `${path}.height`),
    view: int(raw.view, `${path}.view`),
    blockHash: hash(raw.blockHash, `${path}.blockHash`),
    payload: fromBase64(raw.payload, `${path}.payload`, limits.payloadBytesMax),
    requestIds: requestIds(raw.requestIds, `${path}.requestIds`, limits),
    certificate: list(raw.certificate, `${path}.certificate`, limits.replicaCount).map((c, i) =>
      decodeVote(c, limits, `${path}.certificate[${i}]`, "commit")
    ),
  };
}

// ------------------------------------------------------------------------------------------
// signatures

/** The bytes a message's signature covers. */
export function messageSigningBytes(message: ProtocolMessage): Uint8Array {
  return canonicalBytes(signedContentOf(message));
}

export async function signMessage<M extends ProtocolMessage>(
  privateKey: CryptoKey,
  message: M,
): Promise<M> {
  const signatureBytes = await sign(privateKey, messageSigningBytes(message));
  return { ...message, signature: toHex(signatureBytes) };
}

/**
 * Verifies the message's own signature and every embedded one (certificates, proofs) against
 * the genesis validator keys by replica index. Throws WireError("bad_signature") naming the first
 * that fails; a message passes only if all do.
 */
export async function verifyMessage(
  message: ProtocolMessage,
  publicKeys: readonly Uint8Array[],
): Promise<void> {
  const all = [message, ...embeddedSignedMessages(message)];
  const results = await Promise.all(all.map((m) => {
    const key = publicKeys[m.replica];
    if (!key || !isHex(m.signature, 64)) return Promise.resolve(false);
    return verify(key, fromHex(m.signature), messageSigningBytes(m));
  }));
  const failed = results.indexOf(false);
  if (failed >= 0) {
    const m = all[failed];
    const what = failed === 0
      ? `${m.kind} from replica ${m.replica}`
      : `embedded ${m.kind} of replica ${m.replica}`;
    throw new WireError("bad_signature", `${what}: signature does not verify`);
  }
}

// ------------------------------------------------------------------------------------------
// persisted snapshot (same JSON + base64 conventions)

/** With `payloadsByReference`, prepared certificates' block payloads are left out (written as
 * empty); the caller stores them once elsewhere, keyed by block hash. */
export function encodeSnapshot(
  snapshot: ProtocolSnapshot,
  options: { payloadsByReference?: boolean } = {},
): Uint8Array {
  const value = options.payloadsByReference
    ? {
      ...snapshot,
      preparedCertificates: snapshot.preparedCertificates.map((c) => ({
        ...c,
        prePrepare: { ...c.prePrepare, payload: new Uint8Array(0) },
      })),
    }
    : snapshot;
  return new TextEncoder().encode(JSON.stringify(value, bytesReplacer));
}

/** One prepared certificate as bytes for the protocol log; its block payload is left out (the
 * caller logs each payload once, keyed by block hash). */
export function encodePreparedCertificate(certificate: PreparedCertificate): Uint8Array {
  const value = {
    ...certificate,
    prePrepare: { ...certificate.prePrepare, payload: new Uint8Array(0) },
  };
  return new TextEncoder().encode(JSON.stringify(value, bytesReplacer));
}

/** Inverse of encodePreparedCertificate (payload empty); messages checked like wire ones. */
export function decodePreparedCertificate(
  bytes: Uint8Array,
  limits: WireLimits,
): PreparedCertificate {
  allowUnsigned = true;
  try {
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (error) {
      bad(`prepared certificate is not JSON: ${(error as Error).message}`);
    }
    return decodePrepared(raw, limits, "prepared certificate");
  } finally {
    allowUnsigned = false;
  }
}

/** A vote this replica sent, as bytes for the protocol log. */
export function encodeSentVote(vote: SentVote): Uint8Array {
  const { kind, view, height, blockHash } = vote;
  return new TextEncoder().encode(JSON.stringify({ kind, view, height, blockHash }));
}

/** Inverse of encodeSentVote. */
export function decodeSentVote(bytes: Uint8Array): SentVote {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    bad(`vote is not JSON: ${(error as Error).message}`);
  }
  return sentVote(raw, "vote");
}

function sentVote(value: unknown, path: string): SentVote {
  const vote = record(value, path, ["kind", "view", "height", "blockHash"]);
  if (vote.kind !== "pre-prepare" && vote.kind !== "prepare" && vote.kind !== "commit") {
    bad(`${path}.kind`);
  }
  return {
    kind: vote.kind,
    view: int(vote.view, `${path}.view`),
    height: int(vote.height, `${path}.height`),
    blockHash: hash(vote.blockHash, `${path}.blockHash`),
  };
}

/** Decodes a snapshot written by encodeSnapshot; embedded messages are checked like wire ones. */
export function decodeSnapshot(bytes: Uint8Array, limits: WireLimits): ProtocolSnapshot {
  allowUnsigned = true;
  try {
    return decodeSnapshotStrict(bytes, limits);
  } finally {
    allowUnsigned = false;
  }
}

function decodeSnapshotStrict(bytes: Uint8Array, limits: WireLimits): ProtocolSnapshot {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    bad(`snapshot is not JSON: ${(error as Error).message}`);
  }
  const s = record(raw, "snapshot", [
    "view",
    "viewActive",
    "stable",
    "preparedCertificates",
    "votes",
    "newView",
    "lastNonceByClient",
    ...(typeof raw === "object" && raw !== null && "lastVoteView" in raw ? ["lastVoteView"] : []),
  ]);
  const stable = record(s.stable, "snapshot.stable", ["height", "blockHash", "proof"]);
  return {
    view: int(s.view, "snapshot.view"),
    viewActive: bool(s.viewActive, "snapshot.viewActive"),
    stable: {
      height: int(stable.height, "snapshot.stable.height"),
      blockHash: hash(stable.blockHash, "snapshot.stable.blockHash"),
      proof: list(stable.proof, "snapshot.stable.proof", limits.replicaCount).map((c, i) =>
        decodeCheckpoint(c, limits, `snapshot.stable.proof[${i}]`)
      ),
    },
    preparedCertificates: list(
      s.preparedCertificates,
      "snapshot.preparedCertificates",
      limits.listItemsMax,
    ).map((c, i) => decodePrepared(c, limits, `snapshot.preparedCertificates[${i}]`)),
    votes: list(s.votes, "snapshot.votes", 1_000_000).map((v, i) =>
      sentVote(v, `snapshot.votes[${i}]`)
    ),
    newView: s.newView === null
      ? null
      : decodeMessage(s.newView, limits, "snapshot.newView") as NewView,
    lastNonceByClient: list(s.lastNonceByClient, "snapshot.lastNonceByClient", 10_000_000).map(
      (pair, i) => {
        const entry = list(pair, `snapshot.lastNonceByClient[${i}]`, 2);
        return [
          str(entry[0], `snapshot.lastNonceByClient[${i}][0]`, limits.clientIdLengthMax),
          int(entry[1], `snapshot.lastNonceByClient[${i}][1]`),
        ] as const;
      },
    ),
    ...(s.lastVoteView === undefined
      ? {}
      : { lastVoteView: int(s.lastVoteView, "snapshot.lastVoteView") }),
  };
}
