// The contract between the data path (ml/data) and the learning engine (ml/model, ml/train).
// Everything that reaches a model is a LabeledMatrix: dense, scaled, finite Float32 features.

/** Dense feature matrix with one class index per row. Row-major: row r is
 * features[r * featureNames.length ... (r + 1) * featureNames.length). */
export interface LabeledMatrix {
  readonly featureNames: readonly string[];
  readonly features: Float32Array;
  readonly rows: number;
  /** Class index per row, 0 <= label < classNames.length. */
  readonly labels: Int32Array;
  /** classNames[0] is the normal / benign class; every other class is an attack. */
  readonly classNames: readonly string[];
}

/** The first `rows` rows (all of them when there are fewer); views, no copy. */
export function headRows(matrix: LabeledMatrix, rows: number): LabeledMatrix {
  const n = Math.max(0, Math.min(rows, matrix.rows));
  const columns = matrix.featureNames.length;
  return {
    featureNames: matrix.featureNames,
    classNames: matrix.classNames,
    rows: n,
    features: matrix.features.subarray(0, n * columns),
    labels: matrix.labels.subarray(0, n),
  };
}

/** Binary (normal vs attack) or multi-class (one output per class name). */
export type LabelMode = "binary" | "multiclass";

/** Checks the invariants of a LabeledMatrix; throws naming the first violation. */
export function assertLabeledMatrix(matrix: LabeledMatrix, where: string): void {
  const columns = matrix.featureNames.length;
  if (columns <= 0) throw new Error(`${where}: no feature columns`);
  if (!Number.isInteger(matrix.rows) || matrix.rows < 0) throw new Error(`${where}: bad row count`);
  if (matrix.features.length !== matrix.rows * columns) {
    throw new Error(
      `${where}: features has ${matrix.features.length} values, expected ${matrix.rows} x ${columns}`,
    );
  }
  if (matrix.labels.length !== matrix.rows) {
    throw new Error(`${where}: ${matrix.labels.length} labels for ${matrix.rows} rows`);
  }
  if (matrix.classNames.length < 2) throw new Error(`${where}: fewer than two classes`);
  for (let i = 0; i < matrix.features.length; i++) {
    if (!Number.isFinite(matrix.features[i])) {
      const row = Math.floor(i / columns);
      throw new Error(
        `${where}: non-finite value at row ${row}, column ${matrix.featureNames[i % columns]}`,
      );
    }
  }
  for (let r = 0; r < matrix.rows; r++) {
    const label = matrix.labels[r];
    if (label < 0 || label >= matrix.classNames.length) {
      throw new Error(
        `${where}: label ${label} at row ${r} outside 0..${matrix.classNames.length - 1}`,
      );
    }
  }
}

/** Binary view: 0 = normal (class 0), 1 = any attack class. */
export function binaryLabels(matrix: LabeledMatrix): Int32Array {
  return matrix.labels.map((label) => (label === 0 ? 0 : 1));
}
