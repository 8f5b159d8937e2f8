// LedgerStore: committed blocks, certificates, checkpoints, the replica's protocol log and
// content-addressed blobs in one libSQL database (a local file or a libSQL server).
//
// Boundary rules: a block is checked (height, link, Merkle root, signatures, replay, certificate
// quorum) before it is written, and everything read back is re-hashed; a bad input throws a
// LedgerError and writes nothing, because every write is one atomic batch.
import { type Client, createClient, type InStatement, type InValue } from "@libsql/client";
import { and, asc, between, desc, eq, gte, inArray, lt, max } from "drizzle-orm";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { resolve } from "node:path";
import { isHex } from "../crypto/bytes.ts";
import { sha256HexAsync } from "../crypto/sha256.ts";
import { blockHash, validateHeaderShape } from "../chain/block.ts";
import { canonicalize, parseCanonical } from "../chain/canonical.ts";
import { decodeCertificate, encodeCertificate, verifyCertificate } from "../chain/certificate.ts";
import { fail, LedgerError } from "../chain/errors.ts";
import { type ChainContext, chainContext, genesisHash, parseGenesis } from "../chain/genesis.ts";
import { merkleRoot } from "../chain/merkle.ts";
import { applyBlock, type ChainState, cloneState, genesisState } from "../chain/rules.ts";
import { encodeTx, txHash, validateTxShape } from "../chain/tx.ts";
import {
  type Block,
  type BlockHeader,
  type Certificate,
  type Genesis,
  LIMITS,
  type Tx,
} from "../chain/types.ts";
import { MIGRATIONS, MIGRATIONS_TABLE_SQL, SCHEMA_VERSION } from "./migrations.ts";
import * as schema from "./schema.ts";

export interface OpenOptions {
  /** Required to append blocks; must match the genesis already stored in the database. */
  genesis?: Genesis;
  /** Do not migrate or change the file (verify, show). The schema must already be current. */
  readOnly?: boolean;
  /** Token for a libsql:// or http(s):// server. */
  authToken?: string;
}

export interface CommittedBlock {
  height: number;
  hash: string;
  block: Block;
  certificate: Certificate | null;
}

export interface ProtocolLogEntry {
  /** PBFT sequence number (height) the entry belongs to; pruning is by seq. */
  seq: number;
  /** e.g. "pre-prepare", "prepare", "commit", "view-change": opaque to the store. */
  kind: string;
  bytes: Uint8Array;
}

export interface ProtocolBatch {
  /** Keys to upsert (e.g. "view", "last_executed"). */
  state?: Record<string, Uint8Array>;
  append?: ProtocolLogEntry[];
  /** Delete log entries with seq < this (after a stable checkpoint). */
  pruneBelowSeq?: number;
}

export interface CheckpointRecord {
  height: number;
  blockHash: string;
  stateRoot: string;
  /** Opaque proof, e.g. the 2f+1 PBFT checkpoint messages. */
  proof: Uint8Array;
}

const PROTOCOL_KEY_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
const PROTOCOL_KIND_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
const PROTOCOL_VALUE_BYTES_MAX = 16 * 1024 * 1024;
const PROTOCOL_BATCH_ENTRIES_MAX = 10_000;
const PROOF_BYTES_MAX = 1024 * 1024;
/** Blocks fetched per query when scanning; bounds memory to a page of blocks. */
const READ_PAGE_BLOCKS = 256;

