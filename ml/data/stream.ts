// Streaming records for `detect FILE|-`: parse new input with the same readers as training and
// encode it with the saved preprocessor, in bounded batches.
import { BadRowError } from "./errors.ts";
import type { FormatChoice } from "./formats.ts";
import type { Preprocessor } from "./preprocess.ts";
import { BAD_JSON_MARK, type DataInput, openRecordSource } from "./records.ts";
import type { BadRowReport } from "./table.ts";

export const DETECT_BATCH_ROWS_MAX = 65_536;

export interface FeatureBatch {
  file: string;
  rows: number;
  /** rows x preprocessor.featureNames.length, row-major, scaled like the training data. */
  features: Float32Array;
  /** Source line of each row (for alerts that point at the input). */
  lines: Int32Array;
  /** Class index per row in the model's label mode; -1 when the input has no (known) label. */
  labels: Int32Array;
}

export interface FeatureStreamOptions {
  /** Defaults to the format the preprocessor was trained on (auto-detected when "auto"). */
  format?: FormatChoice;
  batchRows?: number;
  skipBadRows?: boolean;
  /** Filled in as bad rows are skipped. */
  badRows?: BadRowReport;
  labelsFile?: string;
}

/** Reads a file, directory, byte stream (stdin) or lines, yielding encoded feature batches. */
export async function* readFeatureBatches(
  input: DataInput,
  preprocessor: Preprocessor,
  options: FeatureStreamOptions = {},
): AsyncIterable<FeatureBatch> {
  const batchRows = options.batchRows ?? 1024;
  if (!Number.isInteger(batchRows) || batchRows < 1 || batchRows > DETECT_BATCH_ROWS_MAX) {
    throw new Error(`readFeatureBatches: batchRows must be 1..${DETECT_BATCH_ROWS_MAX}`);
  }
  const source = await openRecordSource(input, {
    format: options.format ?? preprocessor.spec.format,
    labelsFile: options.labelsFile,
  });
  const encoder = preprocessor.bindHeader(source.header, source.files[0]);
  const width = preprocessor.featureNames.length;
  const badRows = options.badRows ?? { skipped: 0, byKind: {}, examples: [] };
  let features = new Float32Array(batchRows * width);
  let lines = new Int32Array(batchRows);
  let labels = new Int32Array(batchRows);
  let rows = 0;
  let file = source.files[0];
  const flush = (): FeatureBatch => {
    const batch = {
      file,
      rows,
      features: features.subarray(0, rows * width),
      lines: lines.subarray(0, rows),
      labels: labels.subarray(0, rows),
    };
    // Fresh buffers: the consumer may keep the batch while we fill the next one.
    features = new Float32Array(batchRows * width);
    lines = new Int32Array(batchRows);
    labels = new Int32Array(batchRows);
    rows = 0;
    return batch;
  };
  for await (const batch of source.batches()) {
    if (batch.file !== file && rows > 0) yield flush();
    file = batch.file;
    for (const record of batch.records) {
      try {
        if (record.fields[0] === BAD_JSON_MARK) {
          throw new BadRowError(
            { file, line: record.line },
            "bad-json",
            record.fields[1] ?? "not valid JSON",
          );
        }
        encoder.encode(record.fields, record.line, features, rows * width);
      } catch (error) {
        if (!(error instanceof BadRowError) || !options.skipBadRows) throw error;
        badRows.skipped++;
        badRows.byKind[error.kind] = (badRows.byKind[error.kind] ?? 0) + 1;
        if (badRows.examples.length < 5) badRows.examples.push(error.message);
        continue;
      }
      lines[rows] = record.line;
      labels[rows] = encoder.label(record.fields);
      rows++;
      if (rows === batchRows) yield flush();
    }
  }
  if (rows > 0) yield flush();
}
