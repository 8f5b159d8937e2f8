// A prepared data set as one binary file: `run` prepares the trial's data once and every device,
// validator and edge process of the trial loads the result instead of deriving it again (deriving
// it cost each of the 15 processes ~1 CPU-second at start on a 2-core machine).
//
// Layout (all integers little-endian):
//   "IOMTPREP"            8 bytes, magic
//   version               u32 (PREPARED_FILE_VERSION)
//   header length H       u32, <= PREPARED_HEADER_BYTES_MAX
//   header                H bytes of UTF-8 JSON (PreparedHeader), then zero padding to 4 bytes
//   sections              train, validation, test: features (f32, rows x features), labels (i32)
//   SHA-256               32 bytes over everything before it
// The header names the prepare options it was made for; a reader asking for other options gets
// an error instead of another trial's data.
import type { DataReport, PreparedDataset, PrepareOptions } from "./prepare.ts";
import { Preprocessor, type PreprocessorJson } from "./preprocess.ts";
import { assertLabeledMatrix, type LabeledMatrix } from "./types.ts";

export const PREPARED_FILE_VERSION = 1;
const MAGIC = new TextEncoder().encode("IOMTPREP");
const PREAMBLE_BYTES = MAGIC.length + 8;
const DIGEST_BYTES = 32;
export const PREPARED_HEADER_BYTES_MAX = 4 * 1024 * 1024;
/** 2 GiB minus a margin: a typed array of one section must fit a JS ArrayBuffer. */
export const PREPARED_FILE_BYTES_MAX = 2 ** 31 - 2 ** 20;
const SPLITS = ["train", "validation", "test"] as const;

interface PreparedHeader {
  /** Canonical JSON of the PrepareOptions this data was prepared with. */
  options: string;
  featureNames: string[];
  classNames: string[];
  rows: { train: number; validation: number; test: number };
  /** Training rows of each device, in order: the devices are consecutive slices of train. */
  deviceRows: number[];
  preprocessor: PreprocessorJson;
  report: DataReport;
}

/** Canonical JSON of prepare options (sorted keys, undefined dropped): what a file is made for. */
export function prepareOptionsKey(options: PrepareOptions): string {
  return canonical(options);
}

