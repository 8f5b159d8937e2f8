// The round loop: the library the `run` command and the networked roles call.
//   splitfed-v1  every device trains against its own copy of the server-side model (in
//                parallel via the executor); both halves are averaged, weighted by samples.
//   splitfed-v2  one server-side model; devices take turns (seeded order) against it; the
//                device halves are averaged.
//   fedavg       baseline: every device trains the full CNN-BiLSTM; full models are averaged.
//   centralized  reference: one model on all partitions' rows, localEpochs epochs per round.
// Metrics each round on the test split, threshold chosen on the validation split.
import * as tf from "@tensorflow/tfjs";
import type { LabeledMatrix } from "../data/types.ts";
import { type ModelConfig, validateModelConfig } from "../model/config.ts";
import { weightedAverage } from "../model/params.ts";
import { deriveSeed, permutation } from "../model/random.ts";
import { describeModel, deviceLayout, edgeLayout, initParams } from "../model/split_model.ts";
import { logger } from "../../util/log.ts";
import type { ClassificationReport } from "../metrics/classification.ts";
import { checkMatrixForModel, shuffledBatches } from "./batches.ts";
import {
  evaluateSplits,
  evaluateSplitsPausing,
  Predictor,
  type SplitsEvaluation,
} from "./evaluate.ts";
import { type DeviceExecutor, InProcessExecutor } from "./executor.ts";
import {
  batchSeed,
  FullModelTrainer,
  type LocalMode,
  type LocalResult,
  type LocalTrainOptions,
  type ReleaseObserver,
  trainSplitEpochs,
} from "./local.ts";
import { residentMemoryMB } from "./memory.ts";
import { DeviceSide, EdgeSide } from "./split_step.ts";
import { protectionForRound } from "../privacy/protection.ts";
import {
  type EpsilonSpent,
  epsilonSpent,
  type ProtectionSettings,
  releasesPerRow,
  validateProtectionSettings,
} from "../privacy/settings.ts";

export const TRAINING_MODES = ["splitfed-v1", "splitfed-v2", "fedavg", "centralized"] as const;
export type TrainingMode = typeof TRAINING_MODES[number];

export const TRAINING_LIMITS = { roundsMax: 10_000, epochsMax: 1000, devicesMax: 1000 } as const;

export interface TrainingOptions {
  mode: TrainingMode;
  rounds: number;
  localEpochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  model: ModelConfig;
  /** Activation protection on the devices (split modes only). */
  protection?: ProtectionSettings;
}

export interface GlobalModel {
  device: Float32Array;
  edge: Float32Array;
}

export interface RoundReport {
  round: number;
  mode: TrainingMode;
  /** Mean training loss over all local steps of the round. */
  trainLoss: number;
  validationLoss: number;
  threshold: number;
  test: ClassificationReport;
  samples: number;
  seconds: number;
  /** Of `seconds`: choosing the threshold on validation and scoring the test split. */
  evaluationSeconds: number;
  numTensors: number;
  rssMB: number;
  peakRssMB: number;
  /** (ε, δ) spent so far per training row by the activation noise (split modes with noise);
   * null without noise or in modes that send no activations. */
  privacy?: EpsilonSpent | null;
}

/** Combines the devices' updates into the next global model. Default: FedAvg weighted by
 * samples. The ledger plugs in here (validators score and filter updates before averaging). */
export type Aggregator = (
  updates: readonly LocalResult[],
  round: number,
  current: GlobalModel,
) => Promise<GlobalModel>;

export const fedAvgAggregator: Aggregator = (updates) =>
  Promise.resolve({
    device: weightedAverage(updates.map((u) => u.device), updates.map((u) => u.samples)),
    edge: weightedAverage(updates.map((u) => u.edge), updates.map((u) => u.samples)),
  });

