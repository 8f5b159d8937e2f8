// Tamper with a stored ledger directly in its SQLite file (a second connection, plain SQL) and
// check that verification names the first bad block and the reason, for every kind of change.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { Command } from "@commander-js/extra-typings";
import { canonicalize } from "../../ledger/chain/canonical.ts";
import { blockHash } from "../../ledger/chain/block.ts";
import { txHash } from "../../ledger/chain/tx.ts";
import type { LedgerErrorCode } from "../../ledger/chain/errors.ts";
import { LedgerStore } from "../../ledger/store/store.ts";
import { verifyLedger } from "../../ledger/verify.ts";
import { ledgerCommand } from "../../cli/commands/ledger.ts";
import { UsageError } from "../../cli/usage_error.ts";
import { ChainBuilder } from "./chain/fixtures.ts";
import { configureLogging } from "../../util/log.ts";

configureLogging({ level: "silent" });

const builder = await ChainBuilder.create();
await builder.standardChain();

interface Fixture {
  dir: string;
  db: string;
  genesisFile: string;
  blobSha: string;
}

async function withLedger(work: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "iomt-ledger-verify-"));
  try {
    const db = join(dir, "ledger.db");
    const store = await LedgerStore.open(db, { genesis: builder.genesis });
    for (const c of builder.blocks) await store.appendCommittedBlock(c.block, c.certificate);
    const blobSha = await store.putBlob(new TextEncoder().encode("weights v1"));
    store.close();
    const genesisFile = join(dir, "genesis.json");
    writeFileSync(genesisFile, JSON.stringify(builder.genesis, null, 2));
    await work({ dir, db, genesisFile, blobSha });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs SQL on the file through its own connection, as an attacker or a disk fault would. */
async function tamper(
  db: string,
  statements: { sql: string; args?: (string | number)[] }[],
): Promise<void> {
  const client = createClient({ url: `file:${db}` });
  try {
    for (const s of statements) {
      const result = await client.execute({ sql: s.sql, args: s.args ?? [] });
      assert.ok(result.rowsAffected > 0, `tamper statement changed nothing: ${s.sql}`);
    }
  } finally {
    client.close();
  }
}

async function verifyFile(db: string, genesis = builder.genesis) {
  const store = await LedgerStore.open(db, { readOnly: true });
  try {
    return await verifyLedger(store, genesis);
  } finally {
    store.close();
  }
}

const certOf = (height: number) => builder.blocks[height - 1].certificate;

/** Each case: SQL changes, then the expected first bad height and reason. */
const CASES: {
  name: string;
  sql: { sql: string; args?: (string | number)[] }[];
  height?: number;
  code: LedgerErrorCode;
}[] = [
  {
    name: "block state_root",
    sql: [{ sql: "UPDATE blocks SET state_root = ? WHERE height = 3", args: ["cd".repeat(32)] }],
    height: 3,
    code: "bad_hash",
  },
  {
    name: "block time_ms",
    sql: [{ sql: "UPDATE blocks SET time_ms = time_ms + 1 WHERE height = 2" }],
    height: 2,
    code: "bad_hash",
  },
  {
    name: "block view",
    sql: [{ sql: "UPDATE blocks SET view = 5 WHERE height = 4" }],
    height: 4,
    code: "bad_hash",
  },
  {
    name: "block hash column",
    sql: [{ sql: "UPDATE blocks SET hash = ? WHERE height = 5", args: ["00".repeat(32)] }],
    height: 5,
    code: "bad_hash",
  },
  {
    name: "block rewritten consistently (hash recomputed, next prev_hash relinked)",
    sql: (() => {
      const { block } = builder.blocks[2];
      const forged = blockHash({ ...block.header, state_root: "cd".repeat(32) });
      return [
        {
          sql: "UPDATE blocks SET state_root = ?, hash = ? WHERE height = 3",
          args: ["cd".repeat(32), forged],
        },
        { sql: "UPDATE blocks SET prev_hash = ? WHERE height = 4", args: [forged] },
      ];
    })(),
    height: 3,
    code: "bad_certificate",
  },
  {
    name: "tx body (sample_count)",
    sql: [{
      sql:
        "UPDATE transactions SET tx_json = replace(tx_json, '\"sample_count\":101', '\"sample_count\":901') WHERE height = 2 AND idx = 1",
    }],
    height: 2,
    code: "bad_hash",
  },
  {
    name: "tx body with its hash column recomputed",
    sql: (() => {
      const tx = builder.blocks[1].block.txs[1];
      const forged = { ...tx, body: { ...tx.body, sample_count: 901 } };
      return [{
        sql: "UPDATE transactions SET tx_json = ?, hash = ? WHERE height = 2 AND idx = 1",
        args: [canonicalize(forged), txHash(forged as never)],
      }];
    })(),
    height: 2,
    code: "bad_tx_root",
  },
  {
    name: "tx nonce column",
    sql: [{ sql: "UPDATE transactions SET nonce = 7 WHERE height = 2 AND idx = 0" }],
    height: 2,
    code: "bad_hash",
  },
  {
    name: "tx order swapped",
    sql: [
      { sql: "UPDATE transactions SET idx = 100 WHERE height = 2 AND idx = 0" },
      { sql: "UPDATE transactions SET idx = 0 WHERE height = 2 AND idx = 1" },
      { sql: "UPDATE transactions SET idx = 1 WHERE height = 2 AND idx = 100" },
    ],
    height: 2,
    code: "bad_tx_root",
  },
  {
    name: "tx row deleted",
    sql: [{ sql: "DELETE FROM transactions WHERE height = 5 AND idx = 2" }],
    height: 5,
    code: "missing",
  },
  {
    name: "certificate signature byte",
    sql: (() => {
      const cert = structuredClone(certOf(4));
      const sig = cert.signatures[1].sig;
      cert.signatures[1].sig = (sig[0] === "0" ? "1" : "0") + sig.slice(1);
      return [{
        sql: "UPDATE certificates SET cert_json = ? WHERE height = 4",
        args: [canonicalize(cert)],
      }];
    })(),
    height: 4,
    code: "bad_certificate",
  },
  {
    name: "certificate below quorum (one signature dropped, count column updated)",
    sql: (() => {
      const cert = structuredClone(certOf(2));
      cert.signatures = cert.signatures.slice(0, 2);
      return [{
        sql: "UPDATE certificates SET cert_json = ?, signature_count = 2 WHERE height = 2",
        args: [canonicalize(cert)],
      }];
    })(),
    height: 2,
    code: "no_quorum",
  },
  {
    name: "certificate signer replaced by a non-validator",
    sql: (() => {
      const cert = structuredClone(certOf(1));
      cert.signatures[2].validator = builder.keys.devices[0].address;
      cert.signatures.sort((a, b) => (a.validator < b.validator ? -1 : 1));
      return [{
        sql: "UPDATE certificates SET cert_json = ? WHERE height = 1",
        args: [canonicalize(cert)],
      }];
    })(),
    height: 1,
    code: "bad_certificate",
  },
  {
    name: "certificate json not canonical",
    sql: [{ sql: "UPDATE certificates SET cert_json = ' ' || cert_json WHERE height = 3" }],
    height: 3,
    code: "bad_certificate",
  },
  {
    name: "certificate row deleted",
    sql: [{ sql: "DELETE FROM certificates WHERE height = 3" }],
    height: 3,
    code: "missing",
  },
  {
    name: "middle block deleted",
    sql: [{ sql: "DELETE FROM certificates WHERE height = 3" }, {
      sql: "DELETE FROM transactions WHERE height = 3",
    }, { sql: "DELETE FROM blocks WHERE height = 3" }],
    height: 3,
    code: "missing",
  },
  {
    name: "blob bytes",
    sql: [{ sql: "UPDATE blobs SET data = CAST(? AS BLOB)", args: ["weights v2"] }],
    code: "blob_mismatch",
  },
];

Deno.test("an untouched ledger verifies", async () => {
  await withLedger(async ({ db }) => {
    const report = await verifyFile(db);
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.deepEqual(
      [report.verified_height, report.stored_height, report.txs_checked, report.blobs_checked],
      [5, 5, 8, 1],
    );
  });
});

for (const c of CASES) {
  Deno.test(`verify catches tampering: ${c.name}`, async () => {
    await withLedger(async ({ db }) => {
      await tamper(db, c.sql);
      const report = await verifyFile(db);
      assert.equal(report.ok, false, `${c.name} went unnoticed`);
      assert.equal(report.problem?.code, c.code, report.problem?.message ?? "");
      assert.equal(report.problem?.height, c.height, report.problem?.message ?? "");
      if (c.height !== undefined) assert.equal(report.verified_height, c.height - 1);
    });
  });
}

Deno.test("verify refuses a genesis other than the database's", async () => {
  await withLedger(async ({ db }) => {
    const report = await verifyFile(db, { ...builder.genesis, chain_id: "another-chain" });
    assert.equal(report.ok, false);
    assert.equal(report.problem?.code, "wrong_chain");
  });
});

// ------------------------------------------------------------------ CLI

function overrideExits(
  command: Command<unknown[], Record<string, unknown>, Record<string, unknown>>,
): void {
  command.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  for (const child of command.commands) overrideExits(child as never);
}

async function runLedger(args: string[]): Promise<{ out: string; error?: unknown }> {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
  const command = ledgerCommand();
  overrideExits(command as never);
  try {
    await command.parseAsync(args, { from: "user" });
    return { out: lines.join("\n") };
  } catch (error) {
    return { out: lines.join("\n"), error };
  } finally {
    console.log = original;
  }
}

Deno.test("cli: ledger verify prints OK, or the first bad block and exits with an error", async () => {
  await withLedger(async ({ db, genesisFile }) => {
    const ok = await runLedger(["verify", "--db", db, "--genesis", genesisFile]);
    assert.equal(ok.error, undefined);
    assert.match(ok.out, /^OK {2}chain iomt-sfl-test/);
    const json = await runLedger(["verify", "--db", db, "--genesis", genesisFile, "--json"]);
    assert.equal(JSON.parse(json.out).ok, true);
    await tamper(db, CASES[0].sql);
    const bad = await runLedger(["verify", "--db", db, "--genesis", genesisFile]);
    assert.ok(bad.error instanceof Error && !(bad.error instanceof UsageError));
    assert.match((bad.error as Error).message, /failed at block 3 \(bad_hash\)/);
    assert.match(bad.out, /first bad block: 3\nreason: bad_hash/);
    const badJson = await runLedger(["verify", "--db", db, "--genesis", genesisFile, "--json"]);
    assert.deepEqual(JSON.parse(badJson.out).problem.height, 3);
  });
});

Deno.test("cli: usage errors name the flag", async () => {
  await withLedger(async ({ dir, db, genesisFile }) => {
    const noDb = await runLedger([
      "verify",
      "--db",
      join(dir, "nope.db"),
      "--genesis",
      genesisFile,
    ]);
    assert.ok(noDb.error instanceof UsageError);
    assert.match((noDb.error as Error).message, /^--db: no such file/);
    const noGenesis = await runLedger(["verify", "--db", db, "--genesis", join(dir, "nope.json")]);
    assert.ok(noGenesis.error instanceof UsageError);
    assert.match((noGenesis.error as Error).message, /^--genesis: no such file/);
    writeFileSync(
      join(dir, "float.json"),
      JSON.stringify({ ...builder.genesis, genesis_time_ms: 1.5 }),
    );
    const floatGenesis = await runLedger([
      "verify",
      "--db",
      db,
      "--genesis",
      join(dir, "float.json"),
    ]);
    assert.ok(floatGenesis.error instanceof UsageError);
    assert.match(
      (floatGenesis.error as Error).message,
      /^--genesis: .*genesis_time_ms: 1\.5 is not an integer/,
    );
    writeFileSync(join(dir, "notdb.db"), "hello");
    const notDb = await runLedger(["show", "--db", join(dir, "notdb.db")]);
    assert.ok(notDb.error instanceof UsageError, String(notDb.error));
    const badLimit = await runLedger(["show", "--db", db, "--limit", "0"]);
    assert.match(String((badLimit.error as Error)?.message), /expected an integer from 1 to 10000/);
  });
});

Deno.test("cli: ledger show prints blocks and transactions, as text or JSON", async () => {
  await withLedger(async ({ db }) => {
    const text = await runLedger(["show", "--db", db]);
    assert.equal(text.error, undefined, String(text.error));
    assert.match(text.out, /^chain iomt-sfl-test {2}genesis [0-9a-f]{12}… {2}height 5/);
    assert.match(text.out, /#2 {2}[0-9a-f]{12}…/);
    assert.match(text.out, /\[1\] model_update {2}from dev-1 {2}nonce 1 {2}round 1 {2}samples 101/);
    assert.match(
      text.out,
      /quarantine {4}from admin-0 {2}nonce 1 {2}target dev-2 {2}reason "norm outlier"/,
    );
    assert.match(text.out, /cert 4\/4 \(view 1\)/);
    const json = JSON.parse(
      (await runLedger(["show", "--db", db, "--from", "2", "--limit", "2", "--json"])).out,
    );
    assert.deepEqual(json.blocks.map((b: { height: number }) => b.height), [2, 3]);
    assert.equal(json.blocks[0].hash, builder.blocks[1].hash);
    assert.equal(json.blocks[0].txs.length, 3);
    const past = await runLedger(["show", "--db", db, "--from", "9"]);
    assert.match(past.out, /no blocks from height 9 \(last is 5\)/);
  });
});
