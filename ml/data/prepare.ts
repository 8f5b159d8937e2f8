// The one entry point for the trainer and `run`: source -> table -> split -> leak guard ->
// preprocessor fit on train -> scaled matrices for train/validation/test and per device.
import { DataError } from "./errors.ts";
import type { FormatChoice, FormatName } from "./formats.ts";
import { LEAK_THRESHOLD, LEAK_TRAIN_ROWS_MIN, type LeakFinding, measureLeaks } from "./leak.ts";
import type { TextInput } from "./lines.ts";
import { type CategoricalEncoding, Preprocessor, type UnusedColumn } from "./preprocess.ts";
import { openRecordSource } from "./records.ts";
import {
  classCounts,
  type DeviceOptions,
  type Partition,
  partitionRows,
  type SplitMode,
  splitRows,
} from "./split.ts";
import { syntheticRecordSource } from "./synthetic.ts";
import { type BadRowReport, type DroppedColumn, loadFromSource, type RawTable } from "./table.ts";
import { assertLabeledMatrix, type LabeledMatrix, type LabelMode } from "./types.ts";

export interface FileSource {
  /** A file or a directory (CICIoMT2024); or pass `input` for stdin / lines. */
  path?: string;
  input?: TextInput;
  format?: FormatChoice;
  labelColumn?: string;
  drop?: string[];
  /** Re-enable identity columns dropped by default (e.g. ["SrcMac"]). */
  keep?: string[];
  normalLabel?: string;
  labelsFile?: string;
  rowsMax?: number;
}

export interface SyntheticSource {
  synthetic: { rows: number; seed: number };
}

export interface PrepareOptions {
  source: FileSource | SyntheticSource;
  labelMode?: LabelMode;
  split?: { mode?: SplitMode; validation?: number; test?: number };
  devices?: DeviceOptions;
  seed?: number;
  /** Columns kept even though the leak guard flags them. */
  allowLeaky?: string[];
  skipBadRows?: boolean;
  categoricalEncoding?: CategoricalEncoding;
  leakThreshold?: number;
}

export interface DataReport {
  format: FormatName;
  formatReason: string;
  files: string[];
  rows: number;
  /** Columns in the source header. */
  columns: number;
  labelColumn: string;
  labelMode: LabelMode;
  /** Raw classes (normal first) with their row counts. */
  classCounts: Record<string, number>;
  dropped: DroppedColumn[];
  /** Raw columns used as features and their kind. */
  features: { column: string; kind: "numeric" | "categorical" }[];
  featureCount: number;
  leaks: LeakFinding[];
  leakGuard: { measured: boolean; threshold: number; note: string };
  /** Leaky columns kept because of allowLeaky. */
  leaksAllowed: string[];
  missing: Record<string, number>;
  badRows: BadRowReport;
  timeColumn: string | null;
  split: {
    mode: SplitMode;
    seed: number;
    rows: { train: number; validation: number; test: number };
    classCounts: { train: number[]; validation: number[]; test: number[] };
  };
  devices: {
    partition: Partition;
    alpha: number | null;
    rows: number[];
    /** Per device, rows per class of the model's classNames. */
    classCounts: number[][];
  };
  classNames: string[];
}

export interface PreparedDataset {
  train: LabeledMatrix;
  validation: LabeledMatrix;
  test: LabeledMatrix;
  /** Training rows per device; their union is `train` (same rows, grouped by device). */
  devices: LabeledMatrix[];
  preprocessor: Preprocessor;
  report: DataReport;
}

interface Analysis {
  table: RawTable;
  labels: Int32Array;
  split: ReturnType<typeof splitRows>;
  deviceRows: Int32Array[];
  preprocessor: Preprocessor;
  report: DataReport;
}

async function loadSourceTable(options: PrepareOptions): Promise<RawTable> {
  const source = options.source;
  if ("synthetic" in source) {
    return await loadFromSource(syntheticRecordSource(source.synthetic), {
      skipBadRows: options.skipBadRows,
    });
  }
  const input: TextInput | undefined = source.input ??
    (source.path !== undefined ? { path: source.path } : undefined);
  if (!input) throw new Error("prepareDataset: source needs a path, an input or synthetic");
  const records = await openRecordSource(input, {
    format: source.format,
    labelsFile: source.labelsFile,
  });
  return await loadFromSource(records, {
    labelColumn: source.labelColumn,
    drop: source.drop,
    keep: source.keep,
    normalLabel: source.normalLabel,
    skipBadRows: options.skipBadRows,
    rowsMax: source.rowsMax,
  });
}

