// Simulated attackers for `run --attack KIND --malicious FRACTION`: which devices attack and how.
// Data-level (label-flip) poisons the device's own labels; update-level attacks replace the
// device-side update it reports (ledger/app/attacks.ts). Seeded: the same trial attacks the same.
import type { LabeledMatrix } from "../ml/data/types.ts";
import {
  type AttackKind,
  freeRider,
  gaussian,
  pickMalicious,
  scale,
  signFlip,
  sybil,
} from "../ledger/app/attacks.ts";
import { createRng } from "../ledger/app/prng.ts";

export interface AttackPlan {
  kind: AttackKind;
  /** Device ids that attack. */
  malicious: string[];
  seed: number;
}

export function planAttack(
  kind: AttackKind,
  fraction: number,
  deviceIds: readonly string[],
  seed: number,
): AttackPlan {
  return {
    kind,
    malicious: [...pickMalicious(deviceIds, fraction, createRng(seed ^ 0xa77ac))].sort(),
    seed,
  };
}

/** Labels flipped: binary normal ↔ attack; multi-class shifted by one class. */
export function flipLabels(data: LabeledMatrix): LabeledMatrix {
  const classes = data.classNames.length;
  const labels = data.labels.map((label) => (classes === 2 ? 1 - label : (label + 1) % classes));
  return { ...data, labels };
}

function deltaNorm(update: Float32Array, global: Float32Array): number {
  let sum = 0;
  for (let j = 0; j < update.length; j++) sum += (update[j] - global[j]) ** 2;
  return Math.sqrt(sum);
}

/** The update-level poison for one device, or undefined for label-flip (data-level). */
export function poisonFor(plan: AttackPlan, deviceIndex: number) {
  if (plan.kind === "label-flip") return undefined;
  return (update: Float32Array, global: Float32Array, round: number): Float32Array => {
    const rng = createRng((plan.seed * 1_000_003 + round * 7919 + deviceIndex) >>> 0);
    const std = deltaNorm(update, global) / Math.sqrt(update.length);
    switch (plan.kind) {
      case "sign-flip":
        return signFlip(global, update);
      case "scale":
        return scale(global, update, 10);
      case "gaussian":
        return gaussian(global, std, rng);
      case "free-rider":
        return freeRider(global, rng, 1e-7);
      case "sybil": {
        // Every sybil derives the same crafted update from the round alone, then adds 1 % noise.
        const common = gaussian(global, std * 3, createRng((plan.seed * 31 + round) >>> 0));
        return sybil(global, common, 1, 0.01, rng)[0];
      }
      default:
        throw new Error(`unknown attack ${plan.kind}`);
    }
  };
}
