// Genesis parameters of update consensus. They live in the genesis block, which is hashed, so
// every number is an integer: fractions and thresholds are in micro-units (1_000_000 = 1.0).
import {
  DEVICE_ID_PATTERN,
  DEVICES_MAX,
  MICRO,
  PARAMETER_COUNT_MAX,
  ROUND_FLOATS_MAX,
  SAMPLES_PER_UPDATE_MAX,
  SHA256_HEX_PATTERN,
  UPDATES_PER_ROUND_MAX,
} from "./limits.ts";

export const AGGREGATION_RULES = [
  "fedavg",
  "median",
  "trimmed-mean",
  "krum",
  "multi-krum",
] as const;
export type AggregationRule = typeof AGGREGATION_RULES[number];

export interface UpdateConsensusParams {
  /** Float32 parameters of the device-side model; every update must have exactly this many. */
  readonly parameterCount: number;
  readonly updatesPerRoundMax: number;
  /** Largest sample count a device may claim; FedAvg weights and rewards use it. */
  readonly samplesPerUpdateMax: number;

  readonly aggregationRule: AggregationRule;
  /** Trimmed mean: fraction dropped at each end per coordinate (beta), < 0.5. */
  readonly trimFractionMicro: number;
  /** Krum / Multi-Krum: f, updates assumed Byzantine among the accepted ones. */
  readonly krumByzantine: number;
  /** Multi-Krum: m, updates averaged. */
  readonly multiKrumSelect: number;

  /** Reject when cosine(delta, coordinate-wise median delta) is below this. */
  readonly minCosineMicro: number;
  /** Reject when ||delta|| / median ||delta|| is above this (scaling, boosting). */
  readonly maxNormRatioMicro: number;
  /** Reject when ||delta|| / median ||delta|| is below this (free-rider near-copy of global). */
  readonly minNormRatioMicro: number;
  /** Absolute floor: ||delta|| at or below this is a zero update. Also floors the median norm. */
  readonly minDeltaNormMicro: number;
  /** Reject when ||d_i - d_j|| <= this x max(||d_i||, ||d_j||) for an earlier update j (sybil). */
  readonly cloneDistanceMaxMicro: number;
  /** Reject when round - baseRound exceeds this. */
  readonly maxStalenessRounds: number;
  /** Reject when validation loss exceeds the current global's by more than this (nats). */
  readonly maxLossIncreaseMicro: number;
  /** Reject when validation accuracy is below the current global's by more than this. */
  readonly maxAccuracyDropMicro: number;
  /** Without evaluation numbers every update is rejected ("not_evaluated") if this is true. */
  readonly requireEvaluation: boolean;
  /** A replica accepts the proposer's loss / accuracy when within these of its own. */
  readonly lossToleranceMicro: number;
  readonly accuracyToleranceMicro: number;

  /** Beta reputation forgetting factor applied to alpha and beta at each participation. */
  readonly reputationDecayMicro: number;
  /** Weight of one rejection in beta (one acceptance adds 1.0 to alpha). */
  readonly rejectionWeightMicro: number;
  /** Quarantine when reputation (alpha+1)/(alpha+beta+2) falls below this. */
  readonly quarantineBelowMicro: number;
  /** Rounds a quarantined device sits out before probation. */
  readonly quarantineRounds: number;
  /** Accepted updates in a row needed on probation to become active again. */
  readonly probationAcceptsRequired: number;
  /** Credits shared among accepted updates each round, by samples x quality. */
  readonly rewardPerRoundCredits: number;
}

export const DEFAULT_PARAMS: UpdateConsensusParams = Object.freeze({
  parameterCount: 1,
  updatesPerRoundMax: 64,
  samplesPerUpdateMax: 1_000_000,
  aggregationRule: "trimmed-mean",
  trimFractionMicro: 200_000,
  krumByzantine: 1,
  multiKrumSelect: 3,
  minCosineMicro: 100_000,
  maxNormRatioMicro: 3_000_000,
  minNormRatioMicro: 100_000,
  minDeltaNormMicro: 1,
  cloneDistanceMaxMicro: 10_000,
  maxStalenessRounds: 1,
  maxLossIncreaseMicro: 250_000,
  maxAccuracyDropMicro: 100_000,
  requireEvaluation: false,
  lossToleranceMicro: 1_000,
  accuracyToleranceMicro: 2_000,
  reputationDecayMicro: 900_000,
  rejectionWeightMicro: 1_000_000,
  quarantineBelowMicro: 300_000,
  quarantineRounds: 5,
  probationAcceptsRequired: 2,
  rewardPerRoundCredits: 1_000_000,
});

