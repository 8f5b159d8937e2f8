// What a trial trains on and how: the one description that `run` writes into every node's
// config, so that the edge (evaluation splits) and each device (its own partition) derive the
// same preprocessing deterministically from the same data and seed.
import type { PrepareOptions } from "../ml/data/prepare.ts";
import type { Partition } from "../ml/data/split.ts";
import type { LabelMode } from "../ml/data/types.ts";
import type { ModelConfig } from "../ml/model/config.ts";
import type { TrainingMode } from "../ml/train/loop.ts";
import type { ProtectionSettings } from "../ml/privacy/settings.ts";
import type { AttackPlan } from "./attack_plan.ts";

/** The embedded default: synthetic IoMT traffic modelled on WUSTL-EHMS. */
export const DEFAULT_SYNTHETIC_ROWS = 12_000;

export interface TrialSpec {
  data: { synthetic: { rows: number; seed: number } } | {
    path: string;
    format?: string;
    labelColumn?: string;
  };
  labelMode: LabelMode;
  seed: number;
  devices: number;
  partition: Partition;
  dirichletAlpha?: number;
  mode: TrainingMode;
  rounds: number;
  localEpochs: number;
  batchSize: number;
  learningRate: number;
  /** Overrides of the default model shape (filters, units...). */
  model?: Partial<ModelConfig>;
  /** Round completes with this many devices at the timeout. */
  minDevices: number;
  roundTimeoutMs: number;
  /** Simulated attackers (`run --attack`). */
  attack?: AttackPlan;
  /** false: plain FedAvg at the edge, no validator decisions (the undefended baseline). */
  defence?: boolean;
  /** Activation protection on every device (`--clip/--noise/--epsilon/--nopeek`). */
  protection?: ProtectionSettings;
}

export function prepareOptionsOf(spec: TrialSpec): PrepareOptions {
  const source = "synthetic" in spec.data ? { synthetic: spec.data.synthetic } : {
    path: spec.data.path,
    format: spec.data.format as never,
    labelColumn: spec.data.labelColumn,
  };
  return {
    source,
    labelMode: spec.labelMode,
    seed: spec.seed,
    devices: { count: spec.devices, partition: spec.partition, alpha: spec.dirichletAlpha },
  };
}

export function describeData(spec: TrialSpec): string {
  return "synthetic" in spec.data
    ? `embedded synthetic IoMT traffic (${spec.data.synthetic.rows} flows, seed ${spec.data.synthetic.seed})`
    : `${spec.data.path}${spec.data.format ? ` (${spec.data.format})` : ""}`;
}
