// deno task bench ledger: 4 validator processes of dist/iomt-sfl on loopback, a client submitting
// pre-signed transactions; committed tx/s and submit-to-commit latency p50/p99 per block size.
//
// Per block size B (genesis max_txs_per_block): a fresh cluster, a warm-up, then a fixed window in
// which a closed-loop client keeps at most a bounded number of txs submitted but not committed,
// POSTing them in batches to every replica (each checks a tx signature once, at admission; the
// proposal and the store hit the verified-signature memo). A watcher fetches every new block from
// a backup and stamps each tx's commit time when the block appears there.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { signTx } from "../ledger/chain/tx.ts";
import type { Tx } from "../ledger/chain/types.ts";
import { ProcessCluster } from "../roles/validator/process_cluster.ts";
import { machineLine, quantile } from "./stats.ts";

// IOMT_SFL_BENCH_BINARY measures another build (dist/ is shared; ./compile.sh rewrites it).
const BINARY = process.env.IOMT_SFL_BENCH_BINARY ??
  new URL("../dist/iomt-sfl", import.meta.url).pathname;
const BLOCK_SIZES = (process.env.BENCH_LEDGER_BLOCK_SIZES ?? "1,10,100,1000").split(",").map(
  Number,
);
const WINDOW_MS = Number(process.env.BENCH_LEDGER_WINDOW_MS ?? 8_000);
const WARMUP_MS = 1_500;
const SENDERS = 256;
const POST_TXS_MAX = 500;
/** >0: open loop at this many tx/s (latency at a load below capacity); 0: closed loop (capacity). */
const OFFERED_TPS = Number(process.env.BENCH_LEDGER_OFFERED_TPS ?? 0);
const OPEN_LOOP_TICK_MS = 10;
const POSTS_IN_FLIGHT_MAX = 16;

interface Row {
  blockSize: number;
  txPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  serverP50Ms: number | null;
  serverP99Ms: number | null;
  blocks: number;
  committed: number;
  meanTxsPerBlock: number;
  /** CPU time of the 4 validator processes per committed tx in the window. */
  cpuMsPerTx: number;
  /** Durable writes (fsyncs) per committed block, mean over the 4 validators, whole run. */
  writesPerBlock: number | null;
}

/** user + system CPU time of the running validator processes (Linux /proc; 100 ticks/s). */
function cpuMs(cluster: ProcessCluster): number {
  let ticks = 0;
  for (const child of cluster.processes) {
    if (!child?.pid) continue;
    try {
      const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // not Linux, or the process is gone
    }
  }
  return ticks * 10;
}

async function presign(cluster: ProcessCluster, count: number): Promise<Tx[]> {
  const txs: Tx[] = [];
  const nonces = new Map<string, number>();
  const body = { reading_e6: 1_000_000, note: "bench" };
  const batch: Promise<Tx>[] = [];
  for (let i = 0; i < count; i++) {
    const key = cluster.deviceKeys[i % cluster.deviceKeys.length];
    const nonce = (nonces.get(key.address) ?? 0) + 1;
    nonces.set(key.address, nonce);
    batch.push(signTx(key, cluster.genesis.chain_id, "x.bench", nonce, { ...body, seq: i }));
    if (batch.length >= 1000) txs.push(...await Promise.all(batch.splice(0)));
  }
  txs.push(...await Promise.all(batch));
  return txs;
}

