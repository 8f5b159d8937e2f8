// `--db` may name a libSQL server. A small Hrana-over-HTTP server (hrana_server.ts) on 127.0.0.1
// stands in for sqld, so the http:// and libsql:// code paths (no PRAGMAs, batches over the wire)
// run in CI without a network or a server binary.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LedgerStore } from "../../../ledger/store/store.ts";
import { verifyLedger } from "../../../ledger/verify.ts";
import { ChainBuilder } from "../chain/fixtures.ts";
import { rejectsWith } from "../chain/helpers.ts";
import { startHranaServer } from "./hrana_server.ts";

Deno.test("a ledger on a libSQL server over HTTP: append, read back, blobs, protocol state, verify", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-ledger-remote-"));
  const server = await startHranaServer(join(dir, "server.db"));
  try {
    const b = await ChainBuilder.create();
    await b.standardChain();
    const store = await LedgerStore.open(server.url, { genesis: b.genesis });
    for (const c of b.blocks.slice(0, 4)) await store.appendCommittedBlock(c.block, c.certificate);
    // A bad block is refused and nothing reaches the server's tables.
    const fifth = b.blocks[4];
    await rejectsWith(
      () =>
        store.appendCommittedBlock(fifth.block, {
          ...fifth.certificate,
          signatures: fifth.certificate.signatures.slice(0, 2),
        }),
      "no_quorum",
      5,
    );
    assert.equal(await store.height(), 4);
    await store.appendCommittedBlock(fifth.block, fifth.certificate);
    assert.deepEqual(await store.getBlock(5), fifth.block);
    const sha = await store.putBlob(new TextEncoder().encode("weights"));
    assert.equal(new TextDecoder().decode((await store.getBlob(sha))!), "weights");
    await store.persistProtocol({
      state: { view: new Uint8Array([2]) },
      append: [{ seq: 5, kind: "commit", bytes: new Uint8Array([9]) }],
    });
    assert.deepEqual(await store.loadProtocolState(), new Map([["view", new Uint8Array([2])]]));
    store.close();

    // Reopen through the libsql:// scheme (tls=0: plain HTTP on loopback) and verify everything.
    const libsqlUrl = server.url.replace("http://", "libsql://") + "?tls=0";
    const again = await LedgerStore.open(libsqlUrl, { readOnly: true });
    const report = await verifyLedger(again, b.genesis);
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.equal(report.verified_height, 5);
    again.close();
    assert.ok((server.counts.get("batch") ?? 0) > 5, "writes went over HTTP as batches");
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
