// Synthetic rounds for the update-consensus tests: honest updates share a common direction plus
// per-device noise, the way local SGD steps on similar data do.
import {
  encodeWeights,
  type Genesis,
  modelHash,
  paramsWith,
  type Rng,
  sha256Hex,
  type UpdateConsensusParams,
  type UpdateTx,
} from "../../../ledger/app/mod.ts";

export interface Submission {
  readonly tx: UpdateTx;
  readonly blob: Uint8Array;
  readonly weights: Float32Array;
}

export function deviceIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(2, "0")}`);
}

export function randomVector(rng: Rng, length: number, norm: number): Float64Array {
  const v = new Float64Array(length);
  let s = 0;
  for (let j = 0; j < length; j++) {
    v[j] = rng.normal();
    s += v[j] * v[j];
  }
  const k = norm / Math.sqrt(s);
  for (let j = 0; j < length; j++) v[j] *= k;
  return v;
}

export function randomGlobal(rng: Rng, length: number): Float32Array {
  return Float32Array.from(randomVector(rng, length, Math.sqrt(length) * 0.1));
}

/** global + direction x (1 +- 20 %) + noise of norm `noiseNorm`. */
export function honestUpdate(
  rng: Rng,
  global: Float32Array,
  direction: Float64Array,
  noiseNorm = 1,
): Float32Array {
  const noise = randomVector(rng, global.length, noiseNorm);
  const step = 1 + 0.2 * rng.normal();
  return global.map((g, j) => g + step * direction[j] + noise[j]);
}

export function submission(
  deviceId: string,
  round: number,
  weights: Float32Array,
  sampleCount = 100,
  baseRound = round,
): Submission {
  const blob = encodeWeights(weights);
  return {
    tx: { deviceId, round, baseRound, blobHash: sha256Hex(blob), sampleCount },
    blob,
    weights,
  };
}

export function genesisFor(
  devices: readonly string[],
  global: Float32Array,
  overrides: Partial<UpdateConsensusParams> = {},
): Genesis {
  return {
    params: paramsWith({ parameterCount: global.length, ...overrides }),
    devices,
    initialModelHash: modelHash(global),
  };
}
