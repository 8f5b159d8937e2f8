// The fitted feature pipeline: which raw columns become which features, with statistics fit on
// the training split only. It is saved with the model (toJSON / fromJSON) so that `detect` turns
// new records into exactly the features the model was trained on.
import { BadRowError, DataError } from "./errors.ts";
import { type FormatName, isNormalLabel } from "./formats.ts";
import type { LabelMode } from "./types.ts";
import { isMissing, MISSING_VALUE, OVERFLOW_VALUE, type RawTable } from "./table.ts";

export const PREPROCESSOR_VERSION = 1;
/** One-hot columns per categorical column (the most frequent training values), plus "(other)". */
export const ONE_HOT_VALUES_MAX = 16;
export const HASH_BUCKETS = 32;
/** Scaled values are clipped: one absurd value in a new file must not saturate the model. */
export const SCALED_ABS_MAX = 20;
/** Non-negative columns whose training maximum reaches this are log1p-transformed first
 * (bytes, loads, rates span many orders of magnitude). */
const LOG_TRANSFORM_MAX_MIN = 1000;

export type CategoricalEncoding = "onehot" | "hash";

export interface NumericFeature {
  name: string;
  kind: "numeric";
  log1p: boolean;
  mean: number;
  std: number;
  /** Adds a "<name>:missing" 0/1 feature (the column had missing values in training). */
  missingIndicator: boolean;
}

export interface CategoricalFeature {
  name: string;
  kind: "categorical";
  encoding: CategoricalEncoding;
  /** onehot: the values with their own feature; the rest go to "(other)" when `other`. */
  values: string[];
  other: boolean;
  buckets: number;
}

export type FeatureColumn = NumericFeature | CategoricalFeature;

export interface PreprocessorJson {
  version: number;
  format: FormatName;
  labelColumns: string[];
  labelMode: LabelMode;
  /** Class names of the model's outputs (binary: [normal, "attack"]). */
  classNames: string[];
  /** The raw class names found in training, in source order (normal first). */
  sourceClassNames: string[];
  columns: FeatureColumn[];
  featureNames: string[];
}

export interface FitOptions {
  labelMode: LabelMode;
  categoricalEncoding?: CategoricalEncoding;
  oneHotValuesMax?: number;
  /** Raw columns to leave out (leaky ones). */
  exclude?: ReadonlySet<string>;
}

/** A column that carries no information on the training split. */
export interface UnusedColumn {
  column: string;
  reason: string;
}

export class Preprocessor {
  readonly spec: PreprocessorJson;

  private constructor(spec: PreprocessorJson) {
    this.spec = spec;
  }

  get featureNames(): readonly string[] {
    return this.spec.featureNames;
  }
  get classNames(): readonly string[] {
    return this.spec.classNames;
  }

  /** Fits scaling and vocabularies on the training rows only. */
  static fit(
    table: RawTable,
    trainRows: Int32Array,
    options: FitOptions,
  ): { preprocessor: Preprocessor; unused: UnusedColumn[] } {
    const columns: FeatureColumn[] = [];
    const unused: UnusedColumn[] = [];
    const oneHotMax = options.oneHotValuesMax ?? ONE_HOT_VALUES_MAX;
    for (const column of table.columns) {
      if (options.exclude?.has(column.name)) continue;
      if (column.kind === "numeric") {
        let min = Infinity;
        let max = -Infinity;
        let missing = 0;
        for (const row of trainRows) {
          const v = column.values[row];
          if (Number.isNaN(v)) missing++;
          else {
            if (v < min) min = v;
            if (v > max) max = v;
          }
        }
        if (missing === trainRows.length) {
          unused.push({ column: column.name, reason: "all values missing on the training split" });
          continue;
        }
        if (min === max && missing === 0) {
          unused.push({ column: column.name, reason: `constant (${min}) on the training split` });
          continue;
        }
        const log1p = min >= 0 && max >= LOG_TRANSFORM_MAX_MIN;
        let n = 0;
        let mean = 0;
        let m2 = 0;
        for (const row of trainRows) {
          const raw = column.values[row];
          if (Number.isNaN(raw)) continue;
          const v = log1p ? Math.log1p(raw) : raw;
          n++;
          const delta = v - mean;
          mean += delta / n;
          m2 += delta * (v - mean);
        }
        const std = Math.sqrt(m2 / n);
        columns.push({
          name: column.name,
          kind: "numeric",
          log1p,
          mean,
          // A column constant apart from missing values still informs through its indicator.
          std: std > 0 ? std : 1,
          missingIndicator: missing > 0,
        });
      } else {
        const counts = new Map<number, number>();
        for (const row of trainRows) {
          counts.set(column.codes[row], (counts.get(column.codes[row]) ?? 0) + 1);
        }
        if (counts.size <= 1) {
          const only = column.vocabulary[[...counts.keys()][0] ?? 0] ?? MISSING_VALUE;
          unused.push({
            column: column.name,
            reason: `constant ("${only}") on the training split`,
          });
          continue;
        }
        const encoding = options.categoricalEncoding ?? "onehot";
        if (encoding === "hash") {
          columns.push({
            name: column.name,
            kind: "categorical",
            encoding,
            values: [],
            other: false,
            buckets: HASH_BUCKETS,
          });
          continue;
        }
        // Most frequent first; ties by value so the result does not depend on file order.
        const ranked = [...counts.entries()]
          .map(([code, count]) => [column.vocabulary[code], count] as const)
          .filter(([value]) => value !== OVERFLOW_VALUE)
          .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        const values = ranked.slice(0, oneHotMax).map(([value]) => value);
        const other = ranked.length > values.length || counts.size > ranked.length;
        columns.push({
          name: column.name,
          kind: "categorical",
          encoding,
          values,
          other,
          buckets: 0,
        });
      }
    }
    if (columns.length === 0) {
      throw new DataError(
        { file: table.files[0] },
        "no usable feature columns left after dropping identifiers, constants and leaks",
      );
    }
    const binary = options.labelMode === "binary";
    const spec: PreprocessorJson = {
      version: PREPROCESSOR_VERSION,
      format: table.format,
      labelColumns: table.labelColumns,
      labelMode: options.labelMode,
      classNames: binary ? [table.classNames[0], "attack"] : [...table.classNames],
      sourceClassNames: [...table.classNames],
      columns,
      featureNames: featureNamesOf(columns),
    };
    return { preprocessor: new Preprocessor(spec), unused };
  }

