// Feeding a LabeledMatrix to a model: checks the contract against the model config, maps labels
// to the model's classes, and yields seeded shuffled mini-batches as plain arrays.
import type { LabeledMatrix } from "../data/types.ts";
import type { ModelConfig } from "../model/config.ts";
import { firstNonFinite } from "../model/params.ts";
import { permutation } from "../model/random.ts";

export const BATCH_SIZE_MAX = 65536;

export interface Batch {
  features: Float32Array;
  labels: Int32Array;
  rows: number;
}

/** Throws naming `where` when the matrix cannot feed the model (feature count, classes, NaN,
 * emptiness). Returns the labels in the model's class space (binary: 0 normal / 1 attack). */
export function checkMatrixForModel(
  config: ModelConfig,
  m: LabeledMatrix,
  where: string,
): Int32Array {
  const columns = m.featureNames.length;
  if (columns !== config.features) {
    throw new Error(`${where}: data has ${columns} features, model expects ${config.features}`);
  }
  if (m.rows === 0) throw new Error(`${where}: empty partition (0 rows)`);
  if (m.features.length !== m.rows * columns || m.labels.length !== m.rows) {
    throw new Error(
      `${where}: ${m.features.length} values / ${m.labels.length} labels for ${m.rows} x ${columns}`,
    );
  }
  const bad = firstNonFinite(m.features);
  if (bad >= 0) {
    throw new Error(
      `${where}: non-finite value ${m.features[bad]} at row ${Math.floor(bad / columns)}, column ${
        m.featureNames[bad % columns]
      }`,
    );
  }
  if (config.classes !== 2 && m.classNames.length !== config.classes) {
    throw new Error(
      `${where}: data has ${m.classNames.length} classes, model expects ${config.classes}`,
    );
  }
  const labels = new Int32Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    const label = m.labels[r];
    if (!(label >= 0 && label < m.classNames.length)) {
      throw new Error(`${where}: label ${label} at row ${r} out of range`);
    }
    labels[r] = config.classes === 2 ? (label === 0 ? 0 : 1) : label;
  }
  return labels;
}

/** Mini-batches of `batchSize` rows in a seeded order (the last batch may be smaller). */
export function* shuffledBatches(
  m: LabeledMatrix,
  labels: Int32Array,
  batchSize: number,
  seed: number,
): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > BATCH_SIZE_MAX) {
    throw new Error(`batch size ${batchSize} outside 1..${BATCH_SIZE_MAX}`);
  }
  const columns = m.featureNames.length;
  const order = permutation(m.rows, seed);
  for (let start = 0; start < m.rows; start += batchSize) {
    const rows = Math.min(batchSize, m.rows - start);
    const features = new Float32Array(rows * columns);
    const batchLabels = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      const r = order[start + i];
      features.set(m.features.subarray(r * columns, (r + 1) * columns), i * columns);
      batchLabels[i] = labels[r];
    }
    yield { features, labels: batchLabels, rows };
  }
}
