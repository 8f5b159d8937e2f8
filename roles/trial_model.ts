// The trained detector of a trial, as a user takes it away: saved as a model artifact
// (ml/artifact) that `iomt-sfl detect --model DIR` loads, and served by a node's API (download of
// the weights, scoring of posted feature vectors).
import { join } from "node:path";
import type { PreparedDataset } from "../ml/data/prepare.ts";
import type { ModelConfig } from "../ml/model/config.ts";
import {
  ARTIFACT_FORMAT,
  hashLabeledMatrix,
  loadModel,
  type ModelArtifact,
  type ModelMetadata,
  saveModel,
} from "../ml/artifact/model_artifact.ts";
import type { GlobalModel, RoundReport } from "../ml/train/loop.ts";
import { Predictor } from "../ml/train/evaluate.ts";
import { classifyRow } from "../ml/artifact/detector.ts";
import type { Detection, Flow } from "../web/api_schemas.ts";
import { type ModelDownload, ViewError } from "../web/node_view.ts";
import type { Detector } from "../web/memory_view.ts";
import type { TrialSpec } from "./trial_spec.ts";
import { protectionRecord, releasesPerRow } from "../ml/privacy/settings.ts";
import { readFile } from "node:fs/promises";

/** Flows per detect request are bounded by the API schema; this bounds one predictor call. */
const DETECT_ROWS_MAX = 10_000;

export interface TrialModelInput {
  config: ModelConfig;
  model: GlobalModel;
  /** The last round's report: its threshold (chosen on validation) and test metrics. */
  report: RoundReport;
  data: Pick<PreparedDataset, "train" | "preprocessor">;
  trial: TrialSpec;
}

/** The edge saves every round's model from the same training split: hash it once. */
const datasetHashes = new WeakMap<object, Promise<string>>();

function datasetHashOf(train: PreparedDataset["train"]): Promise<string> {
  let hash = datasetHashes.get(train);
  if (!hash) {
    hash = hashLabeledMatrix(train);
    datasetHashes.set(train, hash);
  }
  return hash;
}

/** Saves the round's global model with its preprocessing and metadata into `dir`. */
export async function saveTrialModel(dir: string, input: TrialModelInput): Promise<ModelMetadata> {
  const { data, report, trial } = input;
  return await saveModel(dir, {
    config: input.config,
    device: input.model.device,
    edge: input.model.edge,
    preprocessing: data.preprocessor.toJSON(),
    metadata: {
      createdAt: new Date().toISOString(),
      threshold: report.threshold,
      classNames: [...data.train.classNames],
      featureNames: [...data.train.featureNames],
      datasetHash: await datasetHashOf(data.train),
      metrics: report.test,
      training: {
        round: report.round,
        mode: trial.mode,
        devices: trial.devices,
        rounds: trial.rounds,
        localEpochs: trial.localEpochs,
        batchSize: trial.batchSize,
        learningRate: trial.learningRate,
        seed: trial.seed,
        partition: trial.partition,
        labelMode: trial.labelMode,
        // The devices' activation protection and the ε per row it cost up to this round.
        protection: protectionRecord(
          trial.mode === "fedavg" ? undefined : trial.protection,
          releasesPerRow(report.round + 1, trial.localEpochs),
        ),
      },
    },
  });
}

export interface ServedModel {
  download: ModelDownload;
  detector: Detector;
}

/** Loads a saved artifact for the API: the weights for download and a detector over
 * preprocessed feature vectors (the API's `Flow`), with the artifact's threshold. */
export async function serveTrialModel(dir: string): Promise<ServedModel> {
  const artifact = await loadModel(dir);
  const bytes = new Uint8Array(await readFile(join(dir, "weights.bin")));
  const saved = Number(artifact.metadata.training?.round ?? 0);
  const round = Number.isInteger(saved) && saved >= 0 ? saved : 0;
  return {
    download: {
      info: {
        round,
        sha256: artifact.metadata.weightsSha256,
        sizeBytes: bytes.byteLength,
        format: `${ARTIFACT_FORMAT} weights.bin`,
        certificate: null,
      },
      bytes,
    },
    detector: detectorOf(artifact, round),
  };
}

/** Scores preprocessed feature vectors; a wrong length or value is the caller's error, named per
 * flow. A predictor per call: its tensors live only while it scores (the model is ~100k floats). */
export function detectorOf(artifact: ModelArtifact, round: number): Detector {
  const { config, metadata } = artifact;
  const classes = Math.max(2, config.classes);
  return (flows: Flow[]) => {
    if (flows.length === 0 || flows.length > DETECT_ROWS_MAX) {
      return Promise.reject(
        invalid(`expected 1..${DETECT_ROWS_MAX} flows, got ${flows.length}`),
      );
    }
    const features = new Float32Array(flows.length * config.features);
    for (let i = 0; i < flows.length; i++) {
      const f = flows[i].features;
      if (f.length !== config.features) {
        return Promise.reject(
          invalid(
            `flows[${i}].features has ${f.length} values; the model takes ${config.features} ` +
              `(preprocessed: ${metadata.featureNames.slice(0, 3).join(", ")}, …)`,
          ),
        );
      }
      for (let j = 0; j < f.length; j++) {
        if (!Number.isFinite(f[j])) {
          return Promise.reject(
            invalid(`flows[${i}].features[${j}] is not a finite number`),
          );
        }
        features[i * config.features + j] = f[j];
      }
    }
    const predictor = new Predictor(config, artifact.device, artifact.edge);
    try {
      const probs = predictor.probabilities(features, flows.length);
      // The same decision as `iomt-sfl detect` (ml/artifact/detector.ts).
      const results: Detection[] = flows.map((flow, r) => {
        const row = probs.subarray(r * classes, (r + 1) * classes);
        const { score, alert, best } = classifyRow(row, metadata.threshold);
        return {
          ...(flow.id !== undefined ? { id: flow.id } : {}),
          label: metadata.classNames[best] ?? String(best),
          attack: alert,
          score: alert ? score : row[0],
        };
      });
      return Promise.resolve({ modelRound: round, results });
    } finally {
      predictor.dispose();
    }
  };
}

/** A detect request the model cannot score (wrong feature count, non-finite value): HTTP 400. */
function invalid(message: string): ViewError {
  return new ViewError("invalid_input", message);
}
