import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getTableConfig } from "drizzle-orm/sqlite-core";
import { sha256HexAsync } from "../../../ledger/crypto/sha256.ts";
import { signTx } from "../../../ledger/chain/tx.ts";
import { LedgerStore } from "../../../ledger/store/store.ts";
import { ALL_TABLES } from "../../../ledger/store/schema.ts";
import { SCHEMA_VERSION } from "../../../ledger/store/migrations.ts";
import { ChainBuilder } from "../chain/fixtures.ts";
import { rejectsWith } from "../chain/helpers.ts";

async function withDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "iomt-ledger-store-"));
  try {
    await work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function filled(path: string, count = 5): Promise<{ b: ChainBuilder; store: LedgerStore }> {
  const b = await ChainBuilder.create();
  await b.standardChain();
  const store = await LedgerStore.open(path, { genesis: b.genesis });
  for (const c of b.blocks.slice(0, count)) {
    await store.appendCommittedBlock(c.block, c.certificate);
  }
  return { b, store };
}

async function rowCount(store: LedgerStore, table: string): Promise<number> {
  const result = await store.execute(`SELECT count(*) AS n FROM ${table}`) as {
    rows: { n: number }[];
  };
  return Number(result.rows[0].n);
}

Deno.test("a fresh file is switched to WAL with synchronous=FULL, and keeps it across writes", async () => {
  await withDir(async (dir) => {
    const { store } = await filled(join(dir, "l.db"));
    assert.deepEqual(await store.pragmas(), { journalMode: "wal", synchronous: 2 });
    assert.equal(await store.height(), 5);
    store.close();
    const again = await LedgerStore.open(join(dir, "l.db"));
    assert.deepEqual(await again.pragmas(), { journalMode: "wal", synchronous: 2 });
    assert.equal(again.context?.chainId, "iomt-sfl-test"); // genesis read back from the database
    const state = await again.chainState(); // what a backup checks a proposal against
    assert.deepEqual([state.height, state.roundOpened, state.roundClosed, state.roundResulted], [
      5,
      1,
      1,
      1,
    ]);
    assert.equal(state.lastHash, await again.getBlockHash(5));
    again.close();
  });
});

Deno.test("blocks read back equal what was written; re-appending the same block is a no-op", async () => {
  const { b, store } = await filled(":memory:");
  for (const c of b.blocks) {
    assert.deepEqual(await store.getBlock(c.block.header.height), c.block);
    assert.deepEqual(await store.getCertificate(c.block.header.height), c.certificate);
    assert.equal(await store.getBlockHash(c.block.header.height), c.hash);
  }
  assert.equal(await store.getBlock(6), null);
  assert.equal(await store.getBlockHash(0), b.ctx.genesisHash);
  assert.deepEqual(await store.appendCommittedBlock(b.blocks[1].block, b.blocks[1].certificate), {
    hash: b.blocks[1].hash,
    appended: false,
  });
  const heights = [];
  for await (const c of store.readCommitted(2, 4)) heights.push(c.height);
  assert.deepEqual(heights, [2, 3, 4]);
  store.close();
});

Deno.test("bad blocks are rejected with a clear error and write nothing", async () => {
  const { b, store } = await filled(":memory:", 2);
  const before = {
    blocks: await rowCount(store, "blocks"),
    txs: await rowCount(store, "transactions"),
    certs: await rowCount(store, "certificates"),
  };
  const [, , third, fourth] = b.blocks;
  // Gap: block 4 before block 3.
  await rejectsWith(
    () => store.appendCommittedBlock(fourth.block, fourth.certificate),
    "bad_height",
    4,
  );
  // Wrong link.
  const unlinked = {
    ...third.block,
    header: { ...third.block.header, prev_hash: "00".repeat(32) },
  };
  await rejectsWith(
    () => store.appendCommittedBlock(unlinked, third.certificate),
    "bad_prev_hash",
    3,
  );
  // Certificate without quorum, or for another block.
  await rejectsWith(
    () =>
      store.appendCommittedBlock(third.block, {
        ...third.certificate,
        signatures: third.certificate.signatures.slice(0, 2),
      }),
    "no_quorum",
    3,
  );
  await rejectsWith(
    () => store.appendCommittedBlock(third.block, fourth.certificate),
    "bad_certificate",
    3,
  );
  // Different block at a stored height.
  const other = {
    ...b.blocks[1].block,
    header: { ...b.blocks[1].block.header, state_root: "cd".repeat(32) },
  };
  await rejectsWith(
    () => store.appendCommittedBlock(other, b.blocks[1].certificate),
    "conflict",
    2,
  );
  // Tampered tx.
  const tampered = { ...third.block, txs: [{ ...third.block.txs[0], nonce: 2 }] };
  await rejectsWith(
    () => store.appendCommittedBlock(tampered, third.certificate),
    "bad_tx_root",
    3,
  );
  assert.deepEqual({
    blocks: await rowCount(store, "blocks"),
    txs: await rowCount(store, "transactions"),
    certs: await rowCount(store, "certificates"),
  }, before);
  // The store is still usable afterwards.
  await store.appendCommittedBlock(third.block, third.certificate);
  assert.equal(await store.height(), 3);
  store.close();
});

Deno.test("replay state survives a restart: a reused nonce is refused after reopening", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "l.db");
    const { b, store } = await filled(path, 5);
    store.close();
    const reopened = await LedgerStore.open(path, { genesis: b.genesis });
    const d0 = b.keys.devices[0];
    const v0 = b.keys.validators[0];
    const used = b.nonces.get(d0.address)!;
    const open2 = await b.tx(v0, "round_open", { round: 2 });
    const replayed = await signTx(d0, b.genesis.chain_id, "model_update", used, {
      round: 2,
      sample_count: 5,
      blob_sha256: "aa".repeat(32),
      blob_size_bytes: 9,
    });
    const { buildBlock } = await import("../../../ledger/chain/block.ts");
    const block = buildBlock({
      chainId: b.genesis.chain_id,
      height: 6,
      prevHash: b.prevHash,
      view: 0,
      proposer: v0.address,
      timeMs: b.timeMs + 1,
      stateRoot: "ab".repeat(32),
      txs: [open2, replayed],
    });
    const cert = b.blocks[0].certificate;
    await rejectsWith(() => reopened.appendCommittedBlock(block, cert), "replay", 6);
    reopened.close();
  });
});

