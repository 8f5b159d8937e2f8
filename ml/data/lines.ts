// Streaming text input with bounded memory: bytes -> UTF-8 text -> batches of lines, and CSV
// records (quoted fields, CRLF, newlines inside quotes) on top. Memory is bounded by the chunk
// size plus the longest allowed line; a longer line is an error, not an allocation.
import { open } from "node:fs/promises";
import { DataError } from "./errors.ts";

/** Longest line (or CSV record spanning lines) accepted, in UTF-16 code units. */
export const LINE_CHARS_MAX = 1 << 20;
const READ_CHUNK_BYTES = 1 << 18;

/** Where text comes from: a file, a byte stream (stdin), or lines already split. */
export type TextInput =
  | { path: string }
  | { stream: ReadableStream<Uint8Array>; name?: string }
  | { lines: AsyncIterable<string> | Iterable<string>; name?: string };

export function inputName(input: TextInput): string {
  if ("path" in input) return input.path;
  return input.name ?? ("stream" in input ? "<stdin>" : "<lines>");
}

/** A batch of consecutive lines; line numbers are 1-based, firstLine is that of lines[0]. */
export interface LineBatch {
  lines: string[];
  firstLine: number;
}

export interface LineOptions {
  lineCharsMax?: number;
}

async function* byteChunks(input: TextInput): AsyncIterable<Uint8Array> {
  if ("path" in input) {
    // Plain positional reads into one reused buffer: fewer layers than a node stream, and the
    // decoder copies the bytes out before the next read overwrites them.
    const handle = await open(input.path, "r");
    const buffer = new Uint8Array(READ_CHUNK_BYTES);
    try {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) return;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await handle.close();
    }
  }
  if ("stream" in input) {
    const reader = input.stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
}