export interface TrainingInput {
  options: TrainingOptions;
  /** One partition per device (rows of the training split). */
  partitions: readonly LabeledMatrix[];
  validation: LabeledMatrix;
  test: LabeledMatrix;
  executor?: DeviceExecutor;
  aggregate?: Aggregator;
  initial?: GlobalModel;
  onRound?: (report: RoundReport, model: GlobalModel) => void | Promise<void>;
  signal?: AbortSignal;
  /** Awaited before each round starts: an operator's pause holds the trial here.
   * `reportsDone` resolves once every earlier round is reported (background evaluation). */
  beforeRound?: (round: number, reportsDone: () => Promise<void>) => Promise<void>;
  /** First round to run (a restarted coordinator resumes; `initial` is that round's model). */
  startRound?: number;
  /** Sees every device release (in-process executor and splitfed-v2 only). */
  observeReleases?: ReleaseObserver;
  /** Called with each round's aggregated model before it is evaluated: a coordinator persists
   * it here, so that a restart resumes after this round even if its report was not out yet. */
  afterAggregate?: (training: RoundTraining, model: GlobalModel) => void | Promise<void>;
  /** Evaluate each round while the next one trains, awaiting `pause()` between blocks of rows
   * (a server keeps answering its devices); onRound then comes during the next round. At most
   * one evaluation is in flight; the numbers are the same as inline evaluation's. */
  background?: { pause: () => Promise<void> };
}

/** What a round's report knows when its model is aggregated (before evaluation). */
export type RoundTraining = Omit<
  RoundReport,
  "validationLoss" | "threshold" | "test" | "evaluationSeconds"
>;

/** The full report: training figures plus the evaluation of the round's model. */
export function completeReport(
  training: RoundTraining,
  evaluation: SplitsEvaluation,
  evaluationSeconds: number,
): RoundReport {
  return {
    ...training,
    validationLoss: evaluation.validationLoss,
    threshold: evaluation.threshold,
    test: evaluation.test,
    seconds: training.seconds + evaluationSeconds,
    evaluationSeconds,
  };
}

export interface TrainingResult {
  model: GlobalModel;
  rounds: RoundReport[];
}

export function validateTrainingOptions(options: TrainingOptions): void {
  validateModelConfig(options.model);
  if (!TRAINING_MODES.includes(options.mode)) {
    throw new Error(`training mode ${options.mode} is not one of ${TRAINING_MODES}`);
  }
  const intIn = (name: string, value: number, min: number, max: number) => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`training: ${name}=${value} outside ${min}..${max}`);
    }
  };
  intIn("rounds", options.rounds, 1, TRAINING_LIMITS.roundsMax);
  intIn("localEpochs", options.localEpochs, 1, TRAINING_LIMITS.epochsMax);
  intIn("seed", options.seed, 0, 0xffffffff);
  if (!(options.learningRate > 0 && options.learningRate < 10)) {
    throw new Error(`training: learning rate ${options.learningRate}`);
  }
  if (options.protection) validateProtectionSettings(options.protection);
}

/** Split modes send activations; only they can apply (and spend) an activation protection. */
export function sendsActivations(mode: TrainingMode): boolean {
  return mode === "splitfed-v1" || mode === "splitfed-v2";
}

export function initialModel(config: ModelConfig, seed: number): GlobalModel {
  return {
    device: initParams(deviceLayout(config), deriveSeed(seed, 1)),
    edge: initParams(edgeLayout(config), deriveSeed(seed, 2)),
  };
}

