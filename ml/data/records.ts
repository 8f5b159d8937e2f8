// Raw records from any supported source: a header (column names) and batches of string fields
// aligned to it, each with its file and line. One pass, bounded memory. The same reader feeds
// training (via table.ts) and detection (via stream.ts), so both see identical parsing.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BadRowError, DataError } from "./errors.ts";
import {
  ciciomtClassFromFileName,
  detectCsvFormat,
  type FormatChoice,
  type FormatName,
} from "./formats.ts";
import {
  inputName,
  type LineBatch,
  readCsvRecords,
  readLineBatches,
  type TextInput,
} from "./lines.ts";

export type ColumnType = "numeric" | "categorical" | "time";

export interface RawRecord {
  fields: string[];
  line: number;
}

export interface RecordBatch {
  file: string;
  records: RawRecord[];
}

export interface RecordSource {
  format: FormatName;
  /** Why this format was chosen (printed by `data inspect`). */
  formatReason: string;
  files: string[];
  header: string[];
  /** Column types declared by the source itself (Zeek #types); others are inferred. */
  declaredTypes: Map<string, ColumnType>;
  /** Single pass over all records. */
  batches(): AsyncIterable<RecordBatch>;
}

export interface OpenOptions {
  format?: FormatChoice;
  /** Zeek: a CSV with columns uid,label[,detailed-label] giving each connection's class. */
  labelsFile?: string;
  lineCharsMax?: number;
}

/** A file, a directory of files (CICIoMT2024 style), stdin as bytes, or lines. */
export type DataInput = TextInput | { directory: string };

const DIRECTORY_FILES_MAX = 10_000;
const ZEEK_HEADER_LINES_MAX = 64;
const LABEL_FILE_ENTRIES_MAX = 20_000_000;

/** Opens a source and reads its header; the records are read when batches() is iterated. */
export async function openRecordSource(
  input: DataInput,
  options: OpenOptions = {},
): Promise<RecordSource> {
  if ("path" in input) {
    let stat;
    try {
      stat = statSync(input.path);
    } catch {
      throw new DataError({ file: input.path }, "no such file or directory");
    }
    if (stat.isDirectory()) return await openDirectory(input.path, options);
  }
  if ("directory" in input) return await openDirectory(input.directory, options);
  return await openSingle(input as TextInput, options);
}

async function openDirectory(directory: string, options: OpenOptions): Promise<RecordSource> {
  const names = readdirSync(directory)
    .filter((name) => /\.(csv|log|tsv|json|jsonl)$/i.test(name))
    .filter((name) => statSync(join(directory, name)).isFile())
    .sort();
  if (names.length === 0) {
    throw new DataError({ file: directory }, "directory has no .csv/.log/.json files");
  }
  if (names.length > DIRECTORY_FILES_MAX) {
    throw new DataError({ file: directory }, `more than ${DIRECTORY_FILES_MAX} files`);
  }
  const sources: RecordSource[] = [];
  for (const name of names) {
    sources.push(await openSingle({ path: join(directory, name) }, options));
  }
  const first = sources[0];
  for (const source of sources.slice(1)) {
    const file = source.files[0];
    if (source.format !== first.format) {
      throw new DataError(
        { file, line: 1 },
        `mixed formats in ${directory}: ${source.format} here, ${first.format} in ${
          first.files[0]
        }`,
      );
    }
    const width = Math.max(source.header.length, first.header.length);
    for (let i = 0; i < width; i++) {
      if (source.header[i] !== first.header[i]) {
        throw new DataError(
          { file, line: 1, column: source.header[i] ?? `#${i + 1}` },
          `mixed schemas in ${directory}: column ${i + 1} is "${
            source.header[i] ?? "(none)"
          }" here but "${first.header[i] ?? "(none)"}" in ${first.files[0]}`,
        );
      }
    }
  }
  return {
    format: first.format,
    formatReason: `${first.formatReason}; ${sources.length} files with the same columns`,
    files: sources.flatMap((source) => source.files),
    header: first.header,
    declaredTypes: first.declaredTypes,
    async *batches() {
      for (const source of sources) yield* source.batches();
    },
  };
}