export async function encodePreparedDataset(
  data: PreparedDataset,
  options: PrepareOptions,
): Promise<Uint8Array> {
  assertLittleEndian();
  const width = data.train.featureNames.length;
  const header: PreparedHeader = {
    options: prepareOptionsKey(options),
    featureNames: [...data.train.featureNames],
    classNames: [...data.train.classNames],
    rows: { train: data.train.rows, validation: data.validation.rows, test: data.test.rows },
    deviceRows: data.devices.map((d) => d.rows),
    preprocessor: data.preprocessor.toJSON(),
    report: data.report,
  };
  let at = 0;
  for (const device of data.devices) {
    // The devices must be the training matrix's consecutive slices (prepareDataset builds them so).
    if (device.features.buffer !== data.train.features.buffer) {
      throw new Error("prepared data: device partitions are not views of the training matrix");
    }
    at += device.rows;
  }
  if (at !== data.train.rows) {
    throw new Error(`prepared data: devices hold ${at} rows, train has ${data.train.rows}`);
  }
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  if (headerBytes.length > PREPARED_HEADER_BYTES_MAX) {
    throw new Error(`prepared data: header of ${headerBytes.length} bytes is too large`);
  }
  const headerEnd = align4(PREAMBLE_BYTES + headerBytes.length);
  const total = headerEnd + sectionsBytes(header.rows, width) + DIGEST_BYTES;
  if (total > PREPARED_FILE_BYTES_MAX) {
    throw new Error(`prepared data: ${total} bytes is too large`);
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(MAGIC.length, PREPARED_FILE_VERSION, true);
  view.setUint32(MAGIC.length + 4, headerBytes.length, true);
  out.set(headerBytes, PREAMBLE_BYTES);
  let offset = headerEnd;
  for (const split of SPLITS) {
    const matrix = data[split];
    out.set(bytesOf(matrix.features), offset);
    offset += matrix.features.byteLength;
    out.set(bytesOf(matrix.labels), offset);
    offset += matrix.labels.byteLength;
  }
  out.set(await sha256(out.subarray(0, offset)), offset);
  return out;
}

/** Decodes and checks a prepared file; `options` must be the ones it was made for. */
export async function decodePreparedDataset(
  bytes: Uint8Array,
  options: PrepareOptions,
  where: string,
): Promise<PreparedDataset> {
  assertLittleEndian();
  const fail = (why: string): never => {
    throw new Error(`${where}: not a usable prepared data file: ${why}`);
  };
  if (bytes.length < PREAMBLE_BYTES + DIGEST_BYTES) fail(`${bytes.length} bytes is too short`);
  if (bytes.length > PREPARED_FILE_BYTES_MAX) fail(`${bytes.length} bytes is too large`);
  if (!MAGIC.every((b, i) => bytes[i] === b)) fail("wrong magic");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(MAGIC.length, true);
  if (version !== PREPARED_FILE_VERSION) {
    fail(`version ${version}, this program reads ${PREPARED_FILE_VERSION}`);
  }
  const digestAt = bytes.length - DIGEST_BYTES;
  const digest = await sha256(bytes.subarray(0, digestAt));
  if (!digest.every((b, i) => bytes[digestAt + i] === b)) fail("SHA-256 does not match (damaged)");
  const headerLength = view.getUint32(MAGIC.length + 4, true);
  if (headerLength > PREPARED_HEADER_BYTES_MAX || PREAMBLE_BYTES + headerLength > digestAt) {
    fail(`header length ${headerLength} out of bounds`);
  }
  let header: PreparedHeader;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength),
      ),
    );
  } catch (error) {
    return fail(`header is not JSON (${(error as Error).message})`);
  }
  const expected = prepareOptionsKey(options);
  if (header.options !== expected) {
    fail(`it was prepared for ${header.options}, this node's trial is ${expected}`);
  }
  const width = header.featureNames?.length ?? 0;
  if (width <= 0) fail("no feature names");
  for (const split of SPLITS) {
    const rows = header.rows?.[split];
    if (!Number.isSafeInteger(rows) || rows < 0) fail(`${split} row count ${rows}`);
  }
  const headerEnd = align4(PREAMBLE_BYTES + headerLength);
  if (headerEnd + sectionsBytes(header.rows, width) !== digestAt) {
    fail(
      `${digestAt - headerEnd} data bytes, the header's row counts need ${
        sectionsBytes(header.rows, width)
      }`,
    );
  }
  const deviceRows = header.deviceRows;
  if (
    !Array.isArray(deviceRows) ||
    deviceRows.some((n) => !Number.isSafeInteger(n) || n < 0) ||
    deviceRows.reduce((a, b) => a + b, 0) !== header.rows.train
  ) {
    fail("device row counts do not add up to the training rows");
  }
  const preprocessor = Preprocessor.fromJSON(header.preprocessor);
  if (preprocessor.featureNames.join("\u0000") !== header.featureNames.join("\u0000")) {
    fail("feature names differ from the preprocessor's");
  }
  const matrices: Record<string, LabeledMatrix> = {};
  let offset = headerEnd;
  for (const split of SPLITS) {
    const rows = header.rows[split];
    // Copies: a section need not be aligned for a typed-array view of the file's buffer (and a
    // Node Buffer's slice() is a view of a shared pool, not a copy).
    const features = new Float32Array(rows * width);
    bytesOf(features).set(bytes.subarray(offset, offset + features.byteLength));
    offset += features.byteLength;
    const labels = new Int32Array(rows);
    bytesOf(labels).set(bytes.subarray(offset, offset + labels.byteLength));
    offset += labels.byteLength;
    const matrix: LabeledMatrix = {
      featureNames: preprocessor.featureNames,
      classNames: preprocessor.classNames,
      rows,
      features,
      labels,
    };
    if (rows > 0) assertLabeledMatrix(matrix, `${where}: ${split}`);
    matrices[split] = matrix;
  }
  const train = matrices.train;
  const devices: LabeledMatrix[] = [];
  let at = 0;
  for (const rows of deviceRows) {
    devices.push({
      featureNames: train.featureNames,
      classNames: train.classNames,
      rows,
      features: train.features.subarray(at * width, (at + rows) * width),
      labels: train.labels.subarray(at, at + rows),
    });
    at += rows;
  }
  return {
    train,
    validation: matrices.validation,
    test: matrices.test,
    devices,
    preprocessor,
    report: header.report,
  };
}

function sectionsBytes(rows: PreparedHeader["rows"], width: number): number {
  return SPLITS.reduce((sum, split) => sum + rows[split] * (width + 1) * 4, 0);
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function bytesOf(array: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
}

function assertLittleEndian(): void {
  // Sections are written and read as the platform's typed arrays.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error("prepared data files need a little-endian platform");
  }
}

function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
}
