// Everything about a run derives from its seed, so one number replays it exactly.
import { Prng } from "./prng.ts";

export const BYZANTINE_BEHAVIOURS = [
  "equivocate",
  "conflicting-votes",
  "forge-signatures",
  "silent",
  "replay",
] as const;
export type ByzantineBehaviour = typeof BYZANTINE_BEHAVIOURS[number];

export interface CrashFault {
  readonly replica: number;
  readonly atTick: number;
  readonly downTicks: number;
}

export interface PartitionFault {
  readonly atTick: number;
  readonly durationTicks: number;
  /** Replicas on one side; the rest are on the other. */
  readonly side: readonly number[];
}

export interface Scenario {
  readonly seed: number;
  readonly replicaCount: number;
  readonly faultsTolerated: number;
  /** Replica index -> behaviour, exactly f of them. */
  readonly byzantine: ReadonlyMap<number, ByzantineBehaviour>;
  readonly faultPeriodTicks: number;
  readonly lossProbability: number;
  readonly duplicateProbability: number;
  readonly delayTicksMax: number;
  readonly crashes: readonly CrashFault[];
  readonly partitions: readonly PartitionFault[];
  readonly requestCount: number;
  readonly requestTicks: readonly number[];
  readonly batchSizeMax: number;
  readonly checkpointIntervalHeights: number;
  readonly watermarkWindowHeights: number;
  readonly appLatencyTicksMax: number;
}

export interface ScenarioOverrides {
  readonly replicaCount?: number;
  readonly byzantine?: readonly ByzantineBehaviour[];
  /** Put the first Byzantine replica at index 0, the primary of view 0. */
  readonly byzantinePrimary?: boolean;
  readonly noNetworkFaults?: boolean;
  readonly noCrashes?: boolean;
  /** Longer fault periods, more crashes and requests, heavier loss: slower, for nightly sweeps. */
  readonly stress?: boolean;
}

export function scenarioFromSeed(seed: number, overrides: ScenarioOverrides = {}): Scenario {
  const random = new Prng(seed);
  const replicaCount = overrides.replicaCount ?? (random.chance(0.5) ? 4 : 7);
  const faultsTolerated = Math.floor((replicaCount - 1) / 3);
  const indexes = shuffled(random, [...Array(replicaCount).keys()]);
  if (overrides.byzantinePrimary ?? random.chance(0.4)) {
    indexes.splice(indexes.indexOf(0), 1);
    indexes.unshift(0);
  }
  const byzantine = new Map<number, ByzantineBehaviour>();
  for (let i = 0; i < faultsTolerated; i++) {
    byzantine.set(indexes[i], overrides.byzantine?.[i] ?? random.pick(BYZANTINE_BEHAVIOURS));
  }
  const honest = indexes.slice(faultsTolerated);
  const stress = overrides.stress ?? false;
  const faultPeriodTicks = stress ? random.range(300, 1500) : random.range(150, 500);
  const networkFaults = !overrides.noNetworkFaults;
  const crashes: CrashFault[] = [];
  const crashCount = overrides.noCrashes ? 0 : random.range(0, stress ? 5 : 2);
  for (let i = 0; i < crashCount; i++) {
    crashes.push({
      replica: random.pick(honest),
      atTick: random.range(10, faultPeriodTicks - 60),
      downTicks: random.range(20, 150),
    });
  }
  const partitions: PartitionFault[] = [];
  const partitionCount = networkFaults ? random.range(0, stress ? 4 : 2) : 0;
  for (let i = 0; i < partitionCount; i++) {
    const side = shuffled(random, [...Array(replicaCount).keys()])
      .slice(0, random.range(1, replicaCount - 1));
    partitions.push({
      atTick: random.range(0, faultPeriodTicks - 30),
      durationTicks: random.range(20, 150),
      side: side.sort((a, b) => a - b),
    });
  }
  const requestCount = stress ? random.range(10, 40) : random.range(3, 12);
  // The last request arrives as the faults end: progress after healing is part of liveness.
  const requestTicks = [...Array(requestCount - 1)].map(() => random.range(0, faultPeriodTicks))
    .sort((a, b) => a - b);
  requestTicks.push(faultPeriodTicks);
  const checkpointIntervalHeights = random.pick([2, 3]);
  return {
    seed,
    replicaCount,
    faultsTolerated,
    byzantine,
    faultPeriodTicks,
    lossProbability: networkFaults
      ? random.pick(stress ? [0.1, 0.3, 0.5] : [0, 0.05, 0.15, 0.3])
      : 0,
    duplicateProbability: networkFaults ? random.pick([0, 0.05, 0.2]) : 0,
    delayTicksMax: networkFaults ? random.range(1, 15) : 2,
    crashes,
    partitions,
    requestCount,
    requestTicks,
    batchSizeMax: random.range(1, 3),
    checkpointIntervalHeights,
    watermarkWindowHeights: checkpointIntervalHeights * random.range(2, 3),
    appLatencyTicksMax: random.range(1, 10),
  };
}

export function describeScenario(scenario: Scenario): string {
  const byzantine = [...scenario.byzantine].map(([replica, how]) => `${replica}:${how}`).join(",");
  return [
    `n=${scenario.replicaCount}`,
    `byzantine=[${byzantine}]`,
    `faultTicks=${scenario.faultPeriodTicks}`,
    `loss=${scenario.lossProbability}`,
    `dup=${scenario.duplicateProbability}`,
    `delayMax=${scenario.delayTicksMax}`,
    `crashes=${scenario.crashes.map((c) => `${c.replica}@${c.atTick}+${c.downTicks}`).join(",")}`,
    `partitions=${
      scenario.partitions.map((p) => `[${p.side}]@${p.atTick}+${p.durationTicks}`).join(",")
    }`,
    `requests=${scenario.requestCount}`,
    `batch=${scenario.batchSizeMax}`,
    `K=${scenario.checkpointIntervalHeights}`,
    `L=${scenario.watermarkWindowHeights}`,
  ].join(" ");
}

function shuffled<T>(random: Prng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
