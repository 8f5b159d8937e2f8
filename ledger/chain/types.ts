// The ledger's objects, version 1. docs/ledger-format.md is the normative description; these
// types mirror it field for field. Every hashed object is canonical JSON (canonical.ts).
import type { CanonicalValue } from "./canonical.ts";

export const FORMAT_VERSION = 1;

/** Hard limits, above any genesis parameter: a bad genesis cannot make a verifier unbounded. */
export const LIMITS = {
  validators_max: 100,
  participants_max: 100_000,
  txs_per_block_max: 10_000,
  tx_bytes_max: 1024 * 1024,
  block_bytes_max: 16 * 1024 * 1024,
  genesis_bytes_max: 64 * 1024 * 1024,
  certificate_bytes_max: 64 * 1024,
  blob_bytes_max: 512 * 1024 * 1024,
  hash_list_max: 10_000,
  metrics_max: 64,
  reason_chars_max: 256,
  view_max: Number.MAX_SAFE_INTEGER,
} as const;

export const CHAIN_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const PARTICIPANT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
/** http(s) origin with an optional path, no credentials, query or fragment. */
export const ENDPOINT_PATTERN =
  /^https?:\/\/[A-Za-z0-9.\-\[\]:]{1,255}(\/[A-Za-z0-9._~\/-]{0,255})?$/;

export type Hex = string;
export type Address = string;

export interface ValidatorEntry {
  id: string;
  address: Address;
  public_key: Hex;
  /** Validators only, optional: base URL of its peer/client API, e.g. "http://127.0.0.1:7101". */
  endpoint?: string;
}

export type ParticipantRole = "device" | "edge" | "admin";

export interface ParticipantEntry extends ValidatorEntry {
  role: ParticipantRole;
}

export interface GenesisParams {
  /** Bounds the chain itself enforces on model_update / edge_update transactions. */
  model_update: {
    min_sample_count: number;
    max_sample_count: number;
    max_blob_bytes: number;
  };
  /** Blocks between PBFT checkpoints (stable checkpoints let replicas prune their logs). */
  checkpoint_interval_blocks: number;
  batch: {
    max_txs_per_block: number;
    max_tx_bytes: number;
    max_block_bytes: number;
  };
  /**
   * Update-consensus parameters, enforced by the application (ledger/app), not by chain
   * verification: acceptance thresholds, aggregation rule, reputation and quarantine settings.
   * Integers only (fractions ×10^6); hashed into the genesis so every validator runs the same.
   */
  update_consensus: Record<string, CanonicalValue>;
  /** Global device-side model that round 1 trains from. */
  initial_model_sha256?: Hex;
  /** Free-form parameters of other components, hashed into the genesis. */
  ext?: Record<string, CanonicalValue>;
}

export interface Genesis {
  v: 1;
  chain_id: string;
  genesis_time_ms: number;
  /** Order matters: the primary of view v is validators[v mod n]. n = 3f + 1. */
  validators: ValidatorEntry[];
  participants: ParticipantEntry[];
  params: GenesisParams;
}

// ---------------------------------------------------------------- transactions

export interface ModelUpdateBody {
  round: number;
  sample_count: number;
  blob_sha256: Hex;
  blob_size_bytes: number;
  /** Round whose global model the update was trained from (staleness = round - base_round). */
  base_round?: number;
  /** Global model the update was trained from. */
  base_model_sha256?: Hex;
  /** Named metrics, each an integer ×10^6 (e.g. train_loss_e6). */
  metrics?: Record<string, number>;
  meta?: Record<string, CanonicalValue>;
}

export interface EdgeUpdateBody {
  round: number;
  sample_count: number;
  blob_sha256: Hex;
  blob_size_bytes: number;
  base_model_sha256?: Hex;
  /** Devices whose activations the edge trained on this round. */
  devices?: Address[];
  metrics?: Record<string, number>;
  meta?: Record<string, CanonicalValue>;
}

export interface RoundOpenBody {
  round: number;
  global_model_sha256?: Hex;
  deadline_ms?: number;
  meta?: Record<string, CanonicalValue>;
}

export interface RoundCloseBody {
  round: number;
  aggregate_sha256?: Hex;
  /** Hashes of the update txs aggregated / rejected this round. */
  accepted?: Hex[];
  rejected?: Hex[];
  meta?: Record<string, CanonicalValue>;
}

/** The validators' agreed outcome of a closed round (ledger/app's RoundRecord), one per round. */
export interface RoundResultBody {
  round: number;
  /** New global device-side model. */
  global_model_sha256?: Hex;
  /** Application record: scores, accept/reject decisions, aggregate, reputation changes. */
  record: Record<string, CanonicalValue>;
  meta?: Record<string, CanonicalValue>;
}

export interface AdminTargetBody {
  target: Address;
  reason: string;
  round?: number;
  meta?: Record<string, CanonicalValue>;
}

export interface TxBodies {
  model_update: ModelUpdateBody;
  edge_update: EdgeUpdateBody;
  round_open: RoundOpenBody;
  round_close: RoundCloseBody;
  round_result: RoundResultBody;
  quarantine: AdminTargetBody;
  readmit: AdminTargetBody;
}

export type KnownTxType = keyof TxBodies;
export const KNOWN_TX_TYPES: readonly KnownTxType[] = [
  "model_update",
  "edge_update",
  "round_open",
  "round_close",
  "round_result",
  "quarantine",
  "readmit",
];
/** Extension types: `x.` + name; body is any object, checked only for signature and nonce. */
export const EXTENSION_TX_TYPE_PATTERN = /^x\.[a-z0-9_.-]{1,60}$/;
export type ExtensionTxType = `x.${string}`;
export type TxType = KnownTxType | ExtensionTxType;

export type TxBody<T extends TxType> = T extends KnownTxType ? TxBodies[T]
  : Record<string, CanonicalValue>;

/** A transaction before signing. Its canonical bytes are what the sender signs. */
export interface UnsignedTx<T extends TxType = TxType> {
  v: 1;
  chain_id: string;
  type: T;
  from: Address;
  nonce: number;
  body: TxBody<T>;
}

export interface Tx<T extends TxType = TxType> extends UnsignedTx<T> {
  /** Ed25519 signature over canonicalBytes(UnsignedTx), 128 lowercase hex digits. */
  sig: Hex;
}

// ---------------------------------------------------------------- blocks

export interface BlockHeader {
  v: 1;
  chain_id: string;
  height: number;
  /** Hash of block height-1; for height 1, the genesis hash. */
  prev_hash: Hex;
  /** RFC 6962 Merkle Tree Hash over the canonical bytes of each tx. */
  tx_root: Hex;
  tx_count: number;
  /** View in which the proposer built the block. */
  view: number;
  /** Address of validators[view mod n]. */
  proposer: Address;
  time_ms: number;
  /** Application state root after applying this block (opaque to the ledger). */
  state_root: Hex;
}

export interface Block {
  header: BlockHeader;
  txs: Tx[];
}

// ---------------------------------------------------------------- certificates

/** The object each validator signs when it commits; signed bytes = canonicalBytes(this). */
export interface CommitStatement {
  kind: "commit";
  chain_id: string;
  height: number;
  view: number;
  block_hash: Hex;
}

export interface CommitSignature {
  validator: Address;
  sig: Hex;
}

export interface Certificate {
  v: 1;
  chain_id: string;
  height: number;
  /** View of the commit messages (≥ header.view: a view change may commit an older proposal). */
  view: number;
  block_hash: Hex;
  /** ≥ 2f+1 distinct validators, sorted by address ascending. */
  signatures: CommitSignature[];
}
