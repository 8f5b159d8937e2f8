// Update-level attacks for simulation, as pure functions of (global, honest update, seeded rng).
// Data-level attacks (label-flip) live in the trainer; `isUpdateLevel` tells the caller which is
// which. Each returns new weights and never touches its inputs.
import type { Rng } from "./prng.ts";

export const ATTACKS = [
  "label-flip",
  "sign-flip",
  "scale",
  "gaussian",
  "free-rider",
  "sybil",
] as const;
export type AttackKind = typeof ATTACKS[number];
export type UpdateAttackKind = Exclude<AttackKind, "label-flip">;

export function isUpdateLevel(kind: AttackKind): kind is UpdateAttackKind {
  return kind !== "label-flip";
}

function withDelta(global: Float32Array, f: (j: number) => number): Float32Array {
  const out = new Float32Array(global.length);
  for (let j = 0; j < out.length; j++) out[j] = global[j] + f(j);
  return out;
}

function sameShape(a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) throw new Error(`attack: ${a.length} vs ${b.length} parameters`);
}

/** global - factor (update - global): pushes the model against the honest direction. */
export function signFlip(global: Float32Array, update: Float32Array, factor = 1): Float32Array {
  sameShape(global, update);
  return withDelta(global, (j) => -factor * (update[j] - global[j]));
}

/** global + factor (update - global): a boosted update that dominates a plain average. */
export function scale(global: Float32Array, update: Float32Array, factor = 10): Float32Array {
  sameShape(global, update);
  return withDelta(global, (j) => factor * (update[j] - global[j]));
}

/** global + N(0, std^2) per coordinate: noise in place of a learned step. */
export function gaussian(global: Float32Array, stdPerParameter: number, rng: Rng): Float32Array {
  if (!(stdPerParameter >= 0) || !Number.isFinite(stdPerParameter)) {
    throw new Error(`gaussian: std ${stdPerParameter}`);
  }
  return withDelta(global, () => stdPerParameter * rng.normal());
}

/** Free-rider: the global model back (zero delta), optionally with tiny noise to dodge the
 * duplicate-blob check; or, with `previous`, a stale copy of an earlier update. */
export function freeRider(
  global: Float32Array,
  rng: Rng,
  noiseStd = 0,
  previous?: Float32Array,
): Float32Array {
  const base = previous ?? global;
  sameShape(global, base);
  const out = new Float32Array(base.length);
  for (let j = 0; j < out.length; j++) {
    out[j] = base[j] + (noiseStd > 0 ? noiseStd * rng.normal() : 0);
  }
  return out;
}

/** Sybil: `count` colluding near-identical copies of one chosen update (relative noise
 * `relativeNoise` x ||delta|| spread over the coordinates). */
export function sybil(
  global: Float32Array,
  chosen: Float32Array,
  count: number,
  relativeNoise: number,
  rng: Rng,
): Float32Array[] {
  sameShape(global, chosen);
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`sybil: count ${count}`);
  let norm = 0;
  for (let j = 0; j < global.length; j++) norm += (chosen[j] - global[j]) ** 2;
  const std = (relativeNoise * Math.sqrt(norm)) / Math.sqrt(global.length);
  return Array.from(
    { length: count },
    () => withDelta(global, (j) => chosen[j] - global[j] + std * rng.normal()),
  );
}

/** Which of the devices are malicious: round(fraction x n) of them, chosen by a seeded shuffle. */
export function pickMalicious(
  deviceIds: readonly string[],
  fraction: number,
  rng: Rng,
): Set<string> {
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new Error(`malicious fraction ${fraction} outside [0, 1]`);
  }
  const ids = [...deviceIds].sort();
  for (let i = ids.length - 1; i > 0; i--) {
    const k = rng.int(i + 1);
    [ids[i], ids[k]] = [ids[k], ids[i]];
  }
  return new Set(ids.slice(0, Math.round(fraction * ids.length)));
}

export interface AttackOptions {
  /** scale: the boost factor (default 10). sign-flip: the flip factor (default 1). */
  readonly factor?: number;
  /** gaussian: per-parameter std; default matches each device's honest step norm (stealthy). */
  readonly gaussianStd?: number;
  /** free-rider: noise std added to the global copy (default 0: the exact global back). */
  readonly freeRiderNoiseStd?: number;
  /** sybil: relative spread of the copies (default 1e-3). */
  readonly sybilRelativeNoise?: number;
}

/** What `run --attack KIND` does to one round: replaces the malicious devices' honest updates
 * (computed by the trainer) and returns every device's submitted weights. Sybils submit copies of
 * one poisoned update, the sign-flipped mean of their honest deltas. label-flip is data-level:
 * the trainer flips labels and this returns the honest updates unchanged. */
export function attackRound(
  kind: AttackKind,
  global: Float32Array,
  honest: ReadonlyMap<string, Float32Array>,
  malicious: ReadonlySet<string>,
  rng: Rng,
  options: AttackOptions = {},
): Map<string, Float32Array> {
  const out = new Map(honest);
  const bad = [...honest.keys()].filter((id) => malicious.has(id)).sort();
  if (!isUpdateLevel(kind) || bad.length === 0) return out;
  if (kind === "sybil") {
    const mean = new Float32Array(global.length);
    for (let j = 0; j < mean.length; j++) {
      let s = 0;
      for (const id of bad) s += honest.get(id)![j];
      mean[j] = s / bad.length;
    }
    const copies = sybil(
      global,
      signFlip(global, mean),
      bad.length,
      options.sybilRelativeNoise ?? 1e-3,
      rng,
    );
    bad.forEach((id, i) => out.set(id, copies[i]));
    return out;
  }
  for (const id of bad) {
    const h = honest.get(id)!;
    switch (kind) {
      case "sign-flip":
        out.set(id, signFlip(global, h, options.factor ?? 1));
        break;
      case "scale":
        out.set(id, scale(global, h, options.factor ?? 10));
        break;
      case "gaussian": {
        let norm = 0;
        for (let j = 0; j < h.length; j++) norm += (h[j] - global[j]) ** 2;
        out.set(id, gaussian(global, options.gaussianStd ?? Math.sqrt(norm / h.length), rng));
        break;
      }
      case "free-rider":
        out.set(id, freeRider(global, rng, options.freeRiderNoiseStd ?? 0));
        break;
    }
  }
  return out;
}
