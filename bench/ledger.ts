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
    const txs = await presign(cluster, Math.min(80_000, Math.max(4_000, blockSize * 60)));
    const submittedAt = new Map<string, number>();
    const committedAt = new Map<string, number>();
    let next = 0;
    let committedCount = 0;
    let stop = false;
    let height = 0;
    const blockTimes: { atMs: number; txs: number }[] = [];

    const watch = (async () => {
      // Poll the in-memory height (cheap), fetch blocks only when it moved: polling the block
      // endpoint itself would cost the validator a database read per poll.
      while (!stop) {
        // A validator busy with a large block may not answer within the status timeout.
        const top = await cluster.status(watcher).then((status) => status.height, () => height);
        if (top <= height) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        const now = performance.now();
        for (; height < top && !stop;) {
          const response = await fetch(`${cluster.endpoints[watcher]}/v1/blocks/${height + 1}`);
          const { block } = await response.json() as { block: { txs: Tx[] } };
          height++;
          blockTimes.push({ atMs: now, txs: block.txs.length });
          for (const tx of block.txs) committedAt.set(`${tx.from}:${tx.nonce}`, now);
          committedCount += block.txs.length;
        }
      }
    })();

    const submit = (async () => {
      while (!stop && next < txs.length) {
        const outstanding = submittedAt.size - committedCount;
        if (outstanding >= outstandingMax) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          continue;
        }
        const batch = txs.slice(next, next + Math.min(POST_TXS_MAX, outstandingMax - outstanding));
        next += batch.length;
        const at = performance.now();
        for (const tx of batch) submittedAt.set(`${tx.from}:${tx.nonce}`, at);
        // To every replica, as PBFT clients do: a view change then loses no request, and the
        // signature each backup checks at admission is remembered for the block it validates.
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
    `command: deno run --allow-all bench/main.ts ledger   (4 validator processes of dist/iomt-sfl, ${
      WINDOW_MS / 1000
    } s window per row)`,
  );
  console.log(
    "| max txs/block | committed tx/s | mean txs/block | blocks | latency p50 | latency p99 | " +
      "primary pre-prepare→commit p50 / p99 | validator CPU per tx | tx/s if 2 idle cores |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
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
        `${r.cpuMsPerTx.toFixed(2)} ms | ${capacity} |`,
    );
  }
  const anchor = (what: string, rate: string, latency = "") =>
    console.log(`| anchor: ${what} | ${rate} | | | ${latency} | | | | |`);
  anchor("HotStuff 4-node local", "≈ 1,000", "≈ 2 ms");
  anchor("Hyperledger Fabric (Caliper)", "372");
  anchor("CometBFT QA, 200 nodes", "≈ 430");
}

if (import.meta.main) await benchLedger();
