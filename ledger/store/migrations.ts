// Schema migrations, embedded as SQL strings: the compiled binary has no files to read, and a
// remote libSQL server has no local folder either. Each migration runs as one write batch
// (BEGIN IMMEDIATE ... COMMIT) that starts by claiming its row in schema_migrations, so two
// processes migrating at once cannot both apply it, and a crash leaves the old version intact.
//
// We do not use drizzle's migrator: it reads a folder and journal from disk, which would mean
// writing temp files from the binary; a versioned table of our own is simpler and atomic.

export interface Migration {
  version: number;
  name: string;
  /** One statement per entry (triggers contain `;`, so no splitting on semicolons). */
  statements: readonly string[];
}

export const MIGRATIONS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at_ms INTEGER NOT NULL
)`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "ledger v1: blocks, transactions, certificates, checkpoints, protocol state, blobs",
    statements: [
      `CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT`,
      // Header fields as columns; the block hash is recomputed from them on every read.
      `CREATE TABLE blocks (
        height INTEGER PRIMARY KEY CHECK (height >= 1),
        hash TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
        v INTEGER NOT NULL,
        chain_id TEXT NOT NULL,
        prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
        tx_root TEXT NOT NULL CHECK (length(tx_root) = 64),
        tx_count INTEGER NOT NULL CHECK (tx_count >= 0),
        view INTEGER NOT NULL CHECK (view >= 0),
        proposer TEXT NOT NULL CHECK (length(proposer) = 40),
        time_ms INTEGER NOT NULL,
        state_root TEXT NOT NULL CHECK (length(state_root) = 64),
        stored_at_ms INTEGER NOT NULL
      ) STRICT`,
      // Last line of defence under the application checks: append-only, linked, no gaps.
      `CREATE TRIGGER blocks_append_linked BEFORE INSERT ON blocks
       WHEN NEW.height <> COALESCE((SELECT max(height) FROM blocks), 0) + 1
         OR (NEW.height > 1 AND NEW.prev_hash IS NOT (SELECT hash FROM blocks WHERE height = NEW.height - 1))
       BEGIN SELECT RAISE(ABORT, 'blocks: height must be last + 1 and prev_hash must link'); END`,
      // tx_json is the canonical signed tx; the other columns are indexes derived from it.
      `CREATE TABLE transactions (
        height INTEGER NOT NULL REFERENCES blocks(height),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        hash TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
        type TEXT NOT NULL,
        sender TEXT NOT NULL,
        nonce INTEGER NOT NULL CHECK (nonce >= 1),
        round INTEGER,
        tx_json TEXT NOT NULL,
        PRIMARY KEY (height, idx)
      ) STRICT`,
      `CREATE UNIQUE INDEX transactions_sender_nonce ON transactions (sender, nonce)`,
      `CREATE INDEX transactions_type_round ON transactions (type, round)`,
      `CREATE TABLE certificates (
        height INTEGER PRIMARY KEY REFERENCES blocks(height),
        block_hash TEXT NOT NULL CHECK (length(block_hash) = 64),
        view INTEGER NOT NULL,
        signature_count INTEGER NOT NULL,
        cert_json TEXT NOT NULL
      ) STRICT`,
      `CREATE TABLE checkpoints (
        height INTEGER PRIMARY KEY REFERENCES blocks(height),
        block_hash TEXT NOT NULL CHECK (length(block_hash) = 64),
        state_root TEXT NOT NULL CHECK (length(state_root) = 64),
        proof BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL
      ) STRICT`,
      `CREATE TABLE protocol_state (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        updated_at_ms INTEGER NOT NULL
      ) STRICT`,
      `CREATE TABLE protocol_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        kind TEXT NOT NULL,
        entry BLOB NOT NULL
      ) STRICT`,
      `CREATE INDEX protocol_log_seq ON protocol_log (seq)`,
      `CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64),
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        data BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL
      ) STRICT`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
