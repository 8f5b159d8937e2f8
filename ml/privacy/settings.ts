// The activation protection of a whole training, as plain data: what the CLI and config files
// set, what the trial spec carries to every device process, what the report and the model
// artifact record. Pure numbers (no tfjs), so the CLI can validate and calibrate before loading
// the engine.
//
// Accounting for a training (docs/privacy.md, "The guarantee, precisely"): every training row is
// released once per local epoch of every round (shuffled epochs, and the edge sees every batch),
// so a row's activations go out rounds × epochs times; each release is the Gaussian mechanism with
// sensitivity 2C, noise multiplier σ/2 against the edge. Sampling rate 1: the edge receives each
// batch, so there is no amplification by subsampling — q = batch/rows with rounds × epochs ×
// steps-per-epoch compositions would understate ε.
import { PROTECTION_LIMITS } from "./protection_limits.ts";
import { calibrateNoiseMultiplier, epsilonOf, RDP_ORDERS } from "./rdp.ts";

export const DEFAULT_DELTA = 1e-5;
/** Clip norm used with --epsilon when no --clip is given (as `privacy audit`). */
export const DEFAULT_CLIP_NORM = 1;
export const EPSILON_MAX = 1e6;

/** A training's protection, resolved: the noise is always explicit (calibrated from a target ε
 * before training starts), so every process applies the same σ. */
export interface ProtectionSettings {
  /** Per-row L2 clip norm of the activations; absent = no clipping. */
  clipNorm?: number;
  /** Noise std / clip norm; 0 or absent = no noise. */
  noiseMultiplier?: number;
  /** NoPeek weight α; 0 or absent = no decorrelation loss. */
  nopeekWeight?: number;
  /** δ of the reported (ε, δ). */
  delta: number;
  /** The ε asked for with --epsilon, when the noise was calibrated from it. */
  targetEpsilon?: number;
}

/** What the user asked for (flags or config keys), before calibration. */
export interface ProtectionRequest {
  clip?: number;
  noise?: number;
  epsilon?: number;
  delta?: number;
  nopeek?: number;
}

/** A bad combination or value; the CLI turns it into a usage error (exit 2). */
export class ProtectionSettingsError extends Error {
  override name = "ProtectionSettingsError";
}

function checkNumber(
  flag: string,
  value: number | undefined,
  min: number,
  max: number,
  bounds: "[]" | "(]" | "()",
) {
  if (value === undefined) return;
  const low = bounds === "[]" ? value >= min : value > min;
  const high = bounds === "()" ? value < max : value <= max;
  if (typeof value !== "number" || !Number.isFinite(value) || !low || !high) {
    const range = bounds === "[]"
      ? `from ${min} to ${max}`
      : bounds === "(]"
      ? `greater than ${min}, at most ${max}`
      : `strictly between ${min} and ${max}`;
    throw new ProtectionSettingsError(`${flag} ${value}: expected a number ${range}`);
  }
}

/** Releases of each training row's activations over a training: rounds × local epochs. */
export function releasesPerRow(rounds: number, localEpochs: number): number {
  if (
    !Number.isInteger(rounds) || rounds < 0 || !Number.isInteger(localEpochs) || localEpochs < 1
  ) {
    throw new RangeError(`releases: rounds ${rounds}, local epochs ${localEpochs}`);
  }
  return rounds * localEpochs;
}

/** Checks the request and turns it into settings; with --epsilon, calibrates σ for the whole
 * training (`rounds` × `localEpochs` releases per row). Null when nothing was asked for. */
