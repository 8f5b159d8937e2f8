// Four validator processes of the compiled binary on loopback: txs commit, a backup and then the
// primary are killed with SIGKILL and restarted, they catch up from their databases and peers, no
// committed block is lost or changed, all chains end identical and `ledger verify` passes on each.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signTx } from "../../ledger/chain/tx.ts";
import { LedgerStore } from "../../ledger/store/store.ts";
import { ValidatorClient } from "../../roles/validator/client.ts";
import { ProcessCluster } from "../../roles/validator/process_cluster.ts";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { requireBinary, runBinary } from "./binary.ts";

Deno.test({
  name:
    "validator cluster: commit, kill -9 a backup and the primary, restart, identical verified chains",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = mkdtempSync(join(tmpdir(), "iomt-validators-"));
    const cluster = await ProcessCluster.create({
      dir,
      command: [requireBinary()],
      devices: 3,
      params: { checkpoint_interval_blocks: 8 },
    });
    try {
      await cluster.startAll();
      const [a, b, c] = cluster.deviceKeys;
      const client = new ValidatorClient({ genesis: cluster.genesis, requestTimeoutMs: 3_000 });
      const nonces = new Map<string, number>();
      const submitRound = async (label: string) => {
        const ids: string[] = [];
        for (const key of [a, b, c]) {
          const nonce = (nonces.get(key.address) ?? 0) + 1;
          nonces.set(key.address, nonce);
          const tx = await signTx(key, cluster.genesis.chain_id, "x.e2e", nonce, { label });
          ids.push((await client.submitTx(tx)).id);
        }
        for (const id of ids) await client.waitForTx(id, 30_000, 50);
      };
      for (let i = 0; i < 3; i++) await submitRound(`before-${i}`);
      const firstHeight = (await cluster.status(0)).height;
      assert(firstHeight >= 1, "blocks were committed");

      // A backup dies mid-run; the other three keep committing.
      const primary = (await cluster.status(0)).primary.index;
      const backup = (primary + 2) % 4;
      await cluster.kill(backup);
      for (let i = 0; i < 3; i++) await submitRound(`backup-down-${i}`);
      cluster.start(backup);
      await cluster.waitReady(backup);
      const target = (await cluster.status(primary)).height;
      await cluster.waitFor(
        `restarted backup v${backup} to reach height ${target}`,
        async () => (await cluster.status(backup)).height >= target,
        40_000,
      );

      // The primary dies: a view change elects the next one, which keeps committing.
      await cluster.kill(primary);
      const live = [0, 1, 2, 3].find((i) => i !== primary)!;
      await submitRound("primary-down");
      const newPrimary = (await cluster.status(live)).primary.index;
      assert(
        newPrimary !== primary,
        `a new primary took over (view ${(await cluster.status(live)).view})`,
      );
      cluster.start(primary);
      await cluster.waitReady(primary);
      await submitRound("after-restart");
      const top = Math.max(
        ...await Promise.all([0, 1, 2, 3].map(async (i) => (await cluster.status(i)).height)),
      );
      await cluster.waitFor(`all validators at height ${top}`, async () => {
        const heights = await Promise.all(
          [0, 1, 2, 3].map(async (i) => (await cluster.status(i)).height),
        );
        return heights.every((h) => h >= top);
      }, 40_000);
      await cluster.stopAll();

      // Identical chains, each verified by the binary against the genesis.
      const hashes: string[][] = [];
      for (let i = 0; i < 4; i++) {
        const store = await LedgerStore.open(cluster.dbPath(i), { readOnly: true });
        try {
          const list: string[] = [];
          for await (const committed of store.readCommitted(1)) list.push(committed.hash);
          hashes.push(list);
        } finally {
          store.close();
        }
        const verify = await runBinary([
          "ledger",
          "verify",
          "--db",
          cluster.dbPath(i),
          "--genesis",
          cluster.genesisPath,
        ], { timeoutMs: 30_000 });
        assertEquals(verify.code, 0, `ledger verify v${i}: ${verify.stdout}${verify.stderr}`);
        assertStringIncludes(verify.stdout, "OK");
      }
      const shortest = Math.min(...hashes.map((h) => h.length));
      assert(shortest >= top, `every chain holds ${top} blocks`);
      for (let i = 1; i < 4; i++) {
        assertEquals(
          hashes[i].slice(0, shortest),
          hashes[0].slice(0, shortest),
          `v${i} and v0 hold the same blocks`,
        );
      }
      assertEquals(nonces.get(c.address), 8, "8 rounds of txs were submitted and committed");
    } finally {
      await cluster.stopAll();
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("validator command: a key not in genesis is a usage error, a port in use exits 1", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-validator-cli-"));
  const cluster = await ProcessCluster.create({ dir, command: [requireBinary()], devices: 1 });
  const blocker = createServer();
  try {
    const { keyFileFor, keyFromSeedHex, writeKeyFile } = await import(
      "../../ledger/crypto/keyfile.ts"
    );
    const stranger = await keyFromSeedHex("77".repeat(32), "validator", "stranger");
    writeKeyFile(join(dir, "stranger.key.json"), keyFileFor(stranger, "validator", "stranger"));
    const wrongKey = await runBinary([
      "validator",
      "--genesis",
      cluster.genesisPath,
      "--key",
      join(dir, "stranger.key.json"),
      "--db",
      join(dir, "x.db"),
    ], { timeoutMs: 20_000 });
    assertEquals(wrongKey.code, 2, wrongKey.stderr);
    assertStringIncludes(wrongKey.stderr, "stranger");
    assertStringIncludes(wrongKey.stderr, "is not a validator");

    const port = Number(new URL(cluster.endpoints[0]).port);
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", () => resolve()));
    const busy = await runBinary([
      "validator",
      "--genesis",
      cluster.genesisPath,
      "--key",
      join(dir, "v0.key.json"),
      "--db",
      join(dir, "v0.db"),
    ], { timeoutMs: 20_000 });
    assertEquals(busy.code, 1, busy.stderr);
    assertStringIncludes(busy.stderr, "already in use");
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});