/** A path becomes a file: URL; libsql://, http(s)://, ws(s)://, file: and :memory: pass through. */
export function databaseUrl(dbUrlOrPath: string): string {
  const value = dbUrlOrPath.trim();
  if (value === "") throw new Error("empty database path");
  if (
    /^(libsql|https?|wss?):\/\//i.test(value) || value.startsWith("file:") || value === ":memory:"
  ) return value;
  if (/[?#]/.test(value)) throw new Error(`database path must not contain '?' or '#': ${value}`);
  return `file:${resolve(value)}`;
}

export function isRemoteUrl(url: string): boolean {
  return /^(libsql|https?|wss?):\/\//i.test(url);
}

export class LedgerStore {
  readonly url: string;
  readonly #client: Client;
  readonly #db: LibSQLDatabase<typeof schema>;
  #ctx: ChainContext | null = null;
  /** Chain state after the last stored block, loaded on first append; null = reload. */
  #state: ChainState | null = null;
  #writes: Promise<unknown> = Promise.resolve();
  #readOnly = false;

  private constructor(url: string, client: Client) {
    this.url = url;
    this.#client = client;
    this.#db = drizzle(client, { schema });
  }

  static async open(dbUrlOrPath: string, options: OpenOptions = {}): Promise<LedgerStore> {
    const url = databaseUrl(dbUrlOrPath);
    // One connection for a local file: PRAGMA synchronous is per connection, and a pool would
    // open new connections without it. Writes are short synchronous batches, so one suffices.
    const client = createClient({ url, authToken: options.authToken, concurrency: 1 });
    const store = new LedgerStore(url, client);
    store.#readOnly = options.readOnly ?? false;
    try {
      await store.#configure(options.readOnly ?? false);
      if (options.readOnly) await store.#checkSchema();
      else await store.#migrate();
      await store.#bindGenesis(options.genesis, options.readOnly ?? false);
    } catch (error) {
      client.close();
      throw error;
    }
    return store;
  }

  close(): void {
    this.#client.close();
  }

  /** Chain context from the stored or given genesis; null for a database without one. */
  get context(): ChainContext | null {
    return this.#ctx;
  }

  async #configure(readOnly: boolean): Promise<void> {
    if (isRemoteUrl(this.url)) return; // the server owns durability settings
    // A fresh file starts in rollback-journal mode; WAL persists in the file once set.
    if (!readOnly) await this.#client.execute("PRAGMA journal_mode=WAL");
    await this.#client.execute("PRAGMA synchronous=FULL");
    await this.#client.execute("PRAGMA foreign_keys=ON");
    await this.#client.execute("PRAGMA busy_timeout=5000");
  }

  /** journal_mode and synchronous (2 = FULL) as the connection sees them. */
  async pragmas(): Promise<{ journalMode: string; synchronous: number }> {
    const journal = await this.#client.execute("PRAGMA journal_mode");
    const sync = await this.#client.execute("PRAGMA synchronous");
    return { journalMode: String(journal.rows[0]?.[0]), synchronous: Number(sync.rows[0]?.[0]) };
  }

  async #appliedVersions(): Promise<Set<number>> {
    const rows = await this.#client.execute("SELECT version FROM schema_migrations");
    return new Set(rows.rows.map((row) => Number(row[0])));
  }

  async #migrate(): Promise<void> {
    await this.#client.execute(MIGRATIONS_TABLE_SQL);
    let applied = await this.#appliedVersions();
    const newest = Math.max(0, ...applied);
    if (newest > SCHEMA_VERSION) {
      throw new Error(
        `${this.url}: database schema v${newest} is newer than this program's v${SCHEMA_VERSION}`,
      );
    }
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      try {
        await this.#client.batch([
          // Claim the version first: a concurrent migrator fails here, before any DDL.
          {
            sql: "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)",
            args: [migration.version, migration.name, Date.now()],
          },
          ...migration.statements,
        ], "write");
      } catch (error) {
        applied = await this.#appliedVersions();
        if (!applied.has(migration.version)) throw error;
      }
    }
  }

  async #checkSchema(): Promise<void> {
    const table = await this.#client.execute(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    );
    if (table.rows.length === 0) {
      throw new Error(`${this.url}: not a ledger database (no schema_migrations table)`);
    }
    const newest = Math.max(0, ...await this.#appliedVersions());
    if (newest !== SCHEMA_VERSION) {
      throw new Error(
        `${this.url}: database schema v${newest}, this program reads v${SCHEMA_VERSION}`,
      );
    }
  }

  async #bindGenesis(genesis: Genesis | undefined, readOnly: boolean): Promise<void> {
    const rows = await this.#db.select().from(schema.meta).where(
      eq(schema.meta.key, "genesis_json"),
    );
    const stored = rows[0]?.value;
    if (stored !== undefined) {
      const storedGenesis = parseGenesis(stored);
      if (genesis && genesisHash(genesis) !== genesisHash(storedGenesis)) {
        fail(
          "wrong_chain",
          `${this.url} holds chain ${storedGenesis.chain_id} with genesis ${
            genesisHash(storedGenesis)
          }, not ${genesisHash(genesis)}`,
        );
      }
      this.#ctx = chainContext(storedGenesis);
      return;
    }
    if (!genesis) return;
    this.#ctx = chainContext(genesis);
    if (readOnly) return;
    await this.#db.batch([
      this.#db.insert(schema.meta).values({ key: "genesis_json", value: canonicalize(genesis) }),
      this.#db.insert(schema.meta).values({ key: "genesis_hash", value: this.#ctx.genesisHash }),
      this.#db.insert(schema.meta).values({ key: "chain_id", value: genesis.chain_id }),
    ]);
  }

  #requireContext(): ChainContext {
    if (!this.#ctx) {
      throw new Error(`${this.url}: no genesis stored; open the store with a genesis first`);
    }
    return this.#ctx;
  }

  /** Runs writes one at a time: the chain-state check and the batch must not interleave. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#readOnly) return Promise.reject(new Error(`${this.url}: opened read-only`));
    return this.#serialized(work);
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#writes.then(work, work);
    this.#writes = next.catch(() => undefined);
    return next;
  }

  // ------------------------------------------------------------------ blocks

  /** Height of the last stored block (0 = only genesis). */
  async height(): Promise<number> {
    const rows = await this.#db.select({ height: max(schema.blocks.height) }).from(schema.blocks);
    return rows[0]?.height ?? 0;
  }

  /** Hash of the block at `height` (genesis hash for 0), or null if absent. Not re-verified. */
  async getBlockHash(height: number): Promise<string | null> {
    if (height === 0) return this.#requireContext().genesisHash;
    const rows = await this.#db.select({ hash: schema.blocks.hash }).from(schema.blocks).where(
      eq(schema.blocks.height, height),
    );
    return rows[0]?.hash ?? null;
  }

  /**
   * Validates a committed block with its certificate and appends it. Re-appending the block
   * already stored at that height is a no-op (a replica replaying its log after a crash);
   * a different block at a stored height is a `conflict`. Returns the block hash.
   */
  async appendCommittedBlock(
    block: Block,
    certificate: Certificate,
  ): Promise<{ hash: string; appended: boolean }> {
    return (await this.appendCommittedBlocks([{ block, certificate }]))[0];
  }

  /**
   * Appends committed blocks in height order, each validated against the chain after the one
   * before (chain rules, Merkle root, signatures, certificate quorum), together with an optional
   * protocol batch (the replica's snapshot and log), in ONE transaction: one durable commit
   * (one fsync with WAL + synchronous=FULL) for everything a validator's flush must persist.
   * If any block fails its check nothing is written. Already stored blocks are skipped
   * (appended: false) if identical, a `conflict` otherwise.
   */
  appendCommittedBlocks(
    entries: readonly { block: Block; certificate: Certificate }[],
    protocol?: ProtocolBatch,
  ): Promise<{ hash: string; appended: boolean }[]> {
    if (entries.length > APPEND_BLOCKS_MAX) {
      return Promise.reject(
        new Error(`${entries.length} blocks in one append, limit ${APPEND_BLOCKS_MAX}`),
      );
    }
    let protocolStatements: InStatement[];
    try {
      protocolStatements = protocol ? protocolBatchStatements(protocol) : [];
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#exclusive(async () => {
      const ctx = this.#requireContext();
      const base = this.#state ?? await this.#loadState(ctx);
      let next: ChainState | null = null;
      const results: { hash: string; appended: boolean }[] = [];
      const writes: { block: Block; hash: string; certificate: Certificate }[] = [];
      for (const { block, certificate } of entries) {
        const height = validateHeaderShape(block?.header, "block.header").height;
        const state = next ?? base;
        if (height <= state.height) {
          const stored = await this.getBlockHash(height);
          const hash = blockHash(block.header);
          if (stored === hash) {
            results.push({ hash, appended: false });
            continue;
          }
          fail(
            "conflict",
            `block ${stored} is already stored at this height; refusing ${hash}`,
            height,
          );
        }
        next = cloneState(state);
        const hash = await applyBlock(ctx, next, block);
        await verifyCertificate(ctx, certificate, {
          height,
          blockHash: hash,
          headerView: block.header.view,
        });
        writes.push({ block, hash, certificate });
        results.push({ hash, appended: true });
      }
      const statements = [...blockStatements(writes), ...protocolStatements];
      if (statements.length === 0) return results;
      try {
        await this.#client.batch(statements, "write");
      } catch (error) {
        this.#state = null; // unknown what the database holds now: reload before the next append
        throw error;
      }
      if (next) this.#state = next;
      return results;
    });
  }

  /**
   * A copy of the chain state after the last stored block: what a backup checks a proposed block
   * against (`applyBlock(ctx, await store.chainState(), block)`) before it prepares.
   */
  async chainState(): Promise<ChainState> {
    return await this.#serialized(async () => {
      const ctx = this.#requireContext();
      this.#state ??= await this.#loadState(ctx);
      return cloneState(this.#state);
    });
  }

  async #loadState(ctx: ChainContext): Promise<ChainState> {
    const state = genesisState(ctx);
    const last = await this.#db.select().from(schema.blocks).orderBy(desc(schema.blocks.height))
      .limit(1);
    if (last[0]) {
      const header = headerFromRow(last[0]);
      checkRowHash(header, last[0].hash);
      state.height = header.height;
      state.lastHash = last[0].hash;
      state.lastTimeMs = header.time_ms;
    }
    const t = schema.transactions;
    for (
      const row of await this.#db.select({ sender: t.sender, nonce: max(t.nonce) }).from(t).groupBy(
        t.sender,
      )
    ) {
      state.nonces.set(row.sender, row.nonce ?? 0);
    }
    const roundOf = async (type: string) =>
      (await this.#db.select({ round: max(t.round) }).from(t).where(eq(t.type, type)))[0]?.round ??
        0;
    state.roundOpened = await roundOf("round_open");
    state.roundClosed = await roundOf("round_close");
    state.roundResulted = await roundOf("round_result");
    if (state.roundOpened > state.roundClosed) {
      const updates = await this.#db.select({ type: t.type, sender: t.sender }).from(t).where(
        and(inArray(t.type, ["model_update", "edge_update"]), eq(t.round, state.roundOpened)),
      );
      for (const u of updates) state.updatesInOpenRound.add(`${u.type} ${u.sender}`);
    }
    return state;
  }

  /** The block at `height`, re-hashed after reading; null if absent. */
  async getBlock(height: number): Promise<Block | null> {
    for await (const committed of this.readCommitted(height, height)) return committed.block;
    return null;
  }

  async getCertificate(height: number): Promise<Certificate | null> {
    for await (const committed of this.readCommitted(height, height)) return committed.certificate;
    return null;
  }

  /**
   * Blocks from..to (inclusive) in height order, each checked after reading: header hash
   * recomputed from its columns, every tx's canonical form and hash, tx_count, Merkle root,
   * certificate decodes. Stops with a LedgerError naming the first bad height. Missing heights
   * inside the range are an error (`missing`); the range may end past the last block.
   */
  async *readCommitted(
    from: number,
    to: number = Number.MAX_SAFE_INTEGER,
  ): AsyncGenerator<CommittedBlock> {
    if (!Number.isSafeInteger(from) || from < 1) {
      throw new Error(`from must be a height ≥ 1, got ${from}`);
    }
    let expected = from;
    while (expected <= to) {
      const pageEnd = Math.min(to, expected + READ_PAGE_BLOCKS - 1);
      const blockRows = await this.#db.select().from(schema.blocks)
        .where(between(schema.blocks.height, expected, pageEnd)).orderBy(asc(schema.blocks.height));
      const txRows = blockRows.length === 0 ? [] : await this.#db.select().from(schema.transactions)
        .where(between(schema.transactions.height, expected, pageEnd))
        .orderBy(asc(schema.transactions.height), asc(schema.transactions.idx));
      const certRows = blockRows.length === 0
        ? []
        : await this.#db.select().from(schema.certificates)
          .where(between(schema.certificates.height, expected, pageEnd));
      const certs = new Map(certRows.map((row) => [row.height, row]));
      let txCursor = 0;
      for (const row of blockRows) {
        if (row.height !== expected) fail("missing", "block row is missing", expected);
        const header = headerFromRow(row);
        checkRowHash(header, row.hash);
        const txs: Tx[] = [];
        while (txCursor < txRows.length && txRows[txCursor].height === row.height) {
          txs.push(txFromRow(txRows[txCursor], txs.length, row.height));
          txCursor++;
        }
        if (txs.length !== header.tx_count) {
          fail("missing", `header says ${header.tx_count} txs, ${txs.length} stored`, row.height);
        }
        const root = merkleRoot(txs.map(encodeTx));
        if (root !== header.tx_root) {
          fail(
            "bad_tx_root",
            `tx_root ${header.tx_root} but stored txs hash to ${root}`,
            row.height,
          );
        }
        yield {
          height: row.height,
          hash: row.hash,
          block: { header, txs },
          certificate: certFromRow(certs.get(row.height), row.height),
        };
        expected = row.height + 1;
      }
      if (expected <= pageEnd) {
        // The page was not full: the chain ends here, unless a later block exists (a gap).
        if ((await this.height()) >= expected) fail("missing", "block row is missing", expected);
        return;
      }
    }
  }

  // ------------------------------------------------------------------ blobs

  /** Stores bytes under their SHA-256; if `expectedSha256` is given it must match. Idempotent. */
  async putBlob(bytes: Uint8Array, expectedSha256?: string): Promise<string> {
    if (this.#readOnly) throw new Error(`${this.url}: opened read-only`);
    if (!(bytes instanceof Uint8Array)) throw new Error("blob must be a Uint8Array");
    if (bytes.length > LIMITS.blob_bytes_max) {
      throw new Error(`blob of ${bytes.length} bytes exceeds ${LIMITS.blob_bytes_max}`);
    }
    const sha = await sha256HexAsync(bytes);
    if (expectedSha256 !== undefined && expectedSha256 !== sha) {
      fail("blob_mismatch", `blob hashes to ${sha}, expected ${expectedSha256}`);
    }
    await this.#db.insert(schema.blobs).values({
      sha256: sha,
      sizeBytes: bytes.length,
      data: bytes,
      createdAtMs: Date.now(),
    })
      .onConflictDoNothing();
    return sha;
  }

  /** Blob bytes, re-hashed after reading; null if absent. */
  async getBlob(sha256: string): Promise<Uint8Array | null> {
    if (!isHex(sha256, 32)) throw new Error(`blob id must be 64 lowercase hex digits: ${sha256}`);
    const rows = await this.#db.select().from(schema.blobs).where(eq(schema.blobs.sha256, sha256));
    if (!rows[0]) return null;
    const data = rows[0].data;
    const actual = await sha256HexAsync(data);
    if (actual !== sha256 || data.length !== rows[0].sizeBytes) {
      fail("blob_mismatch", `stored blob ${sha256} now hashes to ${actual} (${data.length} bytes)`);
    }
    return data;
  }

  async hasBlob(sha256: string): Promise<boolean> {
    const rows = await this.#db.select({ sha: schema.blobs.sha256 }).from(schema.blobs).where(
      eq(schema.blobs.sha256, sha256),
    );
    return rows.length > 0;
  }

  /** Every blob id; used by verify to re-hash them all. */
  async blobIds(): Promise<string[]> {
    return (await this.#db.select({ sha: schema.blobs.sha256 }).from(schema.blobs).orderBy(
      asc(schema.blobs.sha256),
    ))
      .map((r) => r.sha);
  }

  // ------------------------------------------------------------------ protocol state (PBFT)

  /** Atomically upserts state keys, appends log entries and prunes the log. */
  async persistProtocol(batch: ProtocolBatch): Promise<void> {
    const statements = protocolBatchStatements(batch);
    if (statements.length === 0) return;
    await this.#exclusive(async () => {
      await this.#client.batch(statements, "write");
    });
  }

  saveProtocolState(key: string, value: Uint8Array): Promise<void> {
    return this.persistProtocol({ state: { [key]: value } });
  }

  async loadProtocolState(): Promise<Map<string, Uint8Array>> {
    const rows = await this.#db.select().from(schema.protocolState).orderBy(
      asc(schema.protocolState.key),
    );
    return new Map(rows.map((row) => [row.key, row.value]));
  }

  appendProtocolLog(entries: ProtocolLogEntry[]): Promise<void> {
    return this.persistProtocol({ append: entries });
  }

  /** Log entries with seq ≥ fromSeq, in (seq, insertion) order. */
  async loadProtocolLog(fromSeq = 0): Promise<ProtocolLogEntry[]> {
    const rows = await this.#db.select().from(schema.protocolLog).where(
      gte(schema.protocolLog.seq, fromSeq),
    )
      .orderBy(asc(schema.protocolLog.seq), asc(schema.protocolLog.id));
    return rows.map((row) => ({ seq: row.seq, kind: row.kind, bytes: row.entry }));
  }

  /** Deletes log entries with seq < belowSeq; returns how many. */
  async pruneProtocolLog(belowSeq: number): Promise<number> {
    if (!Number.isSafeInteger(belowSeq)) throw new Error("belowSeq must be an integer");
    return await this.#exclusive(async () => {
      const result = await this.#db.delete(schema.protocolLog).where(
        lt(schema.protocolLog.seq, belowSeq),
      );
      return result.rowsAffected;
    });
  }

  // ------------------------------------------------------------------ checkpoints

  /**
   * Records a stable checkpoint. The block at `height` must be stored with this hash and state
   * root. Saving the same checkpoint twice is a no-op; a different one at that height is a conflict.
   */
  saveCheckpoint(checkpoint: CheckpointRecord): Promise<void> {
    return this.#exclusive(async () => {
      const { height, blockHash: hash, stateRoot, proof } = checkpoint;
      if (!(proof instanceof Uint8Array) || proof.length > PROOF_BYTES_MAX) {
        throw new Error(
          `checkpoint proof must be a Uint8Array of at most ${PROOF_BYTES_MAX} bytes`,
        );
      }
      const rows = await this.#db.select().from(schema.blocks).where(
        eq(schema.blocks.height, height),
      );
      if (!rows[0]) fail("missing", "checkpoint for a block that is not stored", height);
      if (rows[0].hash !== hash) {
        fail("conflict", `checkpoint block hash ${hash} is not the stored ${rows[0].hash}`, height);
      }
      if (rows[0].stateRoot !== stateRoot) {
        fail(
          "conflict",
          `checkpoint state root ${stateRoot} is not the block's ${rows[0].stateRoot}`,
          height,
        );
      }
      const existing = await this.#db.select().from(schema.checkpoints).where(
        eq(schema.checkpoints.height, height),
      );
      if (existing[0]) return;
      await this.#db.insert(schema.checkpoints).values({
        height,
        blockHash: hash,
        stateRoot,
        proof,
        createdAtMs: Date.now(),
      });
    });
  }

  async latestCheckpoint(): Promise<CheckpointRecord | null> {
    const rows = await this.#db.select().from(schema.checkpoints).orderBy(
      desc(schema.checkpoints.height),
    ).limit(1);
    return rows[0] ? checkpointFromRow(rows[0]) : null;
  }

  async listCheckpoints(): Promise<CheckpointRecord[]> {
    return (await this.#db.select().from(schema.checkpoints).orderBy(
      asc(schema.checkpoints.height),
    )).map(checkpointFromRow);
  }

  /** Raw SQL for tests and tools (e.g. corrupting a row on purpose). */
  execute(statement: string, args: (string | number | Uint8Array | null)[] = []): Promise<unknown> {
    return this.#client.execute({ sql: statement, args });
  }

  /** Counts per table, for `ledger show` summaries. */
  async counts(): Promise<
    { blocks: number; transactions: number; blobs: number; checkpoints: number }
  > {
    const count = async (table: string) =>
      Number((await this.#client.execute(`SELECT count(*) FROM ${table}`)).rows[0][0]);
    return {
      blocks: await count("blocks"),
      transactions: await count("transactions"),
      blobs: await count("blobs"),
      checkpoints: await count("checkpoints"),
    };
  }
}

/** Rows per multi-row INSERT: 8 columns × 256 rows stays far below SQLite's 32766 parameters. */
const INSERT_ROWS_MAX = 256;
/** Blocks in one appendCommittedBlocks transaction. */
const APPEND_BLOCKS_MAX = 1024;

/** `INSERT INTO table (columns) VALUES (?, …), (?, …) …` for rows, in chunks. */
function insertStatements(
  table: string,
  columns: readonly string[],
  rows: readonly InValue[][],
): InStatement[] {
  const statements: InStatement[] = [];
  const tuple = `(${columns.map(() => "?").join(", ")})`;
  for (let i = 0; i < rows.length; i += INSERT_ROWS_MAX) {
    const chunk = rows.slice(i, i + INSERT_ROWS_MAX);
    for (const row of chunk) {
      if (row.length !== columns.length) {
        throw new Error(`${table}: row of ${row.length} values for ${columns.length} columns`);
      }
    }
    statements.push({
      sql: `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${
        chunk.map(() => tuple).join(", ")
      }`,
      args: chunk.flat(),
    });
  }
  return statements;
}

const utf8 = new TextDecoder();

/** The rows of validated blocks: headers, txs (their memoized canonical bytes), certificates. */
function blockStatements(
  writes: readonly { block: Block; hash: string; certificate: Certificate }[],
): InStatement[] {
  if (writes.length === 0) return [];
  const now = Date.now();
  const blockRows: InValue[][] = [];
  const txRows: InValue[][] = [];
  const certificateRows: InValue[][] = [];
  for (const { block, hash, certificate } of writes) {
    const h = block.header;
    blockRows.push([
      h.height,
      hash,
      h.v,
      h.chain_id,
      h.prev_hash,
      h.tx_root,
      h.tx_count,
      h.view,
      h.proposer,
      h.time_ms,
      h.state_root,
      now,
    ]);
    block.txs.forEach((tx, idx) =>
      txRows.push([
        h.height,
        idx,
        txHash(tx),
        tx.type,
        tx.from,
        tx.nonce,
        txRound(tx),
        utf8.decode(encodeTx(tx)),
      ])
    );
    certificateRows.push([
      h.height,
      hash,
      certificate.view,
      certificate.signatures.length,
      utf8.decode(encodeCertificate(certificate)),
    ]);
  }
  return [
    ...insertStatements("blocks", [
      "height",
      "hash",
      "v",
      "chain_id",
      "prev_hash",
      "tx_root",
      "tx_count",
      "view",
      "proposer",
      "time_ms",
      "state_root",
      "stored_at_ms",
    ], blockRows),
    ...insertStatements(
      "transactions",
      ["height", "idx", "hash", "type", "sender", "nonce", "round", "tx_json"],
      txRows,
    ),
    ...insertStatements(
      "certificates",
      ["height", "block_hash", "view", "signature_count", "cert_json"],
      certificateRows,
    ),
  ];
}

/** Checks a protocol batch (keys, kinds, sizes, count) and turns it into statements. */
function protocolBatchStatements(batch: ProtocolBatch): InStatement[] {
  const now = Date.now();
  const statements: InStatement[] = [];
  const state = Object.entries(batch.state ?? {});
  const append = batch.append ?? [];
  if (state.length + append.length > PROTOCOL_BATCH_ENTRIES_MAX) {
    throw new Error(
      `protocol batch of ${
        state.length + append.length
      } entries exceeds ${PROTOCOL_BATCH_ENTRIES_MAX}`,
    );
  }
  for (const [key, value] of state) {
    if (!PROTOCOL_KEY_PATTERN.test(key)) {
      throw new Error(`protocol state key must match ${PROTOCOL_KEY_PATTERN}: ${key}`);
    }
    checkProtocolBytes(value, `protocol state ${key}`);
    statements.push({
      sql: "INSERT INTO protocol_state (key, value, updated_at_ms) VALUES (?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
      args: [key, value, now],
    });
  }
  for (const entry of append) {
    if (!Number.isSafeInteger(entry.seq) || entry.seq < 0) {
      throw new Error(`protocol log seq must be an integer ≥ 0: ${entry.seq}`);
    }
    if (!PROTOCOL_KIND_PATTERN.test(entry.kind)) {
      throw new Error(`protocol log kind must match ${PROTOCOL_KIND_PATTERN}`);
    }
    checkProtocolBytes(entry.bytes, `protocol log entry ${entry.kind}@${entry.seq}`);
  }
  statements.push(
    ...insertStatements(
      "protocol_log",
      ["seq", "kind", "entry"],
      append.map((entry) => [entry.seq, entry.kind, entry.bytes]),
    ),
  );
  if (batch.pruneBelowSeq !== undefined) {
    if (!Number.isSafeInteger(batch.pruneBelowSeq)) {
      throw new Error("pruneBelowSeq must be an integer");
    }
    statements.push({
      sql: "DELETE FROM protocol_log WHERE seq < ?",
      args: [batch.pruneBelowSeq],
    });
  }
  return statements;
}

function txRound(tx: Tx): number | null {
  const round = (tx.body as { round?: unknown }).round;
  return typeof round === "number" ? round : null;
}

function headerFromRow(row: typeof schema.blocks.$inferSelect): BlockHeader {
  const header = {
    v: row.v,
    chain_id: row.chainId,
    height: row.height,
    prev_hash: row.prevHash,
    tx_root: row.txRoot,
    tx_count: row.txCount,
    view: row.view,
    proposer: row.proposer,
    time_ms: row.timeMs,
    state_root: row.stateRoot,
  };
  try {
    return validateHeaderShape(header);
  } catch (error) {
    if (error instanceof LedgerError) {
      fail(error.code, `stored header: ${error.message}`, row.height);
    }
    throw error;
  }
}

function checkRowHash(header: BlockHeader, storedHash: string): void {
  const hash = blockHash(header);
  if (hash !== storedHash) {
    fail("bad_hash", `header hashes to ${hash}, stored hash is ${storedHash}`, header.height);
  }
}

function txFromRow(
  row: typeof schema.transactions.$inferSelect,
  expectedIdx: number,
  height: number,
): Tx {
  if (row.idx !== expectedIdx) fail("missing", `transaction ${expectedIdx} is missing`, height);
  let tx: Tx;
  try {
    tx = validateTxShape(
      parseCanonical(row.txJson, LIMITS.tx_bytes_max),
      LIMITS.tx_bytes_max,
      `txs[${row.idx}]`,
    );
  } catch (error) {
    fail("malformed", `txs[${row.idx}]: ${(error as Error).message}`, height);
  }
  const hash = txHash(tx);
  if (hash !== row.hash) {
    fail("bad_hash", `txs[${row.idx}] hashes to ${hash}, stored hash is ${row.hash}`, height);
  }
  if (
    tx.type !== row.type || tx.from !== row.sender || tx.nonce !== row.nonce ||
    txRound(tx) !== row.round
  ) {
    fail("bad_hash", `txs[${row.idx}]: index columns disagree with tx_json`, height);
  }
  return tx;
}

function certFromRow(
  row: typeof schema.certificates.$inferSelect | undefined,
  height: number,
): Certificate | null {
  if (!row) return null;
  let certificate: Certificate;
  try {
    certificate = decodeCertificate(row.certJson);
  } catch (error) {
    fail("bad_certificate", (error as Error).message, height);
  }
  if (
    certificate.height !== height || certificate.block_hash !== row.blockHash ||
    certificate.view !== row.view ||
    certificate.signatures.length !== row.signatureCount
  ) {
    fail("bad_certificate", "certificate columns disagree with cert_json", height);
  }
  return certificate;
}

function checkpointFromRow(row: typeof schema.checkpoints.$inferSelect): CheckpointRecord {
  return {
    height: row.height,
    blockHash: row.blockHash,
    stateRoot: row.stateRoot,
    proof: row.proof,
  };
}

function checkProtocolBytes(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array)) throw new Error(`${what} must be a Uint8Array`);
  if (value.length > PROTOCOL_VALUE_BYTES_MAX) {
    throw new Error(`${what} exceeds ${PROTOCOL_VALUE_BYTES_MAX} bytes`);
  }
}
