// In-process 4-validator clusters: commit, restart from the database, state transfer.
import { assert, assertEquals } from "../../assert.ts";
import { Cluster, testTx } from "./fixtures.ts";

Deno.test("4 validators commit submitted txs in the same blocks", async () => {
  const cluster = await Cluster.start();
  try {
    const [a, b] = cluster.keys.devices;
    const ids: string[] = [];
    for (let nonce = 1; nonce <= 5; nonce++) {
      for (const key of [a, b]) {
        const tx = await testTx(key, nonce);
        // Clients send to every replica; each accepts it, the primary batches.
        const results = await Promise.all(
          cluster.live().map((node) => node.submitTx(structuredClone(tx))),
        );
        for (const r of results) assert(r.ok, JSON.stringify(r));
        ids.push((results[0] as { id: string }).id);
      }
    }
    await cluster.waitFor(
      "10 txs committed everywhere",
      () => cluster.live().every((n) => n.committedTxs === 10),
    );
    const height = cluster.minHeight();
    const hashes = await Promise.all(cluster.stores.map((s) => s!.getBlockHash(height)));
    assertEquals(new Set(hashes).size, 1, `all replicas hold the same block ${height}`);
    const status = await cluster.nodes[2]!.txStatus(ids[3]);
    assertEquals(status.status, "committed");
  } finally {
    await cluster.stop();
  }
});

async function submitToAll(cluster: Cluster, tx: Awaited<ReturnType<typeof testTx>>) {
  const results = await Promise.all(
    cluster.live().map((node) => node.submitTx(structuredClone(tx))),
  );
  assert(results.some((r) => r.ok), JSON.stringify(results));
}

Deno.test("a crashed backup and then a crashed primary restart from their databases and catch up", async () => {
  const cluster = await Cluster.start();
  try {
    const [a, b, c] = cluster.keys.devices;
    let nonce = 0;
    const round = async (count: number) => {
      for (let i = 0; i < count; i++) {
        nonce++;
        for (const key of [a, b, c]) await submitToAll(cluster, await testTx(key, nonce));
      }
    };
    await round(3);
    await cluster.waitFor(
      "9 txs committed",
      () => cluster.live().every((n) => n.committedTxs === 9),
    );
    const before = await cluster.stores[0]!.height();
    const hashBefore = await cluster.stores[0]!.getBlockHash(before);

    await cluster.crash(2); // a backup
    await round(3);
    await cluster.waitFor(
      "3 live replicas commit without the backup",
      () => cluster.live().every((n) => n.app.committed.chain.nonces.get(c.address) === 6),
    );
    await cluster.startNode(2);
    const target = await cluster.stores[0]!.height();
    await cluster.waitFor(
      "the backup catches up",
      () => cluster.nodes[2]!.app.committed.height >= target,
    );

    const primary = cluster.nodes[0]!.status().primary.index;
    await cluster.crash(primary);
    await round(2);
    await cluster.waitFor(
      "a view change elects a new primary and commits",
      () => cluster.live().every((n) => n.app.committed.chain.nonces.get(c.address) === 8),
      20_000,
    );
    await cluster.startNode(primary);
    const top = Math.max(...cluster.live().map((n) => n.app.committed.height));
    await cluster.waitFor(
      "the old primary catches up",
      () => cluster.nodes[primary]!.app.committed.height >= top,
      20_000,
    );

    // No committed block was lost or changed, and every replica holds the same chain.
    assertEquals(await cluster.stores[0]!.getBlockHash(before), hashBefore);
    const height = cluster.minHeight();
    for (let h = 1; h <= height; h++) {
      const hashes = new Set(await Promise.all(cluster.stores.map((s) => s!.getBlockHash(h))));
      assertEquals(hashes.size, 1, `replicas agree on block ${h}`);
    }
    const { verifyLedger } = await import("../../../ledger/verify.ts");
    for (const store of cluster.stores) {
      const report = await verifyLedger(store!, cluster.genesis);
      assert(report.ok, JSON.stringify(report.problem));
    }
  } finally {
    await cluster.stop();
  }
});

Deno.test("a replica down for longer than its peers retain catches up by ledger sync", async () => {
  const cluster = await Cluster.start();
  try {
    const [a] = cluster.keys.devices;
    await cluster.crash(3);
    // One tx per block, waiting for each: more heights than retainedCommitsMax (3 × interval 4).
    const retained = cluster.nodes[0]!.config.retainedCommitsMax;
    for (let nonce = 1; nonce <= retained + 8; nonce++) {
      await submitToAll(cluster, await testTx(a, nonce));
      await cluster.waitFor(
        `tx ${nonce} committed`,
        () => cluster.live().every((n) => n.app.committedNonce(a.address) === nonce),
      );
    }
    const top = cluster.minHeight();
    assert(top > retained, `${top} heights committed while v3 was down`);
    await cluster.startNode(3);
    await cluster.waitFor(
      "v3 syncs the ledger and catches up",
      () => cluster.nodes[3]!.app.committed.height >= top,
      30_000,
    );
    for (let h = 1; h <= top; h++) {
      assertEquals(
        await cluster.stores[3]!.getBlockHash(h),
        await cluster.stores[0]!.getBlockHash(h),
        `block ${h}`,
      );
    }
  } finally {
    await cluster.stop();
  }
});
