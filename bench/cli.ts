// deno task bench cli: size of dist/iomt-sfl and the start time of `iomt-sfl --help`.
import { statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { machineLine, median, quantile } from "./stats.ts";

const BINARY = new URL("../dist/iomt-sfl", import.meta.url).pathname;
const RUNS = 10;

export async function benchCli(): Promise<void> {
  const sizeBytes = statSync(BINARY).size;
  spawnSync(BINARY, ["--help"]); // warm the page cache once
  const startMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const result = spawnSync(BINARY, ["--help"], { stdio: "ignore" });
    startMs.push(performance.now() - t0);
    if (result.status !== 0) throw new Error(`iomt-sfl --help exited ${result.status}`);
  }
  console.log(`machine: ${await machineLine()}`);
  console.log("| what | value | goal |");
  console.log("|---|---|---|");
  console.log(`| dist/iomt-sfl size | ${(sizeBytes / 2 ** 20).toFixed(1)} MiB | ≤ 150 MB |`);
  console.log(
    `| \`iomt-sfl --help\` start, median of ${RUNS} | ${
      median(startMs).toFixed(0)
    } ms | ≤ 150 ms |`,
  );
  console.log(
    `| \`iomt-sfl --help\` start, p90 of ${RUNS} | ${quantile(startMs, 0.9).toFixed(0)} ms | |`,
  );
}

if (import.meta.main) await benchCli();