Deno.test("the database is bound to one genesis", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "l.db");
    const { b, store } = await filled(path, 1);
    store.close();
    const otherGenesis = { ...b.genesis, chain_id: "another-chain" };
    await rejectsWith(() => LedgerStore.open(path, { genesis: otherGenesis }), "wrong_chain");
    const bare = await LedgerStore.open(join(dir, "empty.db"));
    await assert.rejects(
      () => bare.appendCommittedBlock(b.blocks[0].block, b.blocks[0].certificate),
      /no genesis/,
    );
    bare.close();
  });
});

Deno.test("the last line of defence: a trigger refuses unlinked rows written behind the store's back", async () => {
  const { store } = await filled(":memory:", 2);
  const insert = (height: number, prev: string) =>
    store.execute(
      "INSERT INTO blocks (height, hash, v, chain_id, prev_hash, tx_root, tx_count, view, proposer, time_ms, state_root, stored_at_ms) VALUES (?, ?, 1, 'c', ?, ?, 0, 0, ?, 0, ?, 0)",
      [height, "77".repeat(32), prev, "00".repeat(32), "00".repeat(20), "00".repeat(32)],
    );
  await assert.rejects(() => insert(4, "00".repeat(32)), /height must be last \+ 1/);
  await assert.rejects(() => insert(3, "00".repeat(32)), /prev_hash must link/);
  store.close();
});