/** Pulls line batches one at a time so the header can be read before the records. */
class LineCursor {
  #iterator: AsyncIterator<LineBatch>;
  #batch: LineBatch | null = null;
  #index = 0;
  constructor(batches: AsyncIterable<LineBatch>) {
    this.#iterator = batches[Symbol.asyncIterator]();
  }
  async next(): Promise<{ line: string; number: number } | null> {
    while (this.#batch === null || this.#index >= this.#batch.lines.length) {
      const step = await this.#iterator.next();
      if (step.done) return null;
      this.#batch = step.value;
      this.#index = 0;
    }
    const number = this.#batch.firstLine + this.#index;
    return { line: this.#batch.lines[this.#index++], number };
  }
  /** The rest of the lines, starting with those not yet taken from the current batch. */
  async *rest(): AsyncIterable<LineBatch> {
    if (this.#batch && this.#index < this.#batch.lines.length) {
      yield {
        lines: this.#batch.lines.slice(this.#index),
        firstLine: this.#batch.firstLine + this.#index,
      };
    }
    this.#batch = null;
    for (;;) {
      const step = await this.#iterator.next();
      if (step.done) return;
      yield step.value;
    }
  }
}

async function openSingle(input: TextInput, options: OpenOptions): Promise<RecordSource> {
  const file = inputName(input);
  const cursor = new LineCursor(readLineBatches(input, { lineCharsMax: options.lineCharsMax }));
  let first = await cursor.next();
  while (first !== null && first.line.trim() === "") first = await cursor.next();
  if (first === null) throw new DataError({ file }, "file is empty (no header line)");
  const text = first.line.replace(/^\uFEFF/, "");
  const wanted = options.format ?? "auto";
  if (text.startsWith("#separator") || (wanted === "zeek-conn" && text.startsWith("#"))) {
    return await openZeekTsv(file, text, first.number, cursor, options);
  }
  if (text.trimStart().startsWith("{")) {
    if (wanted !== "auto" && wanted !== "zeek-conn") {
      throw new DataError({ file, line: first.number }, `looks like JSON lines, not ${wanted} CSV`);
    }
    return await openJsonLines(file, text, first.number, cursor, options);
  }
  // CSV: the header is one line (no quoted newlines in column names).
  const headerFields = (await firstRecord(text, file, first.number)).map((name) => name.trim());
  checkHeader(headerFields, file, first.number);
  const detected = detectCsvFormat(headerFields);
  let format: FormatName;
  let reason: string;
  if (wanted === "auto") {
    if (detected === null) {
      format = "generic";
      reason =
        "no known format matched the header; generic CSV (give the label column with --label)";
    } else {
      format = detected.format;
      reason = `detected: ${detected.reason}`;
    }
  } else {
    format = wanted;
    reason = "chosen with --format";
  }
  const header = [...headerFields];
  let fileClass: string | null = null;
  if (format === "ciciomt2024" && !header.includes("label")) {
    fileClass = ciciomtClassFromFileName(file);
    if (fileClass === null) {
      throw new DataError(
        { file },
        "CICIoMT2024: cannot tell the class from the file name (e.g. Benign_train.pcap.csv)",
      );
    }
    header.push("file_class");
  }
  const width = headerFields.length;
  const startLine = first.number + 1;
  return {
    format,
    formatReason: reason,
    files: [file],
    header,
    declaredTypes: new Map(),
    async *batches() {
      const lines = cursor.rest();
      for await (
        const records of readCsvRecords(lines, file, { recordCharsMax: options.lineCharsMax })
      ) {
        const out: RawRecord[] = [];
        for (const record of records) {
          if (record.line < startLine) continue;
          // Blank lines (often a trailing one) are not records.
          if (record.fields.length === 1 && record.fields[0].trim() === "") continue;
          if (fileClass !== null && record.fields.length === width) record.fields.push(fileClass);
          out.push(record);
        }
        if (out.length > 0) yield { file, records: out };
      }
    },
  };
}

async function firstRecord(text: string, file: string, line: number): Promise<string[]> {
  for await (const records of readCsvRecords(oneBatch([text], line), file)) {
    return records[0].fields;
  }
  throw new DataError({ file, line }, "cannot read the header");
}

async function* oneBatch(lines: string[], firstLine: number): AsyncIterable<LineBatch> {
  yield { lines, firstLine };
}

function checkHeader(header: string[], file: string, line: number): void {
  const seen = new Set<string>();
  for (let i = 0; i < header.length; i++) {
    const name = header[i];
    if (name === "") {
      throw new DataError({ file, line, column: `#${i + 1}` }, "empty column name in the header");
    }
    if (seen.has(name)) {
      throw new DataError({ file, line, column: name }, "duplicate column name in the header");
    }
    seen.add(name);
  }
  if (header.length < 2) {
    throw new DataError({ file, line }, "header has fewer than two columns (not a CSV?)");
  }
}

function zeekType(type: string): ColumnType {
  if (type === "time") return "time";
  if (/^(count|int|double|interval)$/.test(type)) return "numeric";
  return "categorical";
}

async function openZeekTsv(
  file: string,
  firstLine: string,
  firstNumber: number,
  cursor: LineCursor,
  options: OpenOptions,
): Promise<RecordSource> {
  let separator = "\t";
  let unset = "-";
  let empty = "(empty)";
  let fields: string[] | null = null;
  let types: string[] | null = null;
  let line: { line: string; number: number } | null = { line: firstLine, number: firstNumber };
  let headerLines = 0;
  // Header directives come first; the first non-# line is data.
  const pendingData: { line: string; number: number }[] = [];
  while (line !== null) {
    if (!line.line.startsWith("#")) {
      pendingData.push(line);
      break;
    }
    if (++headerLines > ZEEK_HEADER_LINES_MAX) {
      throw new DataError(
        { file, line: line.number },
        `more than ${ZEEK_HEADER_LINES_MAX} header lines`,
      );
    }
    const text = line.line;
    if (text.startsWith("#separator")) {
      const raw = text.slice("#separator".length).trim();
      separator = raw.replace(
        /\\x([0-9a-fA-F]{2})/g,
        (_, hex) => String.fromCharCode(parseInt(hex, 16)),
      );
    } else {
      const parts = splitZeek(text, separator);
      const key = parts[0];
      if (key === "#unset_field") unset = parts[1] ?? unset;
      else if (key === "#empty_field") empty = parts[1] ?? empty;
      else if (key === "#fields") fields = splitSpaces(parts.slice(1));
      else if (key === "#types") types = splitSpaces(parts.slice(1));
    }
    line = await cursor.next();
  }
  if (fields === null) throw new DataError({ file }, "Zeek log without a #fields header line");
  checkHeader(fields, file, 1);
  const declaredTypes = new Map<string, ColumnType>();
  if (types !== null) {
    if (types.length !== fields.length) {
      throw new DataError(
        { file },
        `#types has ${types.length} entries but #fields has ${fields.length}`,
      );
    }
    fields.forEach((name, i) => declaredTypes.set(name, zeekType(types![i])));
  }
  const header = [...fields];
  const labels = options.labelsFile ? await readLabelsFile(options.labelsFile, header) : null;
  const uidIndex = header.indexOf("uid");
  if (labels && uidIndex < 0) {
    throw new DataError({ file }, "a labels file needs a uid column in the log");
  }
  if (labels) header.push(...labels.columns);
  const width = fields.length;
  const convert = (record: RawRecord): RawRecord | null => {
    if (record.fields.length === 1 && record.fields[0] === "") return null;
    let parts = record.fields;
    if (parts.length < width) parts = splitSpaces(parts);
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === unset || parts[i] === empty) parts[i] = "";
    }
    if (labels && parts.length === width) {
      const found = labels.byUid.get(parts[uidIndex]);
      for (let c = 0; c < labels.columns.length; c++) parts.push(found ? found[c] : "");
    }
    return { fields: parts, line: record.line };
  };
  return {
    format: "zeek-conn",
    formatReason: options.format === "zeek-conn"
      ? "chosen with --format"
      : "detected: Zeek #separator/#fields header",
    files: [file],
    header,
    declaredTypes,
    async *batches() {
      const first = pendingData.map((entry) =>
        convert({ fields: splitZeek(entry.line, separator), line: entry.number })
      )
        .filter((r): r is RawRecord => r !== null);
      if (first.length > 0) yield { file, records: first };
      for await (const batch of cursor.rest()) {
        const out: RawRecord[] = [];
        for (let i = 0; i < batch.lines.length; i++) {
          const text = batch.lines[i];
          if (text.startsWith("#")) continue; // #close and friends
          const record = convert({ fields: splitZeek(text, separator), line: batch.firstLine + i });
          if (record) out.push(record);
        }
        if (out.length > 0) yield { file, records: out };
      }
    },
  };
}

