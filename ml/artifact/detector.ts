// Scoring flows with a saved model: the engine behind `iomt-sfl detect`. Reads batches of
// encoded flows (ml/data readFeatureBatches), scores P(attack), and emits one result per flow
// that crosses the threshold (or every flow with `all`).
import type { DataInput } from "../data/records.ts";
import type { ModelArtifact } from "./model_artifact.ts";
import { Predictor } from "../train/evaluate.ts";
import { type BinaryMetrics, binaryMetrics } from "../metrics/classification.ts";

export interface DetectOptions {
  /** Overrides the saved threshold. */
  threshold?: number;
  all?: boolean;
  format?: string;
  batchRows?: number;
  skipBadRows?: boolean;
  labelsFile?: string;
}

export interface Detection {
  file: string;
  line: number;
  /** P(attack) = 1 - P(normal). */
  score: number;
  alert: boolean;
  /** Most likely class name (binary: "normal" / "attack"). */
  class: string;
  /** True class name when the input carries labels. */
  label?: string;
}

export interface DetectSummary {
  rows: number;
  alerts: number;
  seconds: number;
  rowsPerSecond: number;
  badRowsSkipped: number;
  /** Rows whose input label is a class the model knows. */
  labelledRows: number;
  /** Over the labelled rows, when there are any. */
  metrics?: BinaryMetrics;
}

export async function detectFlows(
  artifact: ModelArtifact,
  input: DataInput,
  options: DetectOptions,
  emit: (d: Detection) => void,
): Promise<DetectSummary> {
  const { Preprocessor } = await import("../data/preprocess.ts");
  const { readFeatureBatches } = await import("../data/stream.ts");
  const preprocessor = Preprocessor.fromJSON(artifact.preprocessing);
  const width = preprocessor.featureNames.length;
  if (width !== artifact.config.features) {
    throw new Error(
      `model: preprocessor makes ${width} features, the network expects ${artifact.config.features}`,
    );
  }
  const names = preprocessor.featureNames.join("\u0000");
  if (names !== artifact.metadata.featureNames.join("\u0000")) {
    throw new Error("model: preprocessor feature names differ from the model's metadata");
  }
  const threshold = options.threshold ?? artifact.metadata.threshold;
  const classNames = artifact.metadata.classNames;
  const classes = Math.max(2, artifact.config.classes);
  const predictor = new Predictor(artifact.config, artifact.device, artifact.edge);
  const badRows = { skipped: 0, byKind: {}, examples: [] as string[] };
  const scores: number[] = [];
  const truth: number[] = [];
  let rows = 0;
  let alerts = 0;
  const started = performance.now();
  try {
    for await (
      const batch of readFeatureBatches(input, preprocessor, {
        format: options.format as never,
        batchRows: options.batchRows,
        skipBadRows: options.skipBadRows,
        badRows,
        labelsFile: options.labelsFile,
      })
    ) {
      const probs = predictor.probabilities(batch.features, batch.rows);
      for (let r = 0; r < batch.rows; r++) {
        const { score, alert, best } = classifyRow(
          probs.subarray(r * classes, (r + 1) * classes),
          threshold,
        );
        if (alert) alerts++;
        const label = batch.labels[r];
        if (label >= 0) {
          scores.push(score);
          truth.push(label > 0 ? 1 : 0);
        }
        if (alert || options.all) {
          emit({
            file: batch.file,
            line: batch.lines[r],
            score,
            alert,
            class: classNames[best] ?? String(best),
            ...(label >= 0 ? { label: classNames[label] ?? String(label) } : {}),
          });
        }
      }
      rows += batch.rows;
    }
  } finally {
    predictor.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    rows,
    alerts,
    seconds,
    rowsPerSecond: rows / Math.max(seconds, 1e-9),
    badRowsSkipped: badRows.skipped,
    labelledRows: scores.length,
    metrics: scores.length > 0
      ? binaryMetrics(Float64Array.from(scores), Int32Array.from(truth), threshold)
      : undefined,
  };
}

/** One row of class probabilities (column 0 = normal): the attack score 1 − P(normal), whether it
 * crosses the threshold, and the class to report (the likeliest attack class on an alert). */
export function classifyRow(
  row: Float32Array,
  threshold: number,
): { score: number; alert: boolean; best: number } {
  const score = 1 - row[0];
  const alert = score >= threshold;
  let best = 0;
  if (row.length > 2) {
    for (let c = 1; c < row.length; c++) if (row[c] > row[best]) best = c;
    if (alert && best === 0) best = bestAttack(row);
  } else best = alert ? 1 : 0;
  return { score, alert, best };
}

function bestAttack(row: Float32Array): number {
  let best = 1;
  for (let c = 2; c < row.length; c++) if (row[c] > row[best]) best = c;
  return best;
}