export interface Genesis {
  readonly params: UpdateConsensusParams;
  /** Devices allowed to submit updates. */
  readonly devices: readonly string[];
  /** Hash of the initial global device-side model (round 1 trains from it). */
  readonly initialModelHash: string;
}

/** Throws naming the first violated constraint; a genesis that passes is safe to run. */
export function assertParams(p: UpdateConsensusParams): void {
  const int = (name: keyof UpdateConsensusParams, min: number, max: number) => {
    const v = p[name];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new Error(`genesis params: ${name} must be an integer in [${min}, ${max}], got ${v}`);
    }
  };
  int("parameterCount", 1, PARAMETER_COUNT_MAX);
  int("updatesPerRoundMax", 1, UPDATES_PER_ROUND_MAX);
  if (p.parameterCount * p.updatesPerRoundMax > ROUND_FLOATS_MAX) {
    throw new Error(
      `genesis params: parameterCount x updatesPerRoundMax = ${
        p.parameterCount * p.updatesPerRoundMax
      } > ${ROUND_FLOATS_MAX}`,
    );
  }
  int("samplesPerUpdateMax", 1, SAMPLES_PER_UPDATE_MAX);
  if (!(AGGREGATION_RULES as readonly string[]).includes(p.aggregationRule)) {
    throw new Error(
      `genesis params: aggregationRule must be one of ${AGGREGATION_RULES.join(", ")}`,
    );
  }
  int("trimFractionMicro", 0, MICRO / 2 - 1);
  int("krumByzantine", 0, UPDATES_PER_ROUND_MAX);
  int("multiKrumSelect", 1, UPDATES_PER_ROUND_MAX);
  int("minCosineMicro", -MICRO, MICRO);
  int("maxNormRatioMicro", MICRO, 1_000 * MICRO);
  int("minNormRatioMicro", 0, MICRO);
  int("minDeltaNormMicro", 1, MICRO);
  int("cloneDistanceMaxMicro", 0, MICRO);
  int("maxStalenessRounds", 0, 1_000);
  int("maxLossIncreaseMicro", 0, 1_000 * MICRO);
  int("maxAccuracyDropMicro", 0, MICRO);
  if (typeof p.requireEvaluation !== "boolean") {
    throw new Error("genesis params: requireEvaluation must be a boolean");
  }
  int("lossToleranceMicro", 0, MICRO);
  int("accuracyToleranceMicro", 0, MICRO);
  int("reputationDecayMicro", 1, MICRO);
  int("rejectionWeightMicro", 0, 100 * MICRO);
  int("quarantineBelowMicro", 0, MICRO);
  int("quarantineRounds", 0, 1_000_000);
  int("probationAcceptsRequired", 1, 1_000);
  int("rewardPerRoundCredits", 0, 1_000_000_000_000);
}

export function assertGenesis(g: Genesis): void {
  assertParams(g.params);
  if (g.devices.length === 0 || g.devices.length > DEVICES_MAX) {
    throw new Error(`genesis: ${g.devices.length} devices, expected 1..${DEVICES_MAX}`);
  }
  const seen = new Set<string>();
  for (const id of g.devices) {
    if (typeof id !== "string" || !DEVICE_ID_PATTERN.test(id)) {
      throw new Error(`genesis: bad device id ${JSON.stringify(id)}`);
    }
    if (seen.has(id)) throw new Error(`genesis: device ${id} listed twice`);
    seen.add(id);
  }
  if (!SHA256_HEX_PATTERN.test(g.initialModelHash)) {
    throw new Error("genesis: initialModelHash is not a SHA-256 hex digest");
  }
}

/** Defaults with the fields a deployment must set. */
export function paramsWith(overrides: Partial<UpdateConsensusParams>): UpdateConsensusParams {
  const p = { ...DEFAULT_PARAMS, ...overrides };
  assertParams(p);
  return p;
}
