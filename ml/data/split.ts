// Train/validation/test splits (stratified and seeded, or time-ordered) and the partition of
// the training rows across federated devices (IID, Dirichlet label skew, quantity skew).
import { Rng } from "./random.ts";

export type SplitMode = "stratified" | "time";

export interface SplitOptions {
  mode?: SplitMode;
  /** Fractions of all rows; train gets the rest. */
  validation?: number;
  test?: number;
}

export interface SplitIndexes {
  train: Int32Array;
  validation: Int32Array;
  test: Int32Array;
}

/** Row indexes of each split, each in ascending (file / time) order. */
export function splitRows(
  labels: Int32Array,
  classCount: number,
  options: SplitOptions,
  seed: number,
  time: Float64Array | null = null,
): SplitIndexes {
  const validation = options.validation ?? 0.15;
  const test = options.test ?? 0.15;
  if (!(validation >= 0 && test >= 0 && validation + test < 1)) {
    throw new Error(`splitRows: validation ${validation} + test ${test} must be in [0, 1)`);
  }
  const rows = labels.length;
  if ((options.mode ?? "stratified") === "time") {
    const order = new Int32Array(rows);
    for (let i = 0; i < rows; i++) order[i] = i;
    // Stable sort by time; rows without a time keep their file position relative to others.
    if (time) order.sort((a, b) => (time[a] - time[b]) || (a - b));
    const nTest = Math.round(rows * test);
    const nValidation = Math.round(rows * validation);
    const nTrain = rows - nTest - nValidation;
    const sorted = (part: Int32Array) => part.slice().sort();
    return {
      train: sorted(order.subarray(0, nTrain)),
      validation: sorted(order.subarray(nTrain, nTrain + nValidation)),
      test: sorted(order.subarray(nTrain + nValidation)),
    };
  }
  const rng = new Rng(seed);
  const byClass: number[][] = Array.from({ length: classCount }, () => []);
  for (let r = 0; r < rows; r++) byClass[labels[r]].push(r);
  const train: number[] = [];
  const val: number[] = [];
  const tst: number[] = [];
  for (const members of byClass) {
    rng.shuffle(members);
    const nTest = Math.round(members.length * test);
    const nValidation = Math.round(members.length * validation);
    for (let i = 0; i < members.length; i++) {
      if (i < nTest) tst.push(members[i]);
      else if (i < nTest + nValidation) val.push(members[i]);
      else train.push(members[i]);
    }
  }
  const ascending = (part: number[]) => Int32Array.from(part).sort();
  return { train: ascending(train), validation: ascending(val), test: ascending(tst) };
}

export type Partition = "iid" | "dirichlet" | "quantity";
export const PARTITIONS: readonly Partition[] = ["iid", "dirichlet", "quantity"];

export interface DeviceOptions {
  count: number;
  partition?: Partition;
  /** Concentration for dirichlet (label skew) and quantity skew; smaller = more skewed. */
  alpha?: number;
}

export const DEVICES_MAX = 10_000;
const DIRICHLET_ATTEMPTS_MAX = 50;

/** Splits training row indexes across devices; every device gets at least one row. */
export function partitionRows(
  rows: Int32Array,
  labels: Int32Array,
  classCount: number,
  options: DeviceOptions,
  seed: number,
): Int32Array[] {
  const count = options.count;
  const partition = options.partition ?? "iid";
  const alpha = options.alpha ?? 0.5;
  if (!Number.isInteger(count) || count < 1 || count > DEVICES_MAX) {
    throw new Error(`partitionRows: device count must be 1..${DEVICES_MAX}, got ${count}`);
  }
  if (!(alpha > 0)) throw new Error(`partitionRows: alpha must be > 0, got ${alpha}`);
  if (rows.length < count) {
    throw new Error(`partitionRows: ${rows.length} training rows cannot fill ${count} devices`);
  }
  const rng = new Rng(seed ^ 0x5eed);
  let parts: number[][];
  if (partition === "iid") {
    const order = rng.shuffle(Array.from(rows));
    parts = Array.from({ length: count }, () => []);
    order.forEach((row, i) => parts[i % count].push(row));
  } else if (partition === "quantity") {
    // Sizes from Dirichlet(alpha), with a floor so no device is empty; labels stay IID.
    const order = rng.shuffle(Array.from(rows));
    const floor = Math.max(1, Math.floor(0.02 * rows.length / count));
    const spare = rows.length - floor * count;
    const shares = rng.dirichlet(count, alpha);
    const sizes = apportion(spare, shares).map((n) => n + floor);
    parts = [];
    let start = 0;
    for (const size of sizes) {
      parts.push(order.slice(start, start + size));
      start += size;
    }
  } else {
    const byClass: number[][] = Array.from({ length: classCount }, () => []);
    for (const row of rows) byClass[labels[row]].push(row);
    parts = [];
    for (let attempt = 0; attempt < DIRICHLET_ATTEMPTS_MAX; attempt++) {
      parts = Array.from({ length: count }, () => []);
      for (const members of byClass) {
        if (members.length === 0) continue;
        const order = rng.shuffle(members.slice());
        const sizes = apportion(order.length, rng.dirichlet(count, alpha));
        let start = 0;
        sizes.forEach((size, device) => {
          for (let i = start; i < start + size; i++) parts[device].push(order[i]);
          start += size;
        });
      }
      if (parts.every((part) => part.length > 0)) break;
    }
    // Still an empty device after many draws (tiny alpha, many devices): give it one row from
    // the largest device rather than fail, and say so in the report via its class counts.
    for (const part of parts) {
      if (part.length > 0) continue;
      const largest = parts.reduce((a, b) => (b.length > a.length ? b : a));
      part.push(largest.pop()!);
    }
  }
  return parts.map((part) => Int32Array.from(part).sort());
}

/** Integer counts summing to total, proportional to shares (largest remainder). */
export function apportion(total: number, shares: readonly number[]): number[] {
  const raw = shares.map((share) => share * total);
  const counts = raw.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = raw.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) =>
    b[0] - a[0] || a[1] - b[1]
  );
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) counts[order[k][1]]++;
  return counts;
}

/** Rows per class among the given row indexes. */
export function classCounts(rows: Int32Array, labels: Int32Array, classCount: number): number[] {
  const counts = new Array<number>(classCount).fill(0);
  for (const row of rows) counts[labels[row]]++;
  return counts;
}