async function runOne(blockSize: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), "iomt-bench-ledger-"));
  const cluster = await ProcessCluster.create({
    dir,
    command: [BINARY],
    chainId: "iomt-sfl-bench",
    devices: SENDERS,
    params: {
      checkpoint_interval_blocks: Number(process.env.BENCH_LEDGER_CHECKPOINT ?? 16),
      batch: {
        max_txs_per_block: blockSize,
        max_tx_bytes: 64 * 1024,
        max_block_bytes: 8 * 1024 * 1024,
      },
    },
    logLevel: process.env.BENCH_LEDGER_LOG ?? "error",
    onLog: (index, line) => {
      if (process.env.BENCH_LEDGER_LOG) console.error(`v${index}: ${line.slice(0, 300)}`);
    },
  });
  try {
    await cluster.startAll();
    const primary = (await cluster.status(0)).primary.index;
    const watcher = (primary + 1) % 4;
    // Enough pre-signed txs for the window at up to ~8k tx/s, fewer for tiny blocks.
    const outstandingMax = Math.min(8_000, Math.max(200, blockSize * 8));
    const openLoopTxs = Math.ceil((OFFERED_TPS * (WARMUP_MS + WINDOW_MS + 1_000)) / 1000);
    const txs = await presign(
      cluster,
      Math.min(80_000, Math.max(4_000, blockSize * 60, openLoopTxs)),
    );
    const submittedAt = new Map<string, number>();
    const committedAt = new Map<string, number>();
    let next = 0;
    let committedCount = 0;
    let stop = false;
    let height = 0;
    const blockTimes: { atMs: number; txs: number }[] = [];

    const watch = (async () => {
      // Long poll for the next block (`?wait_ms=`: the validator answers the moment it commits
      // it). A build without long polls answers 404 at once: then poll the in-memory height
      // (cheap) every 5 ms and fetch blocks only when it moved, as this bench did before.
      let longPoll = process.env.BENCH_LEDGER_WATCH !== "poll";
      const record = (block: { txs: Tx[] }, at: number) => {
        height++;
        blockTimes.push({ atMs: at, txs: block.txs.length });
        for (const tx of block.txs) committedAt.set(`${tx.from}:${tx.nonce}`, at);
        committedCount += block.txs.length;
      };
      while (!stop) {
        if (longPoll) {
          const asked = performance.now();
          const response = await fetch(
            `${cluster.endpoints[watcher]}/v1/blocks/${height + 1}?wait_ms=1000`,
          ).catch(() => null);
          if (response?.ok) {
            const at = performance.now();
            record((await response.json() as { block: { txs: Tx[] } }).block, at);
            continue;
          }
          await response?.body?.cancel();
          if (response?.status === 404 && performance.now() - asked < 200) longPoll = false;
          continue;
        }
        // A validator busy with a large block may not answer within the status timeout.
        const top = await cluster.status(watcher).then((status) => status.height, () => height);
        if (top <= height) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        const now = performance.now();
        for (; height < top && !stop;) {
          const response = await fetch(`${cluster.endpoints[watcher]}/v1/blocks/${height + 1}`);
          record((await response.json() as { block: { txs: Tx[] } }).block, now);
        }
      }
    })();

    const post = async (batch: Tx[]) => {
      const at = performance.now();
      for (const tx of batch) submittedAt.set(`${tx.from}:${tx.nonce}`, at);
      // To every replica, as PBFT clients do: a view change then loses no request, and each
      // replica checks every signature once, at admission.
      const body = JSON.stringify({ txs: batch });
      await Promise.all(cluster.endpoints.map(async (endpoint, i) => {
        const response = await fetch(`${endpoint}/v1/tx`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        if (response.status !== 202 && i === primary) {
          throw new Error(
            `primary refused a batch: HTTP ${response.status} ${await response.text()}`,
          );
        }
        await response.body?.cancel();
      }));
    };
    const submit = OFFERED_TPS > 0
      ? (async () => {
        // Open loop: OFFERED_TPS whatever the cluster does (at most POSTS_IN_FLIGHT_MAX POSTs
        // outstanding), so latency is the cluster's at that load, not a client queue's.
        const startedMs = performance.now();
        const inFlight = new Set<Promise<void>>();
        while (!stop && next < txs.length) {
          const due = Math.floor(((performance.now() - startedMs) / 1000) * OFFERED_TPS);
          const count = Math.min(POST_TXS_MAX, due - next, txs.length - next);
          if (count > 0 && inFlight.size < POSTS_IN_FLIGHT_MAX) {
            const batch = txs.slice(next, next + count);
            next += count;
            const request = post(batch).finally(() => inFlight.delete(request));
            inFlight.add(request);
          }
          await new Promise((resolve) => setTimeout(resolve, OPEN_LOOP_TICK_MS));
        }
        await Promise.all(inFlight);
      })()
      : (async () => {
        while (!stop && next < txs.length) {
          const outstanding = submittedAt.size - committedCount;
          if (outstanding >= outstandingMax) {
            await new Promise((resolve) => setTimeout(resolve, 1));
            continue;
          }
          const batch = txs.slice(
            next,
            next + Math.min(POST_TXS_MAX, outstandingMax - outstanding),
          );
          next += batch.length;
          await post(batch);
        }
      })();

    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
    const windowStart = performance.now();
    const cpuBefore = cpuMs(cluster);
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
    const windowEnd = performance.now();
    const validatorCpuMs = cpuMs(cluster) - cpuBefore;
    stop = true;
    await Promise.allSettled([submit, watch]);
    void started;

    const inWindow = blockTimes.filter((b) => b.atMs >= windowStart && b.atMs < windowEnd);
    const committedInWindow = inWindow.reduce((n, b) => n + b.txs, 0);
    const latencies: number[] = [];
    for (const [key, at] of committedAt) {
      if (at < windowStart || at >= windowEnd) continue;
      const sent = submittedAt.get(key);
      if (sent !== undefined) latencies.push(at - sent);
    }
    const server = await cluster.status(primary).then(
      (status) => status.commit_latency_ms as { p50: number | null; p99: number | null },
      () => ({ p50: null, p99: null }),
    );
    const writes = await Promise.all([0, 1, 2, 3].map((i) =>
      cluster.status(i).then(
        (status) => (status.durable_writes as number | undefined) ?? null,
        () => null,
      )
    ));
    const writesPerBlock = writes.every((w) => w !== null) && height > 0
      ? writes.reduce((n, w) => n! + w!, 0)! / 4 / height
      : null;
    if (latencies.length === 0) latencies.push(Number.NaN);
    console.error(
      `block size ${blockSize}: ${committedInWindow} txs committed in the window, ${height} blocks, ${next} txs submitted`,
    );
    return {
      blockSize,
      txPerSecond: committedInWindow / ((windowEnd - windowStart) / 1000),
      latencyP50Ms: quantile(latencies, 0.5),
      latencyP99Ms: quantile(latencies, 0.99),
      serverP50Ms: server.p50,
      serverP99Ms: server.p99,
      blocks: inWindow.length,
      committed: committedInWindow,
      meanTxsPerBlock: inWindow.length ? committedInWindow / inWindow.length : 0,
      cpuMsPerTx: committedInWindow > 0 ? validatorCpuMs / committedInWindow : Number.NaN,
      writesPerBlock,
    };
  } finally {
    await cluster.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchLedger(): Promise<void> {
  const rows: Row[] = [];
  for (const size of BLOCK_SIZES) rows.push(await runOne(size));
  console.log(`machine: ${await machineLine()}`);
  console.log(
    `command: deno run --allow-all bench/main.ts ledger   (4 validator processes of ${BINARY}, ${
      WINDOW_MS / 1000
    } s window per row, ${
      OFFERED_TPS > 0 ? `open loop at ${OFFERED_TPS} tx/s offered` : "closed loop"
    })`,
  );
  console.log(
    "| max txs/block | committed tx/s | mean txs/block | blocks | latency p50 | latency p99 | " +
      "primary pre-prepare→commit p50 / p99 | validator CPU per tx | tx/s if 2 idle cores | " +
      "fsyncs per block per validator |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const server = r.serverP50Ms === null
      ? "–"
      : `${r.serverP50Ms.toFixed(0)} / ${r.serverP99Ms!.toFixed(0)} ms`;
    // CPU-bound capacity: what 2 cores would commit if this run's CPU cost per tx were all.
    const capacity = Number.isFinite(r.cpuMsPerTx) ? (2 * 1000 / r.cpuMsPerTx).toFixed(0) : "–";
    console.log(
      `| ${r.blockSize} | ${r.txPerSecond.toFixed(0)} | ${
        r.meanTxsPerBlock.toFixed(1)
      } | ${r.blocks} | ` +
        `${r.latencyP50Ms.toFixed(1)} ms | ${r.latencyP99Ms.toFixed(1)} ms | ${server} | ` +
        `${r.cpuMsPerTx.toFixed(2)} ms | ${capacity} | ${
          r.writesPerBlock === null ? "–" : r.writesPerBlock.toFixed(1)
        } |`,
    );
  }
  const anchor = (what: string, rate: string, latency = "") =>
    console.log(`| anchor: ${what} | ${rate} | | | ${latency} | | | | | |`);
  anchor("HotStuff 4-node local", "≈ 1,000", "≈ 2 ms");
  anchor("Hyperledger Fabric (Caliper)", "372");
  anchor("CometBFT QA, 200 nodes", "≈ 430");
}

/**
 * Per-tx CPU of each stage a validator runs, measured in this process, steady state:
 * the budget behind the cluster's figures. Run it under the validators' runtime:
 * `bun bench/ledger.ts --stages`. Each stage: median of 5 repeats over TXS txs.
 */
export async function benchLedgerStages(): Promise<void> {
  const TXS = 1000;
  const { keyFromSeedHex } = await import("../ledger/crypto/keyfile.ts");
  const { chainContext, createGenesis, primaryOf } = await import("../ledger/chain/genesis.ts");
  const { sealTx, txHash, verifyTxAuth } = await import("../ledger/chain/tx.ts");
  const { buildBlock, blockHash, decodeBlock, encodeBlock } = await import(
    "../ledger/chain/block.ts"
  );
  const { applyBlock, genesisState } = await import("../ledger/chain/rules.ts");
  const { makeCertificate, signCommit } = await import("../ledger/chain/certificate.ts");
  const { LedgerStore } = await import("../ledger/store/store.ts");
  const { median } = await import("./stats.ts");
  const seed = (label: number) => label.toString(16).padStart(4, "0").repeat(16);
  const validators = await Promise.all(
    [0, 1, 2, 3].map((i) => keyFromSeedHex(seed(0x100 + i), "validator", `v${i}`)),
  );
  const devices = await Promise.all(
    Array.from({ length: 256 }, (_, i) => keyFromSeedHex(seed(0x1000 + i), "device", `d${i}`)),
  );
  const genesis = createGenesis({
    chainId: "bench-stages",
    genesisTimeMs: Date.now() - 1000,
    validators: validators.map((k) => ({ id: k.id, publicKey: k.publicKey })),
    participants: devices.map((k) => ({ id: k.id, publicKey: k.publicKey, role: "device" })),
  });
  const ctx = chainContext(genesis);
  const signed = await Promise.all(
    Array.from({ length: TXS }, (_, i) =>
      signTx(
        devices[i % devices.length],
        ctx.chainId,
        "x.bench",
        1 + Math.floor(i / devices.length),
        { reading_e6: 1_000_000, note: "bench", seq: i },
      )),
  );
  const body = JSON.stringify({ txs: signed });
  const fresh = () => (JSON.parse(body) as { txs: unknown[] }).txs;
  const limits = { maxTxs: TXS, maxTxBytes: 64 * 1024, maxBlockBytes: 8 * 1024 * 1024 };
  const dir = mkdtempSync(join(tmpdir(), "iomt-bench-stages-"));
  const rows: [string, number, number][] = [];
  // CPU time of this process (all its threads: WebCrypto may verify off the main thread) per tx,
  // which contention on a shared machine inflates far less than wall time; wall time beside it.
  const stage = async (what: string, work: () => Promise<unknown> | unknown) => {
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let repeat = 0; repeat < 6; repeat++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await work();
      const used = process.cpuUsage(cpu0);
      // The first repeat warms the JIT and the key caches; it is not counted.
      if (repeat === 0) continue;
      cpu.push((used.user + used.system) / TXS);
      wall.push(((performance.now() - t0) * 1000) / TXS);
    }
    rows.push([what, median(cpu), median(wall)]);
  };
  try {
    await stage(
      "admission: JSON.parse of the POST body + shape + canonical bytes (sealTx) + hash",
      () => {
        for (const value of fresh()) txHash(sealTx(value, limits.maxTxBytes));
      },
    );
    await stage("Ed25519 verify of the tx signature, one at a time", async () => {
      for (const value of fresh()) await verifyTxAuth(ctx, sealTx(value, limits.maxTxBytes));
    });
    await stage("Ed25519 verify, all txs of the request at once (Promise.all)", async () => {
      await Promise.all(
        fresh().map((value) => verifyTxAuth(ctx, sealTx(value, limits.maxTxBytes))),
      );
    });
    const txs = fresh().map((value) => sealTx(value, limits.maxTxBytes));
    await Promise.all(txs.map((tx) => verifyTxAuth(ctx, tx)));
    const build = () =>
      buildBlock({
        chainId: ctx.chainId,
        height: 1,
        prevHash: ctx.genesisHash,
        view: 0,
        proposer: primaryOf(ctx, 0).address,
        timeMs: Date.now(),
        stateRoot: "00".repeat(32),
        txs,
      });
    await stage(
      "primary: build + check (applyBlock, memoized txs) + encode the block",
      async () => {
        const block = build();
        await applyBlock(ctx, genesisState(ctx), block);
        encodeBlock(block);
      },
    );
    const block = build();
    const payload = encodeBlock(block);
    await stage("backup: decode the payload (canonical check, sealed txs, Merkle root)", () => {
      decodeBlock(payload, { ...limits, sealTxs: true });
    });
    const hash = blockHash(block);
    const target = { chainId: ctx.chainId, height: 1, view: 0, blockHash: hash };
    const certificate = await makeCertificate(
      ctx,
      target,
      await Promise.all(validators.slice(0, 3).map((k) => signCommit(k, target))),
    );
    // Opening a store (migrations, genesis) is not per block: open one per repeat beforehand.
    const stores = await Promise.all(
      Array.from({ length: 6 }, (_, i) => LedgerStore.open(join(dir, `s${i}.db`), { genesis })),
    );
    let n = 0;
    try {
      await stage(
        "store: check + write the block in one transaction (WAL, synchronous=FULL)",
        () =>
          stores[n++].appendCommittedBlocks([{ block, certificate }], {
            state: { "pbft/snapshot": new Uint8Array(1024) },
          }),
      );
    } finally {
      for (const store of stores) store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const runtime = "Bun" in globalThis
    ? `Bun ${process.versions.bun}`
    : `Deno ${process.versions.deno}`;
  console.log(`machine: ${await machineLine()}; runtime ${runtime}; ${TXS} txs, median of 5`);
  console.log("| stage (per tx, one validator) | CPU µs | wall µs |");
  console.log("|---|---|---|");
  for (const [what, cpu, wall] of rows) {
    console.log(`| ${what} | ${cpu.toFixed(1)} | ${wall.toFixed(1)} |`);
  }
}

if (import.meta.main) {
  if (process.argv.includes("--stages")) await benchLedgerStages();
  else await benchLedger();
}
