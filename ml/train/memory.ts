import { readFileSync } from "node:fs";
import process from "node:process";

/** Current and peak resident set size in MB (peak from /proc on Linux, else current). */
export function residentMemoryMB(): { rssMB: number; peakRssMB: number } {
  const rssMB = process.memoryUsage().rss / 2 ** 20;
  let peakRssMB = rssMB;
  try {
    const match = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (match) peakRssMB = Number(match[1]) / 1024;
  } catch {
    // not Linux: current RSS is the best we have
  }
  return { rssMB: Math.round(rssMB), peakRssMB: Math.round(peakRssMB) };
}
