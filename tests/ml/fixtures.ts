// Small seeded LabeledMatrix fixtures for the engine's tests (ml/data builds the real loaders).
import assert from "node:assert/strict";
import type { LabeledMatrix } from "../../ml/data/types.ts";
import { prng } from "../../ml/model/random.ts";
import { initTensorflow } from "../../ml/tf/backend.ts";
import { configureLogging } from "../../util/log.ts";

/** Tests run on the production path: wasm + SIMD + kernel patches. */
export async function tfForTests() {
  configureLogging({ level: "warn" }); // keep test output to failures
  return (await initTensorflow({ backend: "wasm" })).tf;
}

export interface FixtureOptions {
  rows: number;
  features: number;
  classes?: number;
  seed: number;
  /** Class-dependent shift of the informative features; larger = easier. */
  separation?: number;
}

/** Gaussian features; class k shifts the first few features by k * separation (learnable). */
export function makeFixture(options: FixtureOptions): LabeledMatrix {
  const { rows, features, seed } = options;
  const classes = options.classes ?? 2;
  const separation = options.separation ?? 1.5;
  const random = prng(seed);
  const gaussian = () => {
    const u = Math.max(random(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  const values = new Float32Array(rows * features);
  const labels = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    // ~60% normal traffic, the rest split over attack classes.
    const label = random() < 0.6 ? 0 : 1 + Math.floor(random() * (classes - 1));
    labels[r] = label;
    for (let c = 0; c < features; c++) {
      const shift = c < Math.min(4, features) ? label * separation * (c % 2 === 0 ? 1 : -1) : 0;
      values[r * features + c] = gaussian() + shift;
    }
  }
  return {
    featureNames: Array.from({ length: features }, (_, c) => `f${c}`),
    features: values,
    rows,
    labels,
    classNames: Array.from({ length: classes }, (_, k) => (k === 0 ? "normal" : `attack${k}`)),
  };
}

/** Rows [start, end) of a matrix. */
export function sliceRows(m: LabeledMatrix, start: number, end: number): LabeledMatrix {
  const f = m.featureNames.length;
  return {
    ...m,
    features: m.features.slice(start * f, end * f),
    labels: m.labels.slice(start, end),
    rows: end - start,
  };
}

/** Splits into `parts` contiguous partitions of near-equal size. */
export function partition(m: LabeledMatrix, parts: number): LabeledMatrix[] {
  const out: LabeledMatrix[] = [];
  for (let k = 0; k < parts; k++) {
    out.push(
      sliceRows(m, Math.floor((k * m.rows) / parts), Math.floor(((k + 1) * m.rows) / parts)),
    );
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The values of several tensors, concatenated (gradients compared as one vector). */
export function flatten(tensors: { dataSync(): unknown }[]): Float32Array {
  const parts = tensors.map((t) => t.dataSync() as Float32Array);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bit-for-bit equality of two float32 arrays. With `anyNaN`, any NaN equals any NaN (their
 * payloads may differ between engines); without it NaN payloads must match too. */
export function assertSameBits(
  a: ArrayLike<number> | null,
  b: ArrayLike<number> | null,
  what: string,
  options: { anyNaN?: boolean } = {},
) {
  assert.equal(a === null, b === null, `${what}: null on one side`);
  if (a === null || b === null) return;
  assert.equal(a.length, b.length, `${what}: length`);
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < a.length; i++) {
    if (options.anyNaN && Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    f[0] = a[i];
    const ba = bits[0];
    f[0] = b[i];
    if (ba !== bits[0]) assert.fail(`${what}: differs at ${i}: ${a[i]} vs ${b[i]}`);
  }
}