export function resolveProtection(
  request: ProtectionRequest,
  training: { rounds: number; localEpochs: number },
): ProtectionSettings | null {
  checkNumber("--clip", request.clip, 0, PROTECTION_LIMITS.clipNormMax, "(]");
  checkNumber("--noise", request.noise, 0, PROTECTION_LIMITS.noiseMultiplierMax, "[]");
  checkNumber("--epsilon", request.epsilon, 0, EPSILON_MAX, "(]");
  checkNumber("--delta", request.delta, 0, 1, "()");
  checkNumber("--nopeek", request.nopeek, 0, PROTECTION_LIMITS.nopeekWeightMax, "[]");
  if (request.noise !== undefined && request.epsilon !== undefined) {
    throw new ProtectionSettingsError("give --noise or --epsilon, not both");
  }
  if ((request.noise ?? 0) > 0 && request.clip === undefined) {
    throw new ProtectionSettingsError(
      "--noise needs --clip: without clipping the sensitivity is unbounded",
    );
  }
  const asked = [request.clip, request.noise, request.epsilon, request.nopeek].some((v) =>
    v !== undefined
  );
  if (!asked) {
    if (request.delta !== undefined) {
      throw new ProtectionSettingsError("--delta needs --noise or --epsilon");
    }
    return null;
  }
  const delta = request.delta ?? DEFAULT_DELTA;
  const settings: ProtectionSettings = { delta };
  if (request.nopeek !== undefined && request.nopeek > 0) settings.nopeekWeight = request.nopeek;
  if (request.epsilon !== undefined) {
    const releases = releasesPerRow(training.rounds, training.localEpochs);
    let sigmaOverSensitivity: number;
    try {
      sigmaOverSensitivity = calibrateNoiseMultiplier(
        { epsilon: request.epsilon, delta, samplingRate: 1, steps: releases },
        1e-4,
        RDP_ORDERS,
      );
    } catch (error) {
      throw new ProtectionSettingsError(
        `--epsilon ${request.epsilon}: ${(error as Error).message}`,
      );
    }
    settings.clipNorm = request.clip ?? DEFAULT_CLIP_NORM;
    // The accountant's multiplier is against sensitivity 2C; σ is relative to C.
    settings.noiseMultiplier = 2 * sigmaOverSensitivity;
    settings.targetEpsilon = request.epsilon;
  } else {
    if (request.clip !== undefined) settings.clipNorm = request.clip;
    if ((request.noise ?? 0) > 0) settings.noiseMultiplier = request.noise;
  }
  validateProtectionSettings(settings);
  return settings;
}

/** Throws naming the first field out of range (a spec read from a node config is checked too). */
export function validateProtectionSettings(s: ProtectionSettings): void {
  checkNumber("clip norm", s.clipNorm, 0, PROTECTION_LIMITS.clipNormMax, "(]");
  checkNumber("noise multiplier", s.noiseMultiplier, 0, PROTECTION_LIMITS.noiseMultiplierMax, "[]");
  checkNumber("NoPeek weight", s.nopeekWeight, 0, PROTECTION_LIMITS.nopeekWeightMax, "[]");
  checkNumber("delta", s.delta, 0, 1, "()");
  checkNumber("target epsilon", s.targetEpsilon, 0, EPSILON_MAX, "(]");
  if ((s.noiseMultiplier ?? 0) > 0 && s.clipNorm === undefined) {
    throw new ProtectionSettingsError("noise needs a clip norm");
  }
}

export function hasNoise(s: ProtectionSettings | null | undefined): boolean {
  return (s?.noiseMultiplier ?? 0) > 0;
}

export interface EpsilonSpent {
  epsilon: number;
  delta: number;
  /** Rényi order of the tightest bound. */
  order: number;
  releasesPerRow: number;
}

/** (ε, δ) spent per training row after `releases` releases; null without noise (no guarantee). */
export function epsilonSpent(
  s: ProtectionSettings | null | undefined,
  releases: number,
): EpsilonSpent | null {
  if (!s || !hasNoise(s)) return null;
  const r = epsilonOf(
    { noiseMultiplier: s.noiseMultiplier! / 2, samplingRate: 1, steps: releases },
    s.delta,
  );
  return { epsilon: r.epsilon, delta: r.delta, order: r.order, releasesPerRow: releases };
}

/** "clip 1 + noise σ=0.5 + NoPeek α=0.1", or "none" (same names as ActivationProtection). */
export function describeProtection(s: ProtectionSettings | null | undefined): string {
  if (!s) return "none";
  const parts = [];
  if (s.clipNorm !== undefined) parts.push(`clip ${s.clipNorm}`);
  if (hasNoise(s)) parts.push(`noise σ=${Number(s.noiseMultiplier!.toPrecision(4))}`);
  if ((s.nopeekWeight ?? 0) > 0) parts.push(`NoPeek α=${s.nopeekWeight}`);
  return parts.length ? parts.join(" + ") : "none";
}

/** What a model artifact's metadata records about the protection its training used. */
export interface ProtectionRecord {
  name: string;
  settings: ProtectionSettings;
  /** ε per training row spent by the training that produced the model; null without noise. */
  epsilon: number | null;
  delta: number;
  releasesPerRow: number;
}

export function protectionRecord(
  s: ProtectionSettings | null | undefined,
  releases: number,
): ProtectionRecord | null {
  if (!s) return null;
  const spent = epsilonSpent(s, releases);
  return {
    name: describeProtection(s),
    settings: s,
    epsilon: spent?.epsilon ?? null,
    delta: s.delta,
    releasesPerRow: releases,
  };
}