  static fromJSON(json: unknown): Preprocessor {
    const spec = json as PreprocessorJson;
    if (spec === null || typeof spec !== "object" || spec.version !== PREPROCESSOR_VERSION) {
      throw new Error(
        `preprocessor: expected version ${PREPROCESSOR_VERSION}, got ${
          (spec as { version?: unknown })?.version
        }`,
      );
    }
    if (
      !Array.isArray(spec.columns) || !Array.isArray(spec.classNames) || spec.classNames.length < 2
    ) {
      throw new Error("preprocessor: columns or classNames missing");
    }
    const names = featureNamesOf(spec.columns);
    if (names.join("\u0000") !== spec.featureNames.join("\u0000")) {
      throw new Error("preprocessor: featureNames do not match the columns");
    }
    return new Preprocessor(structuredClone(spec));
  }

  toJSON(): PreprocessorJson {
    return structuredClone(this.spec);
  }

  /** Class index for a raw class name in this label mode; -1 when unknown (multiclass only). */
  classIndex(raw: string): number {
    const index = this.spec.sourceClassNames.indexOf(raw);
    if (this.spec.labelMode === "binary") {
      // A class never seen in training is still an attack unless it reads as normal.
      if (index === 0 || (index < 0 && isNormalLabel(raw))) return 0;
      return 1;
    }
    return index < 0 ? -1 : this.spec.classNames.indexOf(raw);
  }

  /** Features of the given table rows, row-major. */
  transformTable(table: RawTable, rows: Int32Array): Float32Array {
    const width = this.spec.featureNames.length;
    const out = new Float32Array(rows.length * width);
    let offset = 0;
    for (const column of this.spec.columns) {
      const raw = table.columns.find((c) => c.name === column.name);
      if (!raw) throw new Error(`preprocessor: table has no column ${column.name}`);
      if (column.kind === "numeric") {
        if (raw.kind !== "numeric") {
          throw new Error(`preprocessor: column ${column.name} is not numeric in this table`);
        }
        for (let i = 0; i < rows.length; i++) {
          writeNumeric(column, raw.values[rows[i]], out, i * width + offset);
        }
        offset += column.missingIndicator ? 2 : 1;
      } else {
        const codeToSlot = new Int32Array(raw.kind === "categorical" ? raw.vocabulary.length : 0);
        if (raw.kind !== "categorical") {
          throw new Error(`preprocessor: column ${column.name} is not categorical in this table`);
        }
        raw.vocabulary.forEach((
          value,
          code,
        ) => (codeToSlot[code] = categoricalSlot(column, value)));
        for (let i = 0; i < rows.length; i++) {
          const slot = codeToSlot[raw.codes[rows[i]]];
          if (slot >= 0) out[i * width + offset + slot] = 1;
        }
        offset += categoricalWidth(column);
      }
    }
    return out;
  }