Deno.test("blobs are content-addressed: hash checked on insert and on read", async () => {
  const store = await LedgerStore.open(":memory:");
  const data = new TextEncoder().encode("model weights");
  const sha = await store.putBlob(data);
  assert.equal(sha, await sha256HexAsync(data));
  assert.deepEqual(await store.getBlob(sha), data);
  assert.equal(await store.putBlob(data, sha), sha); // idempotent
  await rejectsWith(() => store.putBlob(new Uint8Array([1, 2]), sha), "blob_mismatch");
  assert.deepEqual(await store.blobIds(), [sha]);
  assert.equal(await store.getBlob("00".repeat(32)), null);
  await assert.rejects(() => store.getBlob("XYZ"), /64 lowercase hex/);
  await store.execute("UPDATE blobs SET data = ? WHERE sha256 = ?", [
    new TextEncoder().encode("model weightz"),
    sha,
  ]);
  await rejectsWith(() => store.getBlob(sha), "blob_mismatch");
  store.close();
});

Deno.test("protocol state: keyed values, an ordered log, pruning, and atomic batches", async () => {
  const store = await LedgerStore.open(":memory:");
  const bytes = (s: string) => new TextEncoder().encode(s);
  await store.saveProtocolState("view", bytes("3"));
  await store.saveProtocolState("view", bytes("4"));
  await store.appendProtocolLog([{ seq: 5, kind: "prepare", bytes: bytes("p5") }, {
    seq: 6,
    kind: "commit",
    bytes: bytes("c6"),
  }]);
  await store.appendProtocolLog([{ seq: 5, kind: "commit", bytes: bytes("c5") }]);
  assert.deepEqual(await store.loadProtocolState(), new Map([["view", bytes("4")]]));
  assert.deepEqual((await store.loadProtocolLog()).map((e) => `${e.seq}:${e.kind}`), [
    "5:prepare",
    "5:commit",
    "6:commit",
  ]);
  assert.deepEqual((await store.loadProtocolLog(6)).map((e) => e.seq), [6]);
  assert.equal(await store.pruneProtocolLog(6), 2);
  // One bad entry: the whole batch is refused, the state key is not written.
  await assert.rejects(
    () =>
      store.persistProtocol({
        state: { stable: bytes("x") },
        append: [{ seq: -1, kind: "commit", bytes: bytes("") }],
      }),
    /seq/,
  );
  await assert.rejects(() => store.saveProtocolState("bad key", bytes("x")), /key must match/);
  assert.deepEqual([...(await store.loadProtocolState()).keys()], ["view"]);
  await store.persistProtocol({
    state: { stable: bytes("6") },
    append: [{ seq: 7, kind: "pre-prepare", bytes: bytes("pp7") }],
    pruneBelowSeq: 7,
  });
  assert.deepEqual((await store.loadProtocolLog()).map((e) => e.seq), [7]);
  store.close();
});

Deno.test("checkpoints must match a stored block and are idempotent", async () => {
  const { b, store } = await filled(":memory:", 3);
  const cp = {
    height: 2,
    blockHash: b.blocks[1].hash,
    stateRoot: b.blocks[1].block.header.state_root,
    proof: new Uint8Array([1, 2, 3]),
  };
  await store.saveCheckpoint(cp);
  await store.saveCheckpoint(cp);
  assert.deepEqual(await store.latestCheckpoint(), cp);
  await rejectsWith(() => store.saveCheckpoint({ ...cp, height: 3 }), "conflict", 3);
  await rejectsWith(
    () => store.saveCheckpoint({ ...cp, stateRoot: "00".repeat(32) }),
    "conflict",
    2,
  );
  await rejectsWith(() => store.saveCheckpoint({ ...cp, height: 9 }), "missing", 9);
  assert.equal((await store.listCheckpoints()).length, 1);
  store.close();
});

