// How a validator keeps its PBFT replica's durable state (ProtocolSnapshot) in the store, written
// with every flush that the core marks dirty (before any message of the flush leaves).
//
// The snapshot's large parts are appended to the protocol log once each instead of being
// rewritten on every flush (version 1 rewrote them all: at 100 txs per block a snapshot reached
// 150 KB, written three times per block):
//   - each prepared certificate (payload in its own entry, once per block hash), seq = height;
//   - each vote this replica sent, seq = height;
//   - the last executed nonce per client: a full base whenever the stable checkpoint moves
//     (seq = stable + 1), then the fresh request ids of each commit in execution order (deltas).
// The state key holds a small record: the core snapshot without those lists, and references
// (height, view, block hash) to the prepared certificates it holds. Log entries below the stable
// checkpoint are pruned in the same transaction, exactly as the core forgets them.
//
// Restoring reproduces the core's snapshot exactly: prepared certificates by reference; votes are
// those logged in the snapshot's view above the stable checkpoint (the core clears its votes on a
// view change and drops those at or below a stable checkpoint); nonces replay the deltas on the
// base with the core's bounded, least-recently-active-first rule (clientsTrackedMax).
import { concatBytes, fromHex, toHex } from "../../ledger/crypto/bytes.ts";
import type { ProtocolSnapshot, RequestId, SentVote } from "../../ledger/pbft/types.ts";
import type { ProtocolBatch, ProtocolLogEntry } from "../../ledger/store/store.ts";
import {
  decodePreparedCertificate,
  decodeSentVote,
  decodeSnapshot,
  encodePreparedCertificate,
  encodeSentVote,
  encodeSnapshot,
  type WireLimits,
} from "./wire.ts";

export const SNAPSHOT_KEY = "pbft/snapshot";
/** Block payload of a prepared certificate: 32-byte block hash, then the payload. */
export const PAYLOAD_LOG_KIND = "prepared-payload";
const PREPARED_LOG_KIND = "prepared-certificate";
const VOTE_LOG_KIND = "vote";
const NONCES_BASE_LOG_KIND = "nonces-base";
const NONCES_LOG_KIND = "nonces";
const SNAPSHOT_FORMAT = 2;

const preparedKey = (height: number, view: number, blockHash: string) =>
  `${height}:${view}:${blockHash}`;
