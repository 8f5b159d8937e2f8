// Bounds of the protection parameters, in a module without tfjs so that the CLI can check flags
// before the engine loads.
export const PROTECTION_LIMITS = {
  clipNormMax: 1e6,
  noiseMultiplierMax: 1e4,
  nopeekWeightMax: 100,
  /** Elements per transform call: bounds the JS noise buffer (64 MB of float32). */
  elementsMax: 1 << 24,
} as const;
