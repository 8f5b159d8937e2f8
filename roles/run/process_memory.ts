// Peak resident memory of a child process: VmHWM from /proc (Linux). null where /proc is absent
// or the process is gone, so a report says "unknown" rather than a wrong number.
import { readFileSync } from "node:fs";

export function peakRssMBOfPid(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Math.round(Number(match[1]) / 1024) : null;
  } catch {
    return null;
  }
}