const voteKey = (vote: SentVote) => `${vote.kind}:${vote.height}:${vote.view}:${vote.blockHash}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** What this replica has in its protocol log; builds each flush's ProtocolBatch. */
export class ProtocolPersistence {
  #payloads = new Set<string>();
  #prepared = new Set<string>();
  #votes = new Set<string>();
  /** Stable height of the last nonce base written; null: write one with the next batch. */
  #noncesBaseStable: number | null = null;

  /**
   * The batch that makes `snapshot` durable, given the request ids the flush's commits executed
   * (in order). Call `written()` once the store committed it.
   */
  batch(
    snapshot: ProtocolSnapshot,
    freshRequestIds: readonly RequestId[],
  ): { batch: ProtocolBatch; written: () => void } {
    const append: ProtocolLogEntry[] = [];
    const payloads = new Set<string>();
    const prepared = new Set<string>();
    const votes = new Set<string>();
    const references: [number, number, string][] = [];
    for (const certificate of snapshot.preparedCertificates) {
      const { height, view, blockHash, payload } = certificate.prePrepare;
      payloads.add(blockHash);
      if (!this.#payloads.has(blockHash)) {
        append.push({
          seq: height,
          kind: PAYLOAD_LOG_KIND,
          bytes: concatBytes(fromHex(blockHash), payload),
        });
      }
      const key = preparedKey(height, view, blockHash);
      prepared.add(key);
      references.push([height, view, blockHash]);
      if (!this.#prepared.has(key)) {
        append.push({
          seq: height,
          kind: PREPARED_LOG_KIND,
          bytes: encodePreparedCertificate(certificate),
        });
      }
    }
    for (const vote of snapshot.votes) {
      const key = voteKey(vote);
      votes.add(key);
      if (!this.#votes.has(key)) {
        append.push({ seq: vote.height, kind: VOTE_LOG_KIND, bytes: encodeSentVote(vote) });
      }
    }
    const stable = snapshot.stable.height;
    const newBase = this.#noncesBaseStable !== stable;
    if (newBase) {
      append.push({
        seq: stable + 1,
        kind: NONCES_BASE_LOG_KIND,
        bytes: encoder.encode(JSON.stringify(snapshot.lastNonceByClient)),
      });
    } else if (freshRequestIds.length > 0) {
      append.push({
        seq: stable + 1,
        kind: NONCES_LOG_KIND,
        bytes: encoder.encode(JSON.stringify(freshRequestIds.map((id) => [id.clientId, id.nonce]))),
      });
    }
    const core = encodeSnapshot({
      ...snapshot,
      preparedCertificates: [],
      votes: [],
      lastNonceByClient: [],
    });
    const state = encoder.encode(
      `{"v":${SNAPSHOT_FORMAT},"prepared":${JSON.stringify(references)},"core":${
        decoder.decode(core)
      }}`,
    );
    return {
      batch: { state: { [SNAPSHOT_KEY]: state }, append, pruneBelowSeq: stable + 1 },
      written: () => {
        this.#payloads = payloads;
        this.#prepared = prepared;
        this.#votes = votes;
        this.#noncesBaseStable = stable;
      },
    };
  }
}

/**
 * The snapshot a ProtocolPersistence wrote (or a version-1 snapshot with its payload entries),
 * from the state value and the protocol log. Throws if something it refers to is missing.
 */
export function restoreSnapshot(
  state: Uint8Array,
  log: readonly ProtocolLogEntry[],
  limits: WireLimits,
  clientsTrackedMax: number,
): ProtocolSnapshot {
  const payloads = new Map<string, Uint8Array>();
  for (const entry of log) {
    if (entry.kind === PAYLOAD_LOG_KIND && entry.bytes.length >= 32) {
      payloads.set(toHex(entry.bytes.subarray(0, 32)), entry.bytes.subarray(32));
    }
  }
  let parsed: { v?: unknown; prepared?: unknown; core?: unknown };
  try {
    parsed = JSON.parse(decoder.decode(state));
  } catch (error) {
    throw new Error(`protocol snapshot is not JSON: ${(error as Error).message}`);
  }
  if (parsed?.v !== SNAPSHOT_FORMAT) return withPayloads(decodeSnapshot(state, limits), payloads);
  const core = decodeSnapshot(encoder.encode(JSON.stringify(parsed.core)), limits);
  const stable = core.stable.height;
  const prepared = new Map<string, ProtocolSnapshot["preparedCertificates"][number]>();
  const votes = new Map<string, SentVote>();
  let nonces: [string, number][] = [];
  for (const entry of log) {
    if (entry.kind === PREPARED_LOG_KIND) {
      const certificate = decodePreparedCertificate(entry.bytes, limits);
      const { height, view, blockHash } = certificate.prePrepare;
      prepared.set(preparedKey(height, view, blockHash), certificate);
    } else if (entry.kind === VOTE_LOG_KIND) {
      const vote = decodeSentVote(entry.bytes);
      if (vote.view === core.view && vote.height > stable) {
        votes.set(`${vote.kind}:${vote.height}`, vote);
      }
    } else if (entry.kind === NONCES_BASE_LOG_KIND) {
      nonces = nonceList(entry.bytes);
    } else if (entry.kind === NONCES_LOG_KIND) {
      nonces = replayNonces(nonces, nonceList(entry.bytes), clientsTrackedMax);
    }
  }
  const references = Array.isArray(parsed.prepared) ? parsed.prepared : [];
  const preparedCertificates = references.map((reference: unknown) => {
    const [height, view, blockHash] = Array.isArray(reference) ? reference : [];
    const certificate = prepared.get(preparedKey(height, view, blockHash));
    const payload = payloads.get(blockHash);
    if (!certificate || !payload) {
      throw new Error(
        `protocol log lacks the prepared certificate or payload of block ${height} ${blockHash}`,
      );
    }
    return { ...certificate, prePrepare: { ...certificate.prePrepare, payload } };
  });
  return {
    ...core,
    preparedCertificates,
    votes: [...votes.values()],
    lastNonceByClient: nonces,
  };
}

function nonceList(bytes: Uint8Array): [string, number][] {
  const value = JSON.parse(decoder.decode(bytes));
  if (
    !Array.isArray(value) ||
    !value.every((pair) =>
      Array.isArray(pair) && pair.length === 2 && typeof pair[0] === "string" &&
      Number.isSafeInteger(pair[1])
    )
  ) {
    throw new Error("protocol log: malformed nonce list");
  }
  return value;
}

/** The core's rememberNonce, applied in order: most recently active last, bounded. */
function replayNonces(
  base: readonly [string, number][],
  fresh: readonly [string, number][],
  clientsTrackedMax: number,
): [string, number][] {
  const map = new Map(base);
  for (const [clientId, nonce] of fresh) {
    map.delete(clientId);
    if (map.size >= clientsTrackedMax) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    map.set(clientId, nonce);
  }
  return [...map];
}

/** Version 1: prepared certificates inside the snapshot, payloads in the log by block hash. */
function withPayloads(
  snapshot: ProtocolSnapshot,
  payloads: ReadonlyMap<string, Uint8Array>,
): ProtocolSnapshot {
  return {
    ...snapshot,
    preparedCertificates: snapshot.preparedCertificates.map((certificate) => {
      const { prePrepare } = certificate;
      if (prePrepare.payload.length > 0) return certificate;
      const payload = payloads.get(prePrepare.blockHash);
      if (!payload) {
        throw new Error(
          `protocol log lacks the payload of prepared block ${prePrepare.height} ${prePrepare.blockHash}`,
        );
      }
      return { ...certificate, prePrepare: { ...prePrepare, payload } };
    }),
  };
}
