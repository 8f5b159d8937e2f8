// Parameters as one flat Float32Array with a layout descriptor: what crosses process boundaries
// (workers, the ledger, validators) is a flat vector plus the layout's fingerprint.

export interface ParamEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

export interface ParamLayout {
  readonly entries: readonly ParamEntry[];
  readonly totalLength: number;
  /** "name[shape];..." — two vectors are compatible iff their fingerprints are equal. */
  readonly fingerprint: string;
}

export const PARAMS_TOTAL_MAX = 1 << 26; // 64 Mi floats = 256 MB

export function makeLayout(
  specs: readonly { name: string; shape: readonly number[] }[],
): ParamLayout {
  const entries: ParamEntry[] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const spec of specs) {
    if (names.has(spec.name)) throw new Error(`param layout: duplicate name ${spec.name}`);
    names.add(spec.name);
    if (!spec.shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`param layout: ${spec.name} has bad shape [${spec.shape}]`);
    }
    const size = spec.shape.reduce((a, b) => a * b, 1);
    entries.push({ name: spec.name, shape: [...spec.shape], offset, size });
    offset += size;
  }
  if (offset > PARAMS_TOTAL_MAX) {
    throw new Error(`param layout: ${offset} parameters exceed ${PARAMS_TOTAL_MAX}`);
  }
  const fingerprint = entries.map((e) => `${e.name}[${e.shape.join("x")}]`).join(";");
  return { entries, totalLength: offset, fingerprint };
}

/** Throws naming `where` unless `flat` fits `layout` and is finite. */
export function assertFlatParams(flat: Float32Array, layout: ParamLayout, where: string): void {
  if (!(flat instanceof Float32Array)) {
    throw new Error(`${where}: parameters must be a Float32Array`);
  }
  if (flat.length !== layout.totalLength) {
    throw new Error(`${where}: ${flat.length} parameters, layout expects ${layout.totalLength}`);
  }
  const bad = firstNonFinite(flat);
  if (bad >= 0) {
    const entry = layout.entries.find((e) => bad >= e.offset && bad < e.offset + e.size);
    throw new Error(
      `${where}: non-finite parameter ${flat[bad]} in ${entry?.name} at index ${
        bad - (entry?.offset ?? 0)
      }`,
    );
  }
}

/** Index of the first NaN/Inf, or -1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    // v - v is NaN exactly for NaN and +-Inf; cheaper than Number.isFinite in a hot loop.
    const v = values[i];
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Weighted average of flat vectors (FedAvg). Accumulates in float64. */
export function weightedAverage(
  vectors: readonly Float32Array[],
  weights: readonly number[],
): Float32Array {
  if (vectors.length === 0) throw new Error("weightedAverage: no vectors");
  if (vectors.length !== weights.length) {
    throw new Error("weightedAverage: vectors and weights differ in count");
  }
  const length = vectors[0].length;
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0) || weights.some((w) => !(w >= 0) || !Number.isFinite(w))) {
    throw new Error(`weightedAverage: weights must be finite, >= 0 and sum > 0 (got ${weights})`);
  }
  const sum = new Float64Array(length);
  vectors.forEach((vector, k) => {
    if (vector.length !== length) {
      throw new Error(
        `weightedAverage: vector ${k} has ${vector.length} values, expected ${length}`,
      );
    }
    const w = weights[k] / total;
    for (let i = 0; i < length; i++) sum[i] += w * vector[i];
  });
  return Float32Array.from(sum);
}
