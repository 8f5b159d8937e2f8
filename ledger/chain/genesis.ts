// Genesis: the trusted configuration every verifier starts from. Its hash is block 1's prev_hash,
// so a chain cannot be replayed under a different validator set or parameter list.
import { fromHex, toHex } from "../crypto/bytes.ts";
import { addressOf } from "../crypto/ed25519.ts";
import { canonicalBytes, canonicalHash, parseCanonical } from "./canonical.ts";
import * as check from "./check.ts";
import { fail } from "./errors.ts";
import {
  CHAIN_ID_PATTERN,
  ENDPOINT_PATTERN,
  type Genesis,
  type GenesisParams,
  LIMITS,
  PARTICIPANT_ID_PATTERN,
  type ParticipantEntry,
  type ParticipantRole,
  type ValidatorEntry,
} from "./types.ts";

/** Chain-level defaults; update_consensus starts empty and is filled by the application. */
export const DEFAULT_PARAMS: GenesisParams = {
  model_update: {
    min_sample_count: 1,
    max_sample_count: 100_000_000,
    max_blob_bytes: 64 * 1024 * 1024,
  },
  checkpoint_interval_blocks: 64,
  batch: { max_txs_per_block: 1000, max_tx_bytes: 64 * 1024, max_block_bytes: 8 * 1024 * 1024 },
  update_consensus: {},
};

/** Largest f with n ≥ 3f + 1. */
export function faultsTolerated(validatorCount: number): number {
  return Math.floor((validatorCount - 1) / 3);
}

/** Signatures a certificate needs: 2f + 1. */
export function quorumSize(validatorCount: number): number {
  return 2 * faultsTolerated(validatorCount) + 1;
}

export interface GenesisKeyInput {
  id: string;
  publicKey: Uint8Array;
  /** Validators only: where peers and clients reach it (hashed into genesis). */
  endpoint?: string;
}

export interface CreateGenesisInput {
  chainId: string;
  genesisTimeMs: number;
  validators: GenesisKeyInput[];
  participants?: (GenesisKeyInput & { role: ParticipantRole })[];
  params?: GenesisParams;
}

/** Builds and validates a genesis; addresses are derived from the keys. */
export function createGenesis(input: CreateGenesisInput): Genesis {
  const entry = (key: GenesisKeyInput): ValidatorEntry => ({
    id: key.id,
    address: addressOf(key.publicKey),
    public_key: toHex(key.publicKey),
    ...(key.endpoint === undefined ? {} : { endpoint: key.endpoint }),
  });
  const genesis: Genesis = {
    v: 1,
    chain_id: input.chainId,
    genesis_time_ms: input.genesisTimeMs,
    validators: input.validators.map(entry),
    participants: (input.participants ?? []).map((key) => ({
      ...entry({ id: key.id, publicKey: key.publicKey }),
      role: key.role,
    })),
    params: structuredClone(input.params ?? DEFAULT_PARAMS),
  };
  return validateGenesis(genesis);
}

export function genesisHash(genesis: Genesis): string {
  return canonicalHash(genesis);
}

export function encodeGenesis(genesis: Genesis): Uint8Array {
  return canonicalBytes(genesis);
}

/**
 * Genesis files are JSON but need not be canonical (people edit them); the hash is always taken
 * over the canonical form. Floats are still rejected.
 */
export function parseGenesis(text: string): Genesis {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    fail("malformed", `genesis is not JSON: ${(error as Error).message}`);
  }
  // Round-trip through the canonical form: rejects floats and unsafe integers with a path.
  try {
    raw = parseCanonical(canonicalBytes(raw), LIMITS.genesis_bytes_max);
  } catch (error) {
    fail("malformed", `genesis: ${(error as Error).message}`);
  }
  return validateGenesis(raw);
}