function splitZeek(text: string, separator: string): string[] {
  return text.split(separator);
}

/** IoT-23 writes "tunnel_parents   label   detailed-label" with spaces instead of tabs. */
function splitSpaces(parts: string[]): string[] {
  const out: string[] = [];
  for (const part of parts) {
    if (part.includes("   ")) out.push(...part.split(/ {3,}/));
    else out.push(part);
  }
  return out;
}

async function readLabelsFile(
  path: string,
  logHeader: string[],
): Promise<{ columns: string[]; byUid: Map<string, string[]> }> {
  const source = await openSingle({ path }, { format: "generic" });
  const uid = source.header.indexOf("uid");
  if (uid < 0) {
    throw new DataError({ file: path, line: 1, column: "uid" }, "labels file has no uid column");
  }
  const columns = source.header.filter((_, i) => i !== uid);
  if (columns.length === 0) {
    throw new DataError({ file: path, line: 1 }, "labels file has no label column");
  }
  for (const column of columns) {
    if (logHeader.includes(column)) {
      throw new DataError(
        { file: path, line: 1, column },
        "the log already has this column; drop the labels file or rename the column",
      );
    }
  }
  const byUid = new Map<string, string[]>();
  for await (const batch of source.batches()) {
    for (const record of batch.records) {
      if (record.fields.length !== source.header.length) {
        throw new DataError(
          { file: path, line: record.line },
          `expected ${source.header.length} fields, found ${record.fields.length}`,
        );
      }
      if (byUid.size >= LABEL_FILE_ENTRIES_MAX) {
        throw new DataError(
          { file: path, line: record.line },
          `more than ${LABEL_FILE_ENTRIES_MAX} labels`,
        );
      }
      byUid.set(record.fields[uid], record.fields.filter((_, i) => i !== uid).map((v) => v.trim()));
    }
  }
  return { columns, byUid };
}

