// Hard limits of the update-consensus core. Every one is asserted where input enters; genesis
// parameters may choose smaller values, never larger ones.

/** Devices named in genesis. */
export const DEVICES_MAX = 4096;
/** Admitted updates per round (the n in n^2 pairwise distances for clone checks and Krum). */
export const UPDATES_PER_ROUND_MAX = 256;
/** Float32 parameters of the device-side model (16 MiB per blob). */
export const PARAMETER_COUNT_MAX = 4_194_304;
/** updates x parameters held as Float64 deltas while a round is scored (128 MiB). */
export const ROUND_FLOATS_MAX = 16_777_216;
/** Admission rejections recorded on the ledger per round; beyond this they are only logged. */
export const ADMISSION_REJECTIONS_PER_ROUND_MAX = 1024;
/** Characters in a device id. */
export const DEVICE_ID_LENGTH_MAX = 64;
/** Samples a device may claim for one update. */
export const SAMPLES_PER_UPDATE_MAX = 100_000_000;
/** Quantized ledger numbers are clamped to the safe-integer range. */
export const QUANTIZED_MAX = Number.MAX_SAFE_INTEGER;
/** One micro-unit: scores and fractions on the ledger are integers in units of 1e-6. */
export const MICRO = 1_000_000;

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;
