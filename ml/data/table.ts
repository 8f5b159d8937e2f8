// Loads a record source into a column store: growable typed arrays per kept column, never an
// array of row objects, so memory is ~4 bytes per numeric cell. Decides per column: feature
// (numeric or categorical), label, time, or dropped (with the reason printed by `data inspect`).
import { BadRowError, type BadRowKind, DataError } from "./errors.ts";
import { FORMATS, identityReason, isNormalLabel } from "./formats.ts";
import {
  BAD_JSON_MARK,
  type ColumnType,
  type DataInput,
  openRecordSource,
  type RawRecord,
  type RecordSource,
} from "./records.ts";
import type { FormatChoice, FormatName } from "./formats.ts";

/** Distinct values kept per categorical column while loading; later ones share "(overflow)". */
export const CATEGORY_VALUES_MAX = 4096;
/** Distinct classes accepted in a label column. */
export const CLASSES_MAX = 256;
/** Records used to decide whether a column is numeric or categorical. */
const TYPE_SAMPLE_ROWS = 1000;
const PORT_NAME = /(^|[^a-z])[sd]?port$|_p$/i;
const BAD_ROW_EXAMPLES_MAX = 5;
export const OVERFLOW_VALUE = "(overflow)";
export const MISSING_VALUE = "(missing)";

/** Tokens that mean "no value" in the formats we read. Infinity is CICFlowMeter's divide by zero. */
const MISSING_TOKENS = new Set([
  "",
  "-",
  "(empty)",
  "NaN",
  "nan",
  "NA",
  "N/A",
  "null",
  "None",
  "Infinity",
  "-Infinity",
  "inf",
  "-inf",
]);

export function isMissing(value: string): boolean {
  const length = value.length;
  if (length === 0) return true;
  const first = value.charCodeAt(0);
  // Most cells are numbers: a leading digit settles it without hashing the string.
  if ((first >= 48 && first <= 57) || length > 12) return false;
  return MISSING_TOKENS.has(value) || MISSING_TOKENS.has(value.trim());
}

/** Values kept in fixed blocks while loading: no doubling-and-copying, so the peak while
 * loading is the data itself plus one column during finish(). */
const BLOCK_VALUES = 1 << 16;

