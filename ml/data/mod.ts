// The flow data path: loaders, features, leak guard, splits, synthetic data. See docs/data.md.
export * from "./types.ts";
export { BadRowError, type BadRowKind, DataError } from "./errors.ts";
export { Rng } from "./random.ts";
export {
  ciciomtClassFromFileName,
  FORMAT_NAMES,
  type FormatChoice,
  type FormatName,
  FORMATS,
} from "./formats.ts";
export { LINE_CHARS_MAX, readLineBatches, type TextInput } from "./lines.ts";
export {
  type DataInput,
  openRecordSource,
  type RawRecord,
  type RecordBatch,
  type RecordSource,
} from "./records.ts";
export {
  type BadRowReport,
  type DroppedColumn,
  type LoadOptions,
  loadTable,
  type RawTable,
} from "./table.ts";
export {
  type CategoricalEncoding,
  Preprocessor,
  type PreprocessorJson,
  RecordEncoder,
} from "./preprocess.ts";
export {
  balancedAccuracy,
  LEAK_THRESHOLD,
  type LeakFinding,
  measureLeaks,
  rocAuc,
} from "./leak.ts";
export {
  type DeviceOptions,
  type Partition,
  partitionRows,
  PARTITIONS,
  type SplitMode,
  splitRows,
} from "./split.ts";
export {
  type DataReport,
  type FileSource,
  inspectDataset,
  prepareDataset,
  type PreparedDataset,
  type PrepareOptions,
  type SyntheticSource,
} from "./prepare.ts";
export { type FeatureBatch, type FeatureStreamOptions, readFeatureBatches } from "./stream.ts";
export {
  generateSyntheticRows,
  SYNTHETIC_CLASSES,
  SYNTHETIC_HEADER,
  type SyntheticOptions,
  syntheticRecordSource,
  writeSyntheticCsv,
} from "./synthetic.ts";
