// Data-path benchmark: rows/s and peak memory loading WUSTL-EHMS-2020 and a generated CSV
// (1M rows by default), plus generation and the full prepareDataset. Prints one table.
//   deno run -A bench/data.ts [--rows 1000000] [--repeat 3]
//   bun run bench/data.ts
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { prepareDataset } from "../ml/data/prepare.ts";
import { writeSyntheticCsv } from "../ml/data/synthetic.ts";
import { loadTable } from "../ml/data/table.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ROWS = option("--rows", 1_000_000);
const REPEAT = option("--repeat", 3);
const WUSTL = new URL("../../shared/datasets/wustl-ehms-2020.csv", import.meta.url).pathname;

interface Measure {
  what: string;
  rows: number;
  bytes: number;
  ms: number[];
  cpuMs: number[];
  peakRssMb: number;
  peakHeapMb: number;
  peakArrayBuffersMb: number;
}

/** Runs fn, sampling memory every 10 ms; the peak is the max over the run. */
async function measure(
  what: string,
  bytes: number,
  fn: () => Promise<number> | number,
): Promise<Measure> {
  const ms: number[] = [];
  const cpuMs: number[] = [];
  let rows = 0;
  let peakRss = 0;
  let peakHeap = 0;
  let peakBuffers = 0;
  for (let i = 0; i < REPEAT; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    const sample = () => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers ?? 0);
    };
    const timer = setInterval(sample, 10);
    const started = performance.now();
    const cpu = process.cpuUsage();
    rows = await fn();
    ms.push(performance.now() - started);
    const used = process.cpuUsage(cpu);
    cpuMs.push((used.user + used.system) / 1000);
    sample();
    clearInterval(timer);
  }
  const mb = (x: number) => Math.round(x / 2 ** 20);
  return {
    what,
    rows,
    bytes,
    ms,
    cpuMs,
    peakRssMb: mb(peakRss),
    peakHeapMb: mb(peakHeap),
    peakArrayBuffersMb: mb(peakBuffers),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Measure[] = [];

if (existsSync(WUSTL)) {
  const bytes = statSync(WUSTL).size;
  results.push(
    await measure(
      "load WUSTL-EHMS-2020",
      bytes,
      async () => (await loadTable({ path: WUSTL })).rows,
    ),
  );
  results.push(
    await measure("prepareDataset WUSTL (binary, 5 devices)", bytes, async () => {
      const data = await prepareDataset({
        source: { path: WUSTL },
        devices: { count: 5, partition: "dirichlet" },
        seed: 0,
      });
      return data.report.rows;
    }),
  );
} else {
  console.error(`skipping WUSTL: ${WUSTL} not found`);
}

const dir = mkdtempSync(join(tmpdir(), "iomt-bench-data-"));
try {
  const csv = join(dir, "synthetic.csv");
  let bytes = 0;
  const generate = await measure(`generate ${ROWS} rows CSV`, 0, () => {
    rmSync(csv, { force: true });
    const written = writeSyntheticCsv(csv, { rows: ROWS, seed: 1 });
    bytes = written.bytes;
    return written.rows;
  });
  generate.bytes = bytes;
  results.push(generate);
  results.push(
    await measure(`load generated CSV`, bytes, async () => (await loadTable({ path: csv })).rows),
  );
  results.push(
    await measure("prepareDataset generated (binary, 5 devices)", bytes, async () => {
      const data = await prepareDataset({
        source: { path: csv },
        devices: { count: 5, partition: "dirichlet" },
        seed: 0,
      });
      return data.report.rows;
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? `bun ${process.versions.bun}`
  : `deno ${process.versions.deno ?? "?"} (V8 ${process.versions.v8})`;
console.log(
  `machine: ${cpus()[0]?.model ?? "?"} x${cpus().length}, ${
    Math.round(totalmem() / 2 ** 30)
  } GiB RAM; ${runtime}; ` +
    `median of ${REPEAT}; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`,
);
console.log("rows/s is per CPU second (the machine is shared; wall time is shown too)");
console.log(
  "| what | rows | file MB | wall s | CPU s | rows/s (CPU) | MB/s (CPU) | peak RSS MB | peak heap MB | peak ArrayBuffers MB |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of results) {
  const wall = median(r.ms) / 1000;
  const cpu = median(r.cpuMs) / 1000;
  const fileMb = r.bytes / 2 ** 20;
  console.log(
    `| ${r.what} | ${r.rows} | ${fileMb.toFixed(1)} | ${wall.toFixed(2)} | ${cpu.toFixed(2)} | ${
      Math.round(r.rows / cpu)
    } | ${
      (fileMb / cpu).toFixed(1)
    } | ${r.peakRssMb} | ${r.peakHeapMb} | ${r.peakArrayBuffersMb} |`,
  );
}
