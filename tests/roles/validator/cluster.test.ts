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