export async function trainRounds(input: TrainingInput): Promise<TrainingResult> {
  const { options, partitions } = input;
  validateTrainingOptions(options);
  const config = options.model;
  if (partitions.length === 0 || partitions.length > TRAINING_LIMITS.devicesMax) {
    throw new Error(
      `training: ${partitions.length} devices, limit 1..${TRAINING_LIMITS.devicesMax}`,
    );
  }
  const labels = partitions.map((p, k) => checkMatrixForModel(config, p, `device ${k} partition`));
  checkMatrixForModel(config, input.validation, "validation split");
  checkMatrixForModel(config, input.test, "test split");
  const local: LocalTrainOptions = {
    epochs: options.localEpochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    seed: options.seed,
    ...(options.protection && sendsActivations(options.mode)
      ? { protection: options.protection }
      : {}),
  };
  // Callers (run, edge) print describeModel themselves at info level.
  logger("ml").debug(
    `${options.mode}: ${partitions.length} devices, ${options.rounds} rounds, seed ${options.seed}\n${
      describeModel(config)
    }`,
  );
  const executor: DeviceExecutor = input.executor ??
    new InProcessExecutor(config, partitions, local, input.observeReleases);
  const aggregate = input.aggregate ?? fedAvgAggregator;
  let model = input.initial ?? initialModel(config, options.seed);
  const predictor = new Predictor(config, model.device, model.edge);
  const rounds: RoundReport[] = [];
  let inFlight: Promise<void> | null = null;
  try {
    for (let round = input.startRound ?? 0; round < options.rounds; round++) {
      input.signal?.throwIfAborted();
      await input.beforeRound?.(round, async () => {
        if (inFlight) await inFlight;
      });
      input.signal?.throwIfAborted();
      const started = performance.now();
      let lossSum = 0;
      let steps = 0;
      let samples = 0;
      const sharedEdge = options.mode === "splitfed-v2" && executor.sharedEdge === true;
      if (options.mode === "splitfed-v1" || options.mode === "fedavg" || sharedEdge) {
        // splitfed-v2 here is networked: the edge runs the devices in turn against its one model.
        const mode = options.mode as LocalMode;
        const tasks = partitions.map((_, deviceIndex) => ({
          deviceIndex,
          round,
          mode,
          device: model.device,
          edge: model.edge,
        }));
        const results = await executor.run(tasks);
        for (const r of results) {
          lossSum += r.lossMean * r.steps;
          steps += r.steps;
          samples += r.samples;
        }
        const shared = results[0]?.edge ?? model.edge;
        model = await aggregate(results, round, model);
        // v2 has one server-side model: not averaged.
        if (sharedEdge) model = { device: model.device, edge: shared };
      } else if (options.mode === "splitfed-v2") {
        const r = trainSplitFedV2Round(
          config,
          partitions,
          labels,
          model,
          round,
          local,
          input.observeReleases,
        );
        lossSum = r.lossSum;
        steps = r.steps;
        samples = r.samples;
        model = await aggregate(r.updates, round, model);
        model = { device: model.device, edge: r.edge }; // one server-side model: not averaged
      } else {
        const r = trainCentralizedRound(config, partitions, labels, model, round, local);
        lossSum = r.lossSum;
        steps = r.steps;
        samples = r.samples;
        model = r.model;
      }
      // Seconds until aggregation; completeReport adds the evaluation's. Tensors and memory are
      // counted here, between rounds, also when the evaluation runs during the next round.
      const training: RoundTraining = {
        round,
        mode: options.mode,
        trainLoss: lossSum / Math.max(steps, 1),
        samples,
        seconds: (performance.now() - started) / 1000,
        numTensors: tf.memory().numTensors,
        ...residentMemoryMB(),
        privacy: local.protection
          ? epsilonSpent(local.protection, releasesPerRow(round + 1, options.localEpochs))
          : null,
      };
      // The previous round's report first: at most one round is aggregated but unreported.
      if (inFlight) await inFlight;
      inFlight = null;
      await input.afterAggregate?.(training, model);
      const roundModel = model;
      const finish = async () => {
        const evaluationStarted = performance.now();
        predictor.setParams(roundModel.device, roundModel.edge);
        const evaluation = input.background
          ? await evaluateSplitsPausing(
            predictor,
            input.validation,
            input.test,
            input.background.pause,
          )
          : evaluateSplits(predictor, input.validation, input.test);
        const report = completeReport(
          training,
          evaluation,
          (performance.now() - evaluationStarted) / 1000,
        );
        rounds.push(report);
        await input.onRound?.(report, roundModel);
      };
      if (input.background) {
        inFlight = finish();
        inFlight.catch(() => {}); // raised where it is awaited: next round or the end
      } else {
        await finish();
      }
    }
    if (inFlight) await inFlight;
  } finally {
    // An evaluation still running (the loop failed) must not outlive its predictor.
    await inFlight?.catch(() => {});
    predictor.dispose();
    if (!input.executor) await executor.close();
  }
  return { model, rounds };
}