Deno.test("migrations: drizzle schema matches the SQL, reopening does not re-apply, newer schema refused", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "l.db");
    const store = await LedgerStore.open(path);
    for (const table of Object.values(ALL_TABLES)) {
      const config = getTableConfig(table);
      const info = await store.execute(`PRAGMA table_info(${config.name})`) as {
        rows: { name: string; notnull: number }[];
      };
      assert.deepEqual(
        info.rows.map((r) => r.name).sort(),
        config.columns.map((c) => c.name).sort(),
        config.name,
      );
      for (const column of config.columns) {
        const row = info.rows.find((r) => r.name === column.name)!;
        if (!column.primary) {
          assert.equal(
            Boolean(row.notnull),
            column.notNull,
            `${config.name}.${column.name} NOT NULL`,
          );
        }
      }
    }
    const versions = await store.execute("SELECT version FROM schema_migrations") as {
      rows: { version: number }[];
    };
    assert.deepEqual(versions.rows.map((r) => Number(r.version)), [SCHEMA_VERSION]);
    store.close();
    const again = await LedgerStore.open(path);
    again.close();
    const readOnly = await LedgerStore.open(path, { readOnly: true });
    await assert.rejects(() => readOnly.putBlob(new Uint8Array([1])), /read-only/);
    await assert.rejects(
      () => readOnly.saveProtocolState("view", new Uint8Array([1])),
      /read-only/,
    );
    await readOnly.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)");
    readOnly.close();
    await assert.rejects(() => LedgerStore.open(path), /newer than this program/);
    await assert.rejects(() => LedgerStore.open(path, { readOnly: true }), /v99/);
    await assert.rejects(
      () => LedgerStore.open(join(dir, "not-a-ledger.db"), { readOnly: true }),
      /not a ledger database/,
    );
  });
});

Deno.test("appendCommittedBlocks: blocks and the protocol snapshot in one transaction, all or nothing", async () => {
  const { b, store } = await filled(":memory:", 1);
  const [, second, third, fourth] = b.blocks;
  // A bad block (certificate of another height) in the middle: nothing of the batch is written,
  // neither the good block before it nor the protocol state.
  await rejectsWith(
    () =>
      store.appendCommittedBlocks(
        [
          { block: second.block, certificate: second.certificate },
          { block: third.block, certificate: fourth.certificate },
        ],
        { state: { "pbft/snapshot": new Uint8Array([1]) } },
      ),
    "bad_certificate",
  );
  assert.equal(await store.height(), 1);
  assert.equal((await store.loadProtocolState()).size, 0);
  // The good batch: 3 blocks, their txs and certificates, the snapshot and a log entry at once.
  const results = await store.appendCommittedBlocks(
    [second, third, fourth].map(({ block, certificate }) => ({ block, certificate })),
    {
      state: { "pbft/snapshot": new Uint8Array([2]) },
      append: [{ seq: 4, kind: "prepared-payload", bytes: new Uint8Array([3]) }],
    },
  );
  assert.deepEqual(results, [second, third, fourth].map((c) => ({ hash: c.hash, appended: true })));
  assert.equal(await store.height(), 4);
  assert.deepEqual((await store.loadProtocolState()).get("pbft/snapshot"), new Uint8Array([2]));
  assert.equal((await store.loadProtocolLog()).length, 1);
  const txs = b.blocks.slice(0, 4).reduce((n, c) => n + c.block.txs.length, 0);
  assert.equal(await rowCount(store, "transactions"), txs);
  for (const c of [second, third, fourth]) {
    assert.deepEqual(await store.getBlock(c.block.header.height), c.block); // re-hashed on read
    assert.deepEqual(await store.getCertificate(c.block.header.height), c.certificate);
  }
  // Re-appending stored blocks is a no-op per block.
  assert.deepEqual(
    (await store.appendCommittedBlocks([{ block: third.block, certificate: third.certificate }]))
      .map((r) => r.appended),
    [false],
  );
  store.close();
});
