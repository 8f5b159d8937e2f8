// Small helpers shared by the benchmarks.
import { median } from "../util/stats.ts";
export { median, quantile } from "../util/stats.ts";

/** One line describing the machine, printed beside every benchmark table. */
export async function machineLine(): Promise<string> {
  const os = await import("node:os");
  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  const load = os.loadavg().map((l) => l.toFixed(2)).join(" ");
  return `${cpu}, ${os.cpus().length} cores, ${
    (os.totalmem() / 2 ** 30).toFixed(0)
  } GiB, load ${load}`;
}

/** Ratios a[i] / b[i] of runs measured next to each other (pair i: same repetition, same machine
 * state), with their median and range: on a machine whose speed drifts, the median of paired
 * ratios is steadier than the ratio of the two medians. */
export interface PairedRatio {
  median: number;
  min: number;
  max: number;
  ratios: number[];
}

export function pairedRatios(a: readonly number[], b: readonly number[]): PairedRatio {
  if (a.length !== b.length) {
    throw new Error(`paired ratios: ${a.length} values against ${b.length}`);
  }
  if (a.length === 0) throw new Error("paired ratios of no pairs");
  const ratios = a.map((v, i) => {
    if (!(Number.isFinite(v) && v >= 0 && Number.isFinite(b[i]) && b[i] > 0)) {
      throw new Error(`paired ratios: pair ${i} is ${v} / ${b[i]}`);
    }
    return v / b[i];
  });
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), ratios };
}

/** One timed run: samples per wall-clock second and per CPU second of the measured process. */
export interface Rate {
  wall: number;
  cpu: number;
}

export interface PairedSummary {
  /** Median of the runs of the engine under test (wall, CPU). */
  wall: number;
  cpu: number;
  /** Reference, per repetition the fastest (wall) of its thread counts; median over repetitions. */
  reference?: {
    wall: number;
    /** The thread count fastest in most repetitions (ties: the one listed first), and in how many. */
    threads: number;
    wins: number;
    /** Median of the CPU rates of the reference with `cpuThreads` threads, when it ran. */
    cpu?: number;
    /** Per repetition: wall of the engine / wall of the fastest reference run next to it. */
    ratio: PairedRatio;
    /** Per repetition: CPU rate of the engine / CPU rate of the reference with `cpuThreads`. */
    cpuRatio?: PairedRatio;
  };
}

/** Summary of an interleaved benchmark: `runs[r]` was measured right before `reference[k].runs[r]`
 * for every thread count k, so ratios are taken pair by pair (pairedRatios). */
export function summarizePaired(
  runs: readonly Rate[],
  reference: readonly { threads: number; runs: readonly Rate[] }[],
  cpuThreads = 1,
): PairedSummary {
  if (runs.length === 0) throw new Error("paired summary of no runs");
  const summary: PairedSummary = {
    wall: median(runs.map((r) => r.wall)),
    cpu: median(runs.map((r) => r.cpu)),
  };
  if (reference.length === 0) return summary;
  for (const ref of reference) {
    if (ref.runs.length !== runs.length) {
      throw new Error(
        `paired summary: ${runs.length} runs against ${ref.runs.length} with ${ref.threads} threads`,
      );
    }
  }
  const best = runs.map((_, r) =>
    reference.reduce((a, b) => (b.runs[r].wall > a.runs[r].wall ? b : a))
  );
  const wins = reference.map((ref) => best.filter((b) => b === ref).length);
  const top = wins.indexOf(Math.max(...wins));
  const bestWall = best.map((ref, r) => ref.runs[r].wall);
  const cpuRef = reference.find((ref) => ref.threads === cpuThreads);
  summary.reference = {
    wall: median(bestWall),
    threads: reference[top].threads,
    wins: wins[top],
    ratio: pairedRatios(runs.map((r) => r.wall), bestWall),
    ...(cpuRef
      ? {
        cpu: median(cpuRef.runs.map((r) => r.cpu)),
        cpuRatio: pairedRatios(runs.map((r) => r.cpu), cpuRef.runs.map((r) => r.cpu)),
      }
      : {}),
  };
  return summary;
}