async function openJsonLines(
  file: string,
  firstText: string,
  firstNumber: number,
  cursor: LineCursor,
  options: OpenOptions,
): Promise<RecordSource> {
  let first: Record<string, unknown>;
  try {
    first = JSON.parse(firstText);
  } catch {
    throw new DataError({ file, line: firstNumber }, "not valid JSON");
  }
  if (first === null || typeof first !== "object" || Array.isArray(first)) {
    throw new DataError({ file, line: firstNumber }, "expected a JSON object per line");
  }
  // The columns are the first record's keys; Zeek omits unset fields, so later records may
  // lack some (missing) or add others (label columns are kept, any other key is ignored).
  const header = Object.keys(first);
  for (const extra of ["label", "detailed-label"]) if (!header.includes(extra)) header.push(extra);
  const labels = options.labelsFile ? await readLabelsFile(options.labelsFile, header) : null;
  if (labels) header.push(...labels.columns);
  const index = new Map(header.map((name, i) => [name, i]));
  const declaredTypes = new Map<string, ColumnType>([["ts", "time"]]);
  const convert = (text: string, line: number): RawRecord | null => {
    if (text.trim() === "") return null;
    let object: unknown;
    try {
      object = JSON.parse(text);
    } catch {
      throw new BadRowError({ file, line }, "bad-json", "not valid JSON");
    }
    if (object === null || typeof object !== "object" || Array.isArray(object)) {
      throw new BadRowError({ file, line }, "bad-json", "expected a JSON object");
    }
    const fields = new Array<string>(header.length).fill("");
    for (const [key, value] of Object.entries(object as Record<string, unknown>)) {
      const i = index.get(key);
      if (i === undefined) continue;
      fields[i] = jsonValue(value);
    }
    if (labels) {
      const found = labels.byUid.get(fields[index.get("uid") ?? -1] ?? "");
      const base = header.length - labels.columns.length;
      for (let c = 0; c < labels.columns.length; c++) fields[base + c] = found ? found[c] : "";
    }
    for (let i = 0; i < fields.length; i++) {
      if (fields[i] === "-" || fields[i] === "(empty)") fields[i] = "";
    }
    return { fields, line };
  };
  return {
    format: "zeek-conn",
    formatReason: options.format === "zeek-conn"
      ? "chosen with --format"
      : "detected: JSON lines (Zeek conn.log)",
    files: [file],
    header,
    declaredTypes,
    async *batches() {
      // A bad first line was already rejected above; later bad lines may be skipped.
      yield { file, records: [convert(firstText, firstNumber)!] };
      for await (const batch of cursor.rest()) {
        const out: RawRecord[] = [];
        for (let i = 0; i < batch.lines.length; i++) {
          let record: RawRecord | null;
          try {
            record = convert(batch.lines[i], batch.firstLine + i);
          } catch (error) {
            // Keep the bad line as a one-field record: the table layer decides skip or fail.
            if (error instanceof BadRowError) {
              record = { fields: [BAD_JSON_MARK, error.reason], line: batch.firstLine + i };
            } else throw error;
          }
          if (record) out.push(record);
        }
        if (out.length > 0) yield { file, records: out };
      }
    },
  };
}

/** Marks a record that could not be parsed as JSON (see openJsonLines). */
export const BAD_JSON_MARK = "\u0000bad-json";

function jsonValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "T" : "F";
  if (Array.isArray(value)) return value.length === 0 ? "" : value.map(jsonValue).join(",");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