function trainSplitFedV2Round(
  config: ModelConfig,
  partitions: readonly LabeledMatrix[],
  labels: readonly Int32Array[],
  model: GlobalModel,
  round: number,
  local: LocalTrainOptions,
  observe?: ReleaseObserver,
) {
  const edge = new EdgeSide(config, model.edge, { learningRate: local.learningRate, name: "edge" });
  const updates: LocalResult[] = [];
  let lossSum = 0, steps = 0, samples = 0;
  try {
    // Devices take turns in a seeded order, so no device is always last (closest to the average).
    for (
      const deviceIndex of permutation(partitions.length, deriveSeed(local.seed, round, 0x5f2))
    ) {
      const device = new DeviceSide(config, model.device, {
        learningRate: local.learningRate,
        name: `device ${deviceIndex}`,
        protection: protectionForRound(local.protection, local.seed, round, deviceIndex),
        onRelease: observe ? (release) => observe(deviceIndex, release) : undefined,
      });
      try {
        const r = trainSplitEpochs(
          device,
          edge,
          partitions[deviceIndex],
          labels[deviceIndex],
          round,
          deviceIndex,
          local,
        );
        lossSum += r.lossSum;
        steps += r.steps;
        samples += r.samples;
        updates.push({
          deviceIndex,
          round,
          device: device.read(),
          edge: model.edge,
          samples: r.samples,
          steps: r.steps,
          lossMean: r.lossSum / r.steps,
        });
      } finally {
        device.dispose();
      }
    }
    updates.sort((a, b) => a.deviceIndex - b.deviceIndex);
    return { updates, edge: edge.read(), lossSum, steps, samples };
  } finally {
    edge.dispose();
  }
}

function trainCentralizedRound(
  config: ModelConfig,
  partitions: readonly LabeledMatrix[],
  labels: readonly Int32Array[],
  model: GlobalModel,
  round: number,
  local: LocalTrainOptions,
) {
  const all = concatRows(partitions);
  const allLabels = new Int32Array(all.rows);
  let at = 0;
  for (const l of labels) {
    allLabels.set(l, at);
    at += l.length;
  }
  const trainer = new FullModelTrainer(
    config,
    model.device,
    model.edge,
    local.learningRate,
    "centralized",
  );
  let lossSum = 0, steps = 0;
  try {
    for (let epoch = 0; epoch < local.epochs; epoch++) {
      for (
        const batch of shuffledBatches(
          all,
          allLabels,
          local.batchSize,
          batchSeed(local.seed, round, 0xcafe, epoch),
        )
      ) {
        lossSum += trainer.step(batch);
        steps++;
      }
    }
    return {
      model: { device: trainer.device.read(), edge: trainer.edge.read() },
      lossSum,
      steps,
      samples: all.rows,
    };
  } finally {
    trainer.dispose();
  }
}

function concatRows(parts: readonly LabeledMatrix[]): LabeledMatrix {
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const features = new Float32Array(rows * parts[0].featureNames.length);
  const labels = new Int32Array(rows);
  let r = 0;
  for (const p of parts) {
    features.set(p.features, r * p.featureNames.length);
    labels.set(p.labels, r);
    r += p.rows;
  }
  return { ...parts[0], rows, features, labels };
}
