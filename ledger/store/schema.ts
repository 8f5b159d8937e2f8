// drizzle table definitions for queries. The DDL lives in migrations.ts; a test checks that the
// two agree column for column (PRAGMA table_info against these definitions).
import { customType, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** BLOB as Uint8Array (libSQL returns ArrayBuffer; drizzle's "buffer" mode would need node Buffer). */
const bytes = customType<{ data: Uint8Array; driverData: ArrayBuffer | Uint8Array }>({
  dataType: () => "blob",
  // A view, not a copy: drizzle may hand back a node Buffer; callers get a plain Uint8Array.
  fromDriver: (value) =>
    value instanceof Uint8Array
      ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      : new Uint8Array(value),
  toDriver: (value) => value,
});

export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

export const blocks = sqliteTable("blocks", {
  height: integer("height").primaryKey(),
  hash: text("hash").notNull(),
  v: integer("v").notNull(),
  chainId: text("chain_id").notNull(),
  prevHash: text("prev_hash").notNull(),
  txRoot: text("tx_root").notNull(),
  txCount: integer("tx_count").notNull(),
  view: integer("view").notNull(),
  proposer: text("proposer").notNull(),
  timeMs: integer("time_ms").notNull(),
  stateRoot: text("state_root").notNull(),
  storedAtMs: integer("stored_at_ms").notNull(),
});

export const transactions = sqliteTable("transactions", {
  height: integer("height").notNull(),
  idx: integer("idx").notNull(),
  hash: text("hash").notNull(),
  type: text("type").notNull(),
  sender: text("sender").notNull(),
  nonce: integer("nonce").notNull(),
  round: integer("round"),
  txJson: text("tx_json").notNull(),
}, (table) => [primaryKey({ columns: [table.height, table.idx] })]);

export const certificates = sqliteTable("certificates", {
  height: integer("height").primaryKey(),
  blockHash: text("block_hash").notNull(),
  view: integer("view").notNull(),
  signatureCount: integer("signature_count").notNull(),
  certJson: text("cert_json").notNull(),
});

export const checkpoints = sqliteTable("checkpoints", {
  height: integer("height").primaryKey(),
  blockHash: text("block_hash").notNull(),
  stateRoot: text("state_root").notNull(),
  proof: bytes("proof").notNull(),
  createdAtMs: integer("created_at_ms").notNull(),
});

export const protocolState = sqliteTable("protocol_state", {
  key: text("key").primaryKey(),
  value: bytes("value").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});

export const protocolLog = sqliteTable("protocol_log", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  seq: integer("seq").notNull(),
  kind: text("kind").notNull(),
  entry: bytes("entry").notNull(),
});

export const blobs = sqliteTable("blobs", {
  sha256: text("sha256").primaryKey(),
  sizeBytes: integer("size_bytes").notNull(),
  data: bytes("data").notNull(),
  createdAtMs: integer("created_at_ms").notNull(),
});

export const ALL_TABLES = {
  meta,
  blocks,
  transactions,
  certificates,
  checkpoints,
  protocolState,
  protocolLog,
  blobs,
};
