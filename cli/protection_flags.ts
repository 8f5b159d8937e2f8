// --clip, --noise, --epsilon, --delta, --nopeek: the activation protection of a training, shared
// by `iomt-sfl run` and `iomt-sfl device` (and their config file keys, which go through the same
// parsers). Out-of-range values fail in the parser (exit 2, naming the option and its range);
// combinations and the ε calibration fail in protectionOf (exit 2 too).
import { Option } from "@commander-js/extra-typings";
import { PROTECTION_LIMITS } from "../ml/privacy/protection_limits.ts";
import {
  EPSILON_MAX,
  type ProtectionRequest,
  type ProtectionSettings,
  ProtectionSettingsError,
  resolveProtection,
} from "../ml/privacy/settings.ts";
import { numberInRange } from "./options.ts";
import { UsageError } from "./usage_error.ts";

export function protectionOptions() {
  return [
    new Option(
      "--clip <norm>",
      "clip each row's activations to this L2 norm before they leave the device",
    ).argParser(numberInRange(0, PROTECTION_LIMITS.clipNormMax, { exclusiveMin: true })),
    new Option(
      "--noise <sigma>",
      "Gaussian noise on the activations, std = sigma × clip norm (needs --clip)",
    ).argParser(numberInRange(0, PROTECTION_LIMITS.noiseMultiplierMax)),
    new Option(
      "--epsilon <eps>",
      "target ε per training row for the whole training: calibrates --noise (clip 1 unless --clip)",
    ).argParser(numberInRange(0, EPSILON_MAX, { exclusiveMin: true })),
    new Option("--delta <delta>", "δ of the (ε, δ) guarantee (default 1e-5)").argParser(
      numberInRange(0, 1, { exclusiveMin: true, exclusiveMax: true }),
    ),
    new Option(
      "--nopeek <alpha>",
      "weight of the NoPeek distance-correlation loss in the device's objective",
    ).argParser(numberInRange(0, PROTECTION_LIMITS.nopeekWeightMax)),
  ] as const;
}

/** The resolved settings (σ calibrated for rounds × epochs with --epsilon), null without flags. */
export function protectionOf(
  options: ProtectionRequest,
  training: { rounds: number; localEpochs: number },
): ProtectionSettings | null {
  try {
    return resolveProtection({
      clip: options.clip,
      noise: options.noise,
      epsilon: options.epsilon,
      delta: options.delta,
      nopeek: options.nopeek,
    }, training);
  } catch (error) {
    if (error instanceof ProtectionSettingsError) throw new UsageError(error.message);
    throw error;
  }
}