  /** An encoder for records with this header (from openRecordSource), for detection. */
  bindHeader(header: readonly string[], file: string): RecordEncoder {
    const indexes = this.spec.columns.map((column) => {
      const index = header.indexOf(column.name);
      if (index < 0) {
        throw new DataError(
          { file, line: 1, column: column.name },
          "column needed by the model is missing from this input",
        );
      }
      return index;
    });
    const labelIndexes = this.spec.labelColumns.map((name) => header.indexOf(name)).filter((i) =>
      i >= 0
    );
    return new RecordEncoder(this, indexes, labelIndexes, header.length, file);
  }
}

/** Turns raw string records into feature rows (and the label, when the input has one). */
export class RecordEncoder {
  constructor(
    private readonly preprocessor: Preprocessor,
    private readonly indexes: number[],
    private readonly labelIndexes: number[],
    private readonly width: number,
    private readonly file: string,
  ) {}

  get hasLabels(): boolean {
    return this.labelIndexes.length > 0;
  }

  /** Writes one row at out[offset ...]; throws BadRowError on a ragged row or text in a number. */
  encode(fields: readonly string[], line: number, out: Float32Array, offset: number): void {
    if (fields.length !== this.width) {
      throw new BadRowError(
        { file: this.file, line },
        "ragged",
        `expected ${this.width} fields, found ${fields.length}`,
      );
    }
    const columns = this.preprocessor.spec.columns;
    const featureWidth = this.preprocessor.spec.featureNames.length;
    out.fill(0, offset, offset + featureWidth);
    let at = offset;
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c];
      const value = fields[this.indexes[c]];
      if (column.kind === "numeric") {
        let parsed = NaN;
        if (!isMissing(value)) {
          parsed = Number(value);
          if (Number.isNaN(parsed)) {
            throw new BadRowError(
              { file: this.file, line, column: column.name },
              "non-numeric",
              `text ${JSON.stringify(value.slice(0, 40))} in a numeric column`,
            );
          }
        }
        // Training stored values as float32; round the same way so both paths agree exactly.
        writeNumeric(column, Math.fround(parsed), out, at);
        at += column.missingIndicator ? 2 : 1;
      } else {
        const trimmed = value.trim();
        const slot = categoricalSlot(column, isMissing(trimmed) ? MISSING_VALUE : trimmed);
        if (slot >= 0) out[at + slot] = 1;
        at += categoricalWidth(column);
      }
    }
  }

  /** Class index of the record in the model's label mode, or -1 (no label / unknown class). */
  label(fields: readonly string[]): number {
    for (const index of this.labelIndexes) {
      const value = fields[index]?.trim() ?? "";
      if (!isMissing(value)) return this.preprocessor.classIndex(value);
    }
    return -1;
  }
}

function writeNumeric(column: NumericFeature, raw: number, out: Float32Array, at: number): void {
  if (Number.isNaN(raw)) {
    out[at] = 0; // the training mean
    if (column.missingIndicator) out[at + 1] = 1;
    return;
  }
  const v = column.log1p ? Math.log1p(Math.max(raw, 0)) : raw;
  let scaled = (v - column.mean) / column.std;
  if (!(scaled < SCALED_ABS_MAX)) {
    scaled = scaled > 0 || Number.isNaN(scaled) ? SCALED_ABS_MAX : scaled;
  }
  if (scaled < -SCALED_ABS_MAX) scaled = -SCALED_ABS_MAX;
  out[at] = scaled;
  if (column.missingIndicator) out[at + 1] = 0;
}

function categoricalSlot(column: CategoricalFeature, value: string): number {
  if (column.encoding === "hash") return fnv1a(value) % column.buckets;
  const index = column.values.indexOf(value);
  if (index >= 0) return index;
  return column.other ? column.values.length : -1;
}

function categoricalWidth(column: CategoricalFeature): number {
  if (column.encoding === "hash") return column.buckets;
  return column.values.length + (column.other ? 1 : 0);
}

function featureNamesOf(columns: readonly FeatureColumn[]): string[] {
  const names: string[] = [];
  for (const column of columns) {
    if (column.kind === "numeric") {
      names.push(column.name);
      if (column.missingIndicator) names.push(`${column.name}:missing`);
    } else if (column.encoding === "hash") {
      for (let b = 0; b < column.buckets; b++) names.push(`${column.name}#${b}`);
    } else {
      for (const value of column.values) names.push(`${column.name}=${value}`);
      if (column.other) names.push(`${column.name}=(other)`);
    }
  }
  return names;
}

/** 32-bit FNV-1a over UTF-16 code units: stable across runtimes, for hashed categoricals. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