async function analyse(options: PrepareOptions): Promise<Analysis> {
  const seed = options.seed ?? 0;
  const labelMode = options.labelMode ?? "binary";
  const table = await loadSourceTable(options);
  const file = table.files[0];
  const rawClasses = table.classNames.length;
  if (rawClasses < 2) {
    throw new DataError(
      { file, column: table.labelColumns[0] },
      `only one class (${table.classNames[0]}) in the data`,
    );
  }
  const splitMode = options.split?.mode ?? "stratified";
  const split = splitRows(table.labels, rawClasses, options.split ?? {}, seed, table.time);
  if (split.train.length === 0) throw new DataError({ file }, "no training rows after the split");

  const leaks = measureLeaks(table, split.train, seed, options.leakThreshold ?? LEAK_THRESHOLD);
  const allow = new Set(options.allowLeaky ?? []);
  for (const name of allow) {
    if (!table.columns.some((c) => c.name === name)) {
      throw new DataError(
        { file, column: name },
        "--allow-leaky names a column that is not a feature",
      );
    }
  }
  const excluded = new Set(
    leaks.filter((l) => l.leaky && !allow.has(l.column)).map((l) => l.column),
  );
  const { preprocessor, unused } = Preprocessor.fit(table, split.train, {
    labelMode,
    categoricalEncoding: options.categoricalEncoding,
    exclude: excluded,
  });
  const labels = labelMode === "binary" ? table.labels.map((l) => (l === 0 ? 0 : 1)) : table.labels;
  const classCount = preprocessor.classNames.length;
  const deviceOptions: DeviceOptions = options.devices ?? { count: 1 };
  const deviceRows = partitionRows(split.train, labels, classCount, deviceOptions, seed);

  const dropped: DroppedColumn[] = [
    ...table.dropped,
    ...unused.map((u: UnusedColumn) => ({ column: u.column, reason: u.reason })),
    ...[...excluded].map((column) => {
      const finding = leaks.find((l) => l.column === column)!;
      return {
        column,
        reason: `leaky: alone predicts the label (score ${
          finding.score.toFixed(4)
        }); keep with --allow-leaky ${column}`,
      };
    }),
  ];
  const used = new Set(preprocessor.spec.columns.map((c) => c.name));
  const allCounts = classCounts(
    allRows(table.rows),
    table.labels,
    rawClasses,
  );
  const report: DataReport = {
    format: table.format,
    formatReason: table.formatReason,
    files: table.files,
    rows: table.rows,
    columns: table.header.length,
    labelColumn: table.labelColumns[0],
    labelMode,
    classCounts: Object.fromEntries(table.classNames.map((name, i) => [name, allCounts[i]])),
    dropped,
    features: table.columns.filter((c) => used.has(c.name)).map((c) => ({
      column: c.name,
      kind: c.kind,
    })),
    featureCount: preprocessor.featureNames.length,
    leaks: leaks.filter((l) => l.leaky),
    leakGuard: {
      measured: split.train.length >= LEAK_TRAIN_ROWS_MIN,
      threshold: options.leakThreshold ?? LEAK_THRESHOLD,
      note: split.train.length >= LEAK_TRAIN_ROWS_MIN
        ? `each column alone on ${
          Math.min(split.train.length, 100_000)
        } training rows (2/3 fit, 1/3 held out)`
        : `not measured: ${split.train.length} training rows, needs at least ${LEAK_TRAIN_ROWS_MIN}`,
    },
    leaksAllowed: leaks.filter((l) => l.leaky && allow.has(l.column)).map((l) => l.column),
    missing: table.missing,
    badRows: table.badRows,
    timeColumn: table.timeColumn,
    split: {
      mode: splitMode,
      seed,
      rows: {
        train: split.train.length,
        validation: split.validation.length,
        test: split.test.length,
      },
      classCounts: {
        train: classCounts(split.train, labels, classCount),
        validation: classCounts(split.validation, labels, classCount),
        test: classCounts(split.test, labels, classCount),
      },
    },
    devices: {
      partition: deviceOptions.partition ?? "iid",
      alpha: (deviceOptions.partition ?? "iid") === "iid" ? null : deviceOptions.alpha ?? 0.5,
      rows: deviceRows.map((rows) => rows.length),
      classCounts: deviceRows.map((rows) => classCounts(rows, labels, classCount)),
    },
    classNames: [...preprocessor.classNames],
  };
  return { table, labels, split, deviceRows, preprocessor, report };
}

/** Loads, checks, splits, scales and partitions a data set for training. */
export async function prepareDataset(options: PrepareOptions): Promise<PreparedDataset> {
  const { table, labels, split, deviceRows, preprocessor, report } = await analyse(options);
  const matrix = (rows: Int32Array, where: string): LabeledMatrix => {
    const result: LabeledMatrix = {
      featureNames: preprocessor.featureNames,
      features: preprocessor.transformTable(table, rows),
      rows: rows.length,
      labels: gather(labels, rows),
      classNames: preprocessor.classNames,
    };
    if (rows.length > 0) assertLabeledMatrix(result, where);
    return result;
  };
  // The training matrix is the devices' rows back to back, so each device is a zero-copy view.
  const trainOrder = new Int32Array(split.train.length);
  let at = 0;
  for (const rows of deviceRows) {
    trainOrder.set(rows, at);
    at += rows.length;
  }
  const train = matrix(trainOrder, "train");
  const width = preprocessor.featureNames.length;
  const devices: LabeledMatrix[] = [];
  at = 0;
  for (const rows of deviceRows) {
    devices.push({
      featureNames: train.featureNames,
      features: train.features.subarray(at * width, (at + rows.length) * width),
      rows: rows.length,
      labels: train.labels.subarray(at, at + rows.length),
      classNames: train.classNames,
    });
    at += rows.length;
  }
  return {
    train,
    validation: matrix(split.validation, "validation"),
    test: matrix(split.test, "test"),
    devices,
    preprocessor,
    report,
  };
}

/** What `data inspect` shows: everything prepareDataset decides, without building matrices. */
export async function inspectDataset(options: PrepareOptions): Promise<DataReport> {
  return (await analyse(options)).report;
}

function allRows(count: number): Int32Array {
  const rows = new Int32Array(count);
  for (let i = 0; i < count; i++) rows[i] = i;
  return rows;
}

function gather(values: Int32Array, rows: Int32Array): Int32Array {
  const out = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = values[rows[i]];
  return out;
}
