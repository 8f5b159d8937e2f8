// Small statistics helpers shared by the benchmarks.
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile q in [0, 1] of unsorted values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error("quantile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position), high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

/** One line describing the machine, printed beside every benchmark table. */
export async function machineLine(): Promise<string> {
  const os = await import("node:os");
  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  const load = os.loadavg().map((l) => l.toFixed(2)).join(" ");
  return `${cpu}, ${os.cpus().length} cores, ${
    (os.totalmem() / 2 ** 30).toFixed(0)
  } GiB, load ${load}`;
}
