// The narrow adapter between the data path and the audit: splits as LabeledMatrix plus what is
// needed to put reconstructed values back into clinical units (the fitted scaler of each numeric
// column). Everything else in ml/privacy depends on PrivacyData only, not on ml/data's internals.
import type { LabeledMatrix } from "../data/types.ts";

/** Inverse of the preprocessor's numeric scaling for one feature column. */
export interface FeatureScale {
  name: string;
  /** Index in featureNames. */
  index: number;
  mean: number;
  std: number;
  /** The preprocessor took log1p before standardizing. */
  log1p: boolean;
}

export interface PrivacyData {
  name: string;
  train: LabeledMatrix;
  validation: LabeledMatrix;
  test: LabeledMatrix;
  /** Numeric columns only; categorical (one-hot) columns have no unit to invert to. */
  scales: FeatureScale[];
}

/** Scaled feature value -> original units. */
export function unscale(scale: FeatureScale, scaled: number): number {
  const v = scaled * scale.std + scale.mean;
  return scale.log1p ? Math.expm1(v) : v;
}

/** The subset of ml/data's PreparedDataset this adapter reads (structural, so a change elsewhere
 * in PreparedDataset does not break the audit). */
export interface PreparedLike {
  train: LabeledMatrix;
  validation: LabeledMatrix;
  test: LabeledMatrix;
  preprocessor: {
    spec: {
      columns:
        readonly ({ name: string; kind: string; mean?: number; std?: number; log1p?: boolean })[];
      featureNames: readonly string[];
    };
  };
}

export function fromPrepared(name: string, prepared: PreparedLike): PrivacyData {
  const names = prepared.preprocessor.spec.featureNames;
  const scales: FeatureScale[] = [];
  for (const column of prepared.preprocessor.spec.columns) {
    if (column.kind !== "numeric") continue;
    const index = names.indexOf(column.name);
    if (index < 0 || typeof column.mean !== "number" || typeof column.std !== "number") {
      throw new Error(`privacy data: numeric column ${column.name} has no feature or scaler`);
    }
    scales.push({
      name: column.name,
      index,
      mean: column.mean,
      std: column.std,
      log1p: Boolean(column.log1p),
    });
  }
  return {
    name,
    train: prepared.train,
    validation: prepared.validation,
    test: prepared.test,
    scales,
  };
}

export type PrivacySource = { synthetic: { rows: number; seed: number } } | { path: string };

/** Loads and prepares a data set (binary labels, stratified split) through ml/data. */
export async function loadPrivacyData(source: PrivacySource, seed: number): Promise<PrivacyData> {
  const { prepareDataset } = await import("../data/prepare.ts");
  const prepared = await prepareDataset({ source, seed, labelMode: "binary" });
  const name = "synthetic" in source
    ? `synthetic IoMT (${source.synthetic.rows} rows, seed ${source.synthetic.seed})`
    : source.path.split(/[\\/]/).pop()!;
  return fromPrepared(name, prepared);
}