class BlockArray<T extends Float32Array | Int32Array | Float64Array> {
  #blocks: T[] = [];
  #current: T;
  #used = 0;
  length = 0;
  constructor(private readonly make: (n: number) => T) {
    this.#current = make(BLOCK_VALUES);
  }
  push(value: number): void {
    if (this.#used === BLOCK_VALUES) {
      this.#blocks.push(this.#current);
      this.#current = this.make(BLOCK_VALUES);
      this.#used = 0;
    }
    this.#current[this.#used++] = value;
    this.length++;
  }
  /** The values as one exact-size array; the blocks are released. */
  finish(): T {
    const out = this.make(this.length);
    let at = 0;
    for (const block of this.#blocks) {
      out.set(block, at);
      at += block.length;
    }
    out.set(this.#current.subarray(0, this.#used), at);
    this.#blocks = [];
    this.#current = this.make(0);
    return out;
  }
}

export class GrowableFloat32 extends BlockArray<Float32Array> {
  constructor() {
    super((n) => new Float32Array(n));
  }
}

export class GrowableInt32 extends BlockArray<Int32Array> {
  constructor() {
    super((n) => new Int32Array(n));
  }
}

class GrowableFloat64 extends BlockArray<Float64Array> {
  constructor() {
    super((n) => new Float64Array(n));
  }
}

export interface NumericColumn {
  name: string;
  kind: "numeric";
  /** NaN = missing. */
  values: Float32Array;
  missing: number;
}

export interface CategoricalColumn {
  name: string;
  kind: "categorical";
  /** Index into vocabulary; missing values are the value "(missing)". */
  codes: Int32Array;
  vocabulary: string[];
  missing: number;
}

export type RawColumn = NumericColumn | CategoricalColumn;

export interface DroppedColumn {
  column: string;
  reason: string;
}

export interface BadRowReport {
  skipped: number;
  byKind: Partial<Record<BadRowKind, number>>;
  examples: string[];
}

/** Everything loaded from a source, before any split or scaling. */
export interface RawTable {
  format: FormatName;
  formatReason: string;
  files: string[];
  header: string[];
  rows: number;
  columns: RawColumn[];
  labelColumns: string[];
  /** Class per row; classNames[0] is normal. */
  labels: Int32Array;
  classNames: string[];
  /** Seconds (or file order when the source has no time column). */
  time: Float64Array | null;
  timeColumn: string | null;
  dropped: DroppedColumn[];
  /** Missing values per column (features and labels). */
  missing: Record<string, number>;
  badRows: BadRowReport;
}

export interface LoadOptions {
  format?: FormatChoice;
  /** Label column (required for generic CSV; overrides the format's default). */
  labelColumn?: string;
  /** Extra columns to drop. */
  drop?: string[];
  /** Identity columns to keep although the format drops them by default (e.g. SrcMac). */
  keep?: string[];
  /** The class name that means normal traffic, when it is not one of normal/benign/0. */
  normalLabel?: string;
  /** Zeek: a uid,label CSV. */
  labelsFile?: string;
  skipBadRows?: boolean;
  /** Stop after this many good rows (inspect on huge files, tests). */
  rowsMax?: number;
  lineCharsMax?: number;
}

/** Reads a file, directory or stream into a RawTable. */
export async function loadTable(input: DataInput, options: LoadOptions = {}): Promise<RawTable> {
  const source = await openRecordSource(input, {
    format: options.format,
    labelsFile: options.labelsFile,
    lineCharsMax: options.lineCharsMax,
  });
  return await loadFromSource(source, options);
}

interface Plan {
  labelIndexes: number[];
  labelColumns: string[];
  timeIndex: number;
  timeColumn: string | null;
  /** Header indexes of kept feature columns, decided after the type sample. */
  featureIndexes: number[];
  dropped: DroppedColumn[];
}

function plan(source: RecordSource, options: LoadOptions): Plan {
  const spec = FORMATS[source.format];
  const header = source.header;
  const file = source.files[0];
  for (const name of [...(options.drop ?? []), ...(options.keep ?? [])]) {
    if (!header.includes(name)) {
      throw new DataError(
        { file, line: 1, column: name },
        `no such column (columns: ${header.join(", ")})`,
      );
    }
  }
  let labelColumns: string[];
  if (options.labelColumn !== undefined) {
    if (!header.includes(options.labelColumn)) {
      throw new DataError(
        { file, line: 1, column: options.labelColumn },
        `label column not found (columns: ${header.join(", ")})`,
      );
    }
    labelColumns = [options.labelColumn];
  } else {
    labelColumns = spec.labelColumns.filter((name) => header.includes(name));
    if (labelColumns.length === 0) {
      const wanted = spec.labelColumns.length > 0
        ? spec.labelColumns.join(" or ")
        : "a label column (--label COL)";
      throw new DataError(
        { file, line: 1 },
        `${source.format}: no label column; expected ${wanted}`,
      );
    }
  }
  const drop = new Set(options.drop ?? []);
  const keep = new Set(options.keep ?? []);
  const dropped: DroppedColumn[] = [];
  const featureIndexes: number[] = [];
  let timeIndex = -1;
  let timeColumn: string | null = null;
  const declaredTime = [...source.declaredTypes].find(([, type]) => type === "time")?.[0];
  const timeName = spec.timeColumn && header.includes(spec.timeColumn)
    ? spec.timeColumn
    : declaredTime;
  header.forEach((name, i) => {
    if (labelColumns.includes(name)) return;
    if (name === timeName) {
      timeIndex = i;
      timeColumn = name;
    }
    if (spec.labelDerived.includes(name)) {
      dropped.push({ column: name, reason: "label-derived (another form of the label)" });
      return;
    }
    if (drop.has(name)) {
      dropped.push({ column: name, reason: "dropped with --drop" });
      return;
    }
    const identity = identityReason(spec, name);
    if (identity !== undefined && !keep.has(name)) {
      dropped.push({ column: name, reason: identity });
      return;
    }
    featureIndexes.push(i);
  });
  return {
    labelIndexes: labelColumns.map((name) => header.indexOf(name)),
    labelColumns,
    timeIndex,
    timeColumn,
    featureIndexes,
    dropped,
  };
}

function looksNumeric(value: string): boolean {
  return !Number.isNaN(Number(value));
}

function parseTime(value: string): number {
  if (isMissing(value)) return NaN;
  const n = Number(value);
  if (!Number.isNaN(n)) return n;
  return Date.parse(value) / 1000;
}

export async function loadFromSource(
  source: RecordSource,
  options: LoadOptions = {},
): Promise<RawTable> {
  const p = plan(source, options);
  const spec = FORMATS[source.format];
  const header = source.header;
  const width = header.length;
  const rowsMax = options.rowsMax ?? Number.MAX_SAFE_INTEGER;
  const iterator = source.batches()[Symbol.asyncIterator]();

  // Buffer a sample to decide column types, then replay it.
  const sample: { file: string; record: RawRecord }[] = [];
  const pending: { file: string; records: RawRecord[] }[] = [];
  while (sample.length < TYPE_SAMPLE_ROWS) {
    const step = await iterator.next();
    if (step.done) break;
    pending.push(step.value);
    for (const record of step.value.records) sample.push({ file: step.value.file, record });
  }
  if (sample.length === 0) {
    throw new DataError({ file: source.files[0] }, "no data rows after the header");
  }

  const kinds: ("numeric" | "categorical")[] = p.featureIndexes.map((index) => {
    const name = header[index];
    const declared: ColumnType | undefined = source.declaredTypes.get(name);
    // Ports name a service or a connection, not a quantity (Argus even prints some as names,
    // e.g. "dircproxy" deep inside WUSTL-EHMS's Sport column).
    if (declared === "categorical" || spec.categorical.includes(name) || PORT_NAME.test(name)) {
      return "categorical";
    }
    if (declared === "numeric") return "numeric";
    // Numeric unless text is more than a stray value: one bad cell in an otherwise numeric
    // column is a data error to report, not a reason to one-hot a measurement.
    let numbers = 0;
    let texts = 0;
    for (const { record } of sample) {
      if (record.fields.length !== width) continue;
      const value = record.fields[index];
      if (isMissing(value)) continue;
      if (looksNumeric(value)) numbers++;
      else texts++;
    }
    const straysMax = Math.max(1, Math.floor(0.01 * (numbers + texts)));
    return texts === 0 || (texts <= straysMax && numbers >= 10) ? "numeric" : "categorical";
  });
  const numericSlots: number[] = [];
  const categoricalSlots: number[] = [];
  kinds.forEach((kind, slot) => (kind === "numeric" ? numericSlots : categoricalSlots).push(slot));
  const numericStores = numericSlots.map(() => new GrowableFloat32());
  const numericMissing = numericSlots.map(() => 0);
  const categoricalStores = categoricalSlots.map(() => new GrowableInt32());
  const categoricalMissing = categoricalSlots.map(() => 0);
  const vocabularies = categoricalSlots.map(() => new Map<string, number>());
  const labels = new GrowableInt32();
  const labelCodes = new Map<string, number>();
  const labelNames: string[] = [];
  let labelMissing = 0;
  const time = p.timeIndex >= 0 ? new GrowableFloat64() : null;
  const badRows: BadRowReport = { skipped: 0, byKind: {}, examples: [] };
  const scratch = new Float64Array(numericSlots.length);
  let rows = 0;

  const fail = (error: BadRowError) => {
    if (!options.skipBadRows) throw error;
    badRows.skipped++;
    badRows.byKind[error.kind] = (badRows.byKind[error.kind] ?? 0) + 1;
    if (badRows.examples.length < BAD_ROW_EXAMPLES_MAX) badRows.examples.push(error.message);
  };

  const add = (file: string, record: RawRecord): void => {
    const fields = record.fields;
    if (fields[0] === BAD_JSON_MARK) {
      fail(new BadRowError({ file, line: record.line }, "bad-json", fields[1] ?? "not valid JSON"));
      return;
    }
    if (fields.length !== width) {
      fail(
        new BadRowError(
          { file, line: record.line },
          "ragged",
          `expected ${width} fields, found ${fields.length}`,
        ),
      );
      return;
    }
    // Validate the whole row before storing any of it, so a skipped row leaves no trace.
    let label = "";
    for (const index of p.labelIndexes) {
      const value = fields[index].trim();
      if (!isMissing(value)) {
        label = value;
        break;
      }
    }
    if (label === "") {
      labelMissing++;
      fail(
        new BadRowError(
          { file, line: record.line, column: p.labelColumns[0] },
          "missing-label",
          "missing label",
        ),
      );
      return;
    }
    for (let s = 0; s < numericSlots.length; s++) {
      const index = p.featureIndexes[numericSlots[s]];
      const value = fields[index];
      if (isMissing(value)) {
        scratch[s] = NaN;
        continue;
      }
      const parsed = Number(value);
      if (Number.isNaN(parsed)) {
        fail(
          new BadRowError(
            { file, line: record.line, column: header[index] },
            "non-numeric",
            `text ${JSON.stringify(value.slice(0, 40))} in a numeric column`,
          ),
        );
        return;
      }
      scratch[s] = parsed;
    }
    let code = labelCodes.get(label);
    if (code === undefined) {
      if (labelNames.length >= CLASSES_MAX) {
        throw new DataError(
          { file, line: record.line, column: p.labelColumns[0] },
          `more than ${CLASSES_MAX} distinct labels (is this really the label column?)`,
        );
      }
      code = labelNames.length;
      labelCodes.set(label, code);
      labelNames.push(label);
    }
    labels.push(code);
    for (let s = 0; s < numericSlots.length; s++) {
      const value = scratch[s];
      if (Number.isNaN(value)) numericMissing[s]++;
      numericStores[s].push(value);
    }
    for (let c = 0; c < categoricalSlots.length; c++) {
      let value = fields[p.featureIndexes[categoricalSlots[c]]].trim();
      if (isMissing(value)) {
        categoricalMissing[c]++;
        value = MISSING_VALUE;
      }
      const vocabulary = vocabularies[c];
      let valueCode = vocabulary.get(value);
      if (valueCode === undefined) {
        if (vocabulary.size < CATEGORY_VALUES_MAX) {
          valueCode = vocabulary.size;
          vocabulary.set(value, valueCode);
        } else {
          valueCode = vocabulary.get(OVERFLOW_VALUE);
          if (valueCode === undefined) {
            valueCode = vocabulary.size;
            vocabulary.set(OVERFLOW_VALUE, valueCode);
          }
        }
      }
      categoricalStores[c].push(valueCode);
    }
    if (time !== null) time.push(parseTime(fields[p.timeIndex]));
    rows++;
  };

  let done = false;
  for (const batch of pending) {
    for (const record of batch.records) {
      if (rows >= rowsMax) {
        done = true;
        break;
      }
      add(batch.file, record);
    }
    if (done) break;
  }
  while (!done) {
    const step = await iterator.next();
    if (step.done) break;
    for (const record of step.value.records) {
      if (rows >= rowsMax) {
        done = true;
        break;
      }
      add(step.value.file, record);
    }
  }
  if (done) await iterator.return?.();
  if (rows === 0) {
    throw new DataError(
      { file: source.files[0] },
      `no usable data rows (${badRows.skipped} bad rows skipped)`,
    );
  }

  // Normal first, then the attack classes in name order, so class indexes do not depend on
  // which class happens to come first in the file.
  const normal = labelNames.filter((name) => isNormalLabel(name, options.normalLabel));
  if (normal.length === 0) {
    throw new DataError(
      { file: source.files[0], column: p.labelColumns[0] },
      `no normal class among the labels (${
        labelNames.slice(0, 12).join(", ")
      }); name it with --normal-label`,
    );
  }
  const attacks = labelNames.filter((name) => !normal.includes(name)).sort();
  const classNames = [normal[0], ...attacks];
  const remap = new Int32Array(labelNames.length);
  labelNames.forEach((
    name,
    code,
  ) => (remap[code] = normal.includes(name) ? 0 : classNames.indexOf(name)));
  const labelArray = labels.finish();
  for (let r = 0; r < labelArray.length; r++) labelArray[r] = remap[labelArray[r]];

  const columns: RawColumn[] = [];
  const missing: Record<string, number> = {};
  kinds.forEach((kind, slot) => {
    const name = header[p.featureIndexes[slot]];
    if (kind === "numeric") {
      const s = numericSlots.indexOf(slot);
      columns.push({ name, kind, values: numericStores[s].finish(), missing: numericMissing[s] });
      missing[name] = numericMissing[s];
    } else {
      const c = categoricalSlots.indexOf(slot);
      columns.push({
        name,
        kind,
        codes: categoricalStores[c].finish(),
        vocabulary: [...vocabularies[c].keys()],
        missing: categoricalMissing[c],
      });
      missing[name] = categoricalMissing[c];
    }
  });
  missing[p.labelColumns[0]] = labelMissing;

  let timeArray = time?.finish() ?? null;
  if (timeArray && timeArray.every((t) => Number.isNaN(t))) timeArray = null;
  return {
    format: source.format,
    formatReason: source.formatReason,
    files: source.files,
    header,
    rows,
    columns,
    labelColumns: p.labelColumns,
    labels: labelArray,
    classNames,
    time: timeArray,
    timeColumn: timeArray ? p.timeColumn : null,
    dropped: p.dropped,
    missing,
    badRows,
  };
}