/** Splits the input into batches of lines without their line terminators (\n or \r\n). */
export async function* readLineBatches(
  input: TextInput,
  options: LineOptions = {},
): AsyncIterable<LineBatch> {
  const file = inputName(input);
  const lineCharsMax = options.lineCharsMax ?? LINE_CHARS_MAX;
  let lineNumber = 1;
  if ("lines" in input) {
    let batch: string[] = [];
    let first = 1;
    for await (const raw of input.lines as AsyncIterable<string>) {
      const line = stripEol(raw);
      if (line.length > lineCharsMax) tooLong(file, lineNumber, lineCharsMax);
      checkText(line, file, lineNumber);
      batch.push(line);
      lineNumber++;
      if (batch.length >= 1024) {
        yield { lines: batch, firstLine: first };
        batch = [];
        first = lineNumber;
      }
    }
    if (batch.length > 0) yield { lines: batch, firstLine: first };
    return;
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pending = "";
  const decode = (bytes: Uint8Array | undefined, done: boolean): string => {
    try {
      return done ? decoder.decode() : decoder.decode(bytes, { stream: true });
    } catch {
      // Find the line of the first bad byte: decode leniently and count newlines before it.
      const lenient = pending + (bytes ? new TextDecoder("utf-8").decode(bytes) : "");
      const bad = lenient.indexOf("\uFFFD");
      const line = lineNumber + countNewlines(lenient.slice(0, bad < 0 ? lenient.length : bad));
      throw new DataError({ file, line }, "not UTF-8 text (binary data?)");
    }
  };
  const split = function* (text: string, done: boolean): Iterable<LineBatch> {
    pending += text;
    const lines: string[] = [];
    const first = lineNumber;
    let start = 0;
    for (;;) {
      const end = pending.indexOf("\n", start);
      if (end < 0) break;
      const line = pending.charCodeAt(end - 1) === 13 && end > start
        ? pending.slice(start, end - 1)
        : pending.slice(start, end);
      if (line.length > lineCharsMax) tooLong(file, lineNumber, lineCharsMax);
      checkText(line, file, lineNumber);
      lines.push(line);
      lineNumber++;
      start = end + 1;
    }
    pending = pending.slice(start);
    if (pending.length > lineCharsMax) tooLong(file, lineNumber, lineCharsMax);
    if (done && pending.length > 0) {
      const line = stripEol(pending);
      checkText(line, file, lineNumber);
      lines.push(line);
      lineNumber++;
      pending = "";
    }
    if (lines.length > 0) yield { lines, firstLine: first };
  };
  for await (const chunk of byteChunks(input)) {
    yield* split(decode(chunk, false), false);
  }
  yield* split(decode(undefined, true), true);
}

function stripEol(line: string): string {
  let end = line.length;
  if (end > 0 && line.charCodeAt(end - 1) === 10) end--;
  if (end > 0 && line.charCodeAt(end - 1) === 13) end--;
  return end === line.length ? line : line.slice(0, end);
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

function tooLong(file: string, line: number, max: number): never {
  throw new DataError(
    { file, line },
    `line longer than ${max} characters (binary data or wrong format?)`,
  );
}

function checkText(line: string, file: string, lineNumber: number): void {
  // NUL never occurs in the text formats we read; it is the surest sign of a binary file.
  if (line.indexOf("\u0000") >= 0) {
    throw new DataError({ file, line: lineNumber }, "contains NUL bytes (binary data, not text)");
  }
}

/** One CSV record: its fields and the line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/** Turns line batches into CSV records. Fields are returned verbatim (quotes removed). */
export async function* readCsvRecords(
  batches: AsyncIterable<LineBatch>,
  file: string,
  options: { delimiter?: string; recordCharsMax?: number } = {},
): AsyncIterable<CsvRecord[]> {
  const delimiter = options.delimiter ?? ",";
  const recordCharsMax = options.recordCharsMax ?? LINE_CHARS_MAX;
  let carry: string | null = null; // an unfinished quoted record
  let carryLine = 0;
  for await (const batch of batches) {
    const out: CsvRecord[] = [];
    for (let i = 0; i < batch.lines.length; i++) {
      const line = batch.lines[i];
      const lineNumber = batch.firstLine + i;
      if (carry !== null) {
        carry += "\n" + line;
        if (carry.length > recordCharsMax) {
          throw new DataError(
            { file, line: carryLine },
            `unterminated quoted field (record longer than ${recordCharsMax} characters)`,
          );
        }
        const fields = parseQuoted(carry, delimiter);
        if (fields) {
          out.push({ fields, line: carryLine });
          carry = null;
        }
        continue;
      }
      if (line.indexOf('"') < 0) {
        out.push({ fields: line.split(delimiter), line: lineNumber });
        continue;
      }
      const fields = parseQuoted(line, delimiter);
      if (fields) out.push({ fields, line: lineNumber });
      else {
        carry = line;
        carryLine = lineNumber;
      }
    }
    if (out.length > 0) yield out;
  }
  if (carry !== null) {
    throw new DataError({ file, line: carryLine }, "unterminated quoted field at end of file");
  }
}

/** Parses one record with quotes; null when a quoted field is still open at the end. */
function parseQuoted(text: string, delimiter: string): string[] | null {
  const fields: string[] = [];
  let field = "";
  let i = 0;
  const n = text.length;
  for (;;) {
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) return null;
        const q = text.indexOf('"', i);
        if (q < 0) return null;
        field += text.slice(i, q);
        if (text[q + 1] === '"') {
          field += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      // Text after a closing quote up to the delimiter is kept as is (lenient, like most readers).
      const next = text.indexOf(delimiter, i);
      const end = next < 0 ? n : next;
      field += text.slice(i, end);
      fields.push(field);
      field = "";
      if (next < 0) return fields;
      i = next + delimiter.length;
    } else {
      const next = text.indexOf(delimiter, i);
      if (next < 0) {
        fields.push(text.slice(i));
        return fields;
      }
      fields.push(text.slice(i, next));
      i = next + delimiter.length;
    }
  }
}
