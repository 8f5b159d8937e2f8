// Small helpers shared by the benchmarks.
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