export function validateGenesis(value: unknown): Genesis {
  const g = check.object(value, "genesis", [
    "v",
    "chain_id",
    "genesis_time_ms",
    "validators",
    "participants",
    "params",
  ]);
  check.literal(g.v, "genesis.v", 1);
  check.text(
    g.chain_id,
    "genesis.chain_id",
    CHAIN_ID_PATTERN,
    `a chain id matching ${CHAIN_ID_PATTERN}`,
  );
  check.int(g.genesis_time_ms, "genesis.genesis_time_ms", 0, Number.MAX_SAFE_INTEGER);
  const validators = check.array(g.validators, "genesis.validators", LIMITS.validators_max);
  const n = validators.length;
  if (n < 1 || (n - 1) % 3 !== 0) {
    fail("malformed", `genesis.validators: need n = 3f + 1 validators, got ${n}`);
  }
  const participants = check.array(g.participants, "genesis.participants", LIMITS.participants_max);
  const seenAddresses = new Set<string>();
  const seenIds = new Set<string>();
  const checkKey = (raw: unknown, path: string, withRole: boolean) => {
    const e = check.object(
      raw,
      path,
      withRole ? ["id", "address", "public_key", "role"] : ["id", "address", "public_key"],
      withRole ? [] : ["endpoint"],
    );
    if (e.endpoint !== undefined) {
      check.text(
        e.endpoint,
        `${path}.endpoint`,
        ENDPOINT_PATTERN,
        "an http(s) URL such as http://127.0.0.1:7101",
      );
    }
    check.text(
      e.id,
      `${path}.id`,
      PARTICIPANT_ID_PATTERN,
      `an id matching ${PARTICIPANT_ID_PATTERN}`,
    );
    const publicKey = check.hex(e.public_key, `${path}.public_key`, 32);
    check.hex(e.address, `${path}.address`, 20);
    if (e.address !== addressOf(fromHex(publicKey))) {
      fail("malformed", `${path}.address: does not match public_key`);
    }
    if (withRole && !["device", "edge", "admin"].includes(e.role as string)) {
      fail("malformed", `${path}.role: expected device, edge or admin`);
    }
    if (seenAddresses.has(e.address as string)) {
      fail("malformed", `${path}: duplicate key ${e.address}`);
    }
    if (seenIds.has(e.id as string)) fail("malformed", `${path}: duplicate id ${e.id}`);
    seenAddresses.add(e.address as string);
    seenIds.add(e.id as string);
  };
  validators.forEach((v, i) => checkKey(v, `genesis.validators[${i}]`, false));
  participants.forEach((p, i) => checkKey(p, `genesis.participants[${i}]`, true));
  validateParams(g.params);
  return value as Genesis;
}

function validateParams(value: unknown): void {
  const p = check.object(value, "genesis.params", [
    "model_update",
    "checkpoint_interval_blocks",
    "batch",
    "update_consensus",
  ], ["initial_model_sha256", "ext"]);
  const mu = check.object(p.model_update, "params.model_update", [
    "min_sample_count",
    "max_sample_count",
    "max_blob_bytes",
  ]);
  const minSamples = check.int(
    mu.min_sample_count,
    "params.model_update.min_sample_count",
    1,
    Number.MAX_SAFE_INTEGER,
  );
  check.int(
    mu.max_sample_count,
    "params.model_update.max_sample_count",
    minSamples,
    Number.MAX_SAFE_INTEGER,
  );
  check.int(mu.max_blob_bytes, "params.model_update.max_blob_bytes", 1, LIMITS.blob_bytes_max);
  check.int(p.checkpoint_interval_blocks, "params.checkpoint_interval_blocks", 1, 1_000_000);
  const b = check.object(p.batch, "params.batch", [
    "max_txs_per_block",
    "max_tx_bytes",
    "max_block_bytes",
  ]);
  check.int(b.max_txs_per_block, "params.batch.max_txs_per_block", 1, LIMITS.txs_per_block_max);
  const txBytes = check.int(b.max_tx_bytes, "params.batch.max_tx_bytes", 256, LIMITS.tx_bytes_max);
  check.int(b.max_block_bytes, "params.batch.max_block_bytes", txBytes, LIMITS.block_bytes_max);
  check.freeObject(p.update_consensus, "params.update_consensus");
  if (p.initial_model_sha256 !== undefined) {
    check.hex(p.initial_model_sha256, "params.initial_model_sha256", 32);
  }
  if (p.ext !== undefined) check.freeObject(p.ext, "params.ext");
}

/** Lookups derived once from a validated genesis. */
export interface ChainContext {
  genesis: Genesis;
  genesisHash: string;
  chainId: string;
  validators: ValidatorEntry[];
  validatorIndex: Map<string, number>;
  /** Every key in genesis by address, with its role ("validator" for validators). */
  keys: Map<string, { id: string; role: ParticipantRole | "validator"; publicKey: Uint8Array }>;
  f: number;
  quorum: number;
}

export function chainContext(genesis: Genesis): ChainContext {
  validateGenesis(genesis);
  const keys: ChainContext["keys"] = new Map();
  genesis.validators.forEach((v) =>
    keys.set(v.address, { id: v.id, role: "validator", publicKey: fromHex(v.public_key) })
  );
  genesis.participants.forEach((p: ParticipantEntry) =>
    keys.set(p.address, { id: p.id, role: p.role, publicKey: fromHex(p.public_key) })
  );
  const n = genesis.validators.length;
  return {
    genesis,
    genesisHash: genesisHash(genesis),
    chainId: genesis.chain_id,
    validators: genesis.validators,
    validatorIndex: new Map(genesis.validators.map((v, i) => [v.address, i])),
    keys,
    f: faultsTolerated(n),
    quorum: quorumSize(n),
  };
}

/** The PBFT primary of a view: validators[view mod n]. */
export function primaryOf(ctx: ChainContext, view: number): ValidatorEntry {
  return ctx.validators[view % ctx.validators.length];
}
