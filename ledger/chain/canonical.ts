// RFC 8785 (JSON Canonicalization Scheme) restricted to the values a ledger hashes: null,
// booleans, strings, safe integers, arrays and plain objects. No floating-point numbers: a
// fractional quantity is written as an integer scaled by 10^6 in a field named `*_e6`, so the
// number serialization of RFC 8785 §3.2.2.3 reduces to plain decimal digits and every verifier,
// in any language, produces the same bytes.
import { sha256Bytes, sha256Hex } from "../crypto/sha256.ts";

export type CanonicalValue =
  | null
  | boolean
  | number
  | string
  | CanonicalValue[]
  | { [key: string]: CanonicalValue };

/** Deepest nesting accepted; ledger objects need 5, this leaves room for `meta`. */
export const CANONICAL_DEPTH_MAX = 16;

export class CanonicalError extends Error {
  override name = "CanonicalError";
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Canonical JSON text. Object members are sorted by their keys as arrays of UTF-16 code units
 * (RFC 8785 §3.2.3); members whose value is `undefined` are omitted, as in JSON.stringify.
 * Throws CanonicalError, naming the path, for floats, unsafe integers, lone surrogates, non-plain
 * objects and anything else JSON cannot carry exactly.
 */
export function canonicalize(value: unknown): string {
  // Fast path without the error paths (building "$.txs[3].body" for every node cost more than
  // the encoding); on any problem the precise writer runs again to say where.
  try {
    return writeFast(value, 0);
  } catch (error) {
    if (!(error instanceof NotFast)) throw error;
    return write(value, "$", 0);
  }
}

class NotFast extends Error {}
const NOT_FAST = new NotFast("not encodable on the fast path");
/** Printable ASCII except `"` and `\`: written between quotes unchanged. */
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function writeFast(value: unknown, depth: number): string {
  if (depth > CANONICAL_DEPTH_MAX) throw NOT_FAST;
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value)) throw NOT_FAST;
      return Object.is(value, -0) ? "0" : String(value);
    case "string":
      return writeStringFast(value);
    case "object":
      break;
    default:
      throw NOT_FAST;
  }
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (item === undefined) throw NOT_FAST;
      if (i > 0) out += ",";
      out += writeFast(item, depth + 1);
    }
    return out + "]";
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw NOT_FAST;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    const member = record[key];
    if (member === undefined) continue;
    if (!first) out += ",";
    first = false;
    out += writeStringFast(key) + ":" + writeFast(member, depth + 1);
  }
  return out + "}";
}

function writeStringFast(value: string): string {
  if (PLAIN_STRING.test(value)) return '"' + value + '"';
  if (!value.isWellFormed()) throw NOT_FAST;
  return JSON.stringify(value);
}

/** UTF-8 bytes of the canonical text: what is hashed and signed. */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value));
}

export function canonicalHash(value: unknown): string {
  return sha256Hex(canonicalBytes(value));
}

export function canonicalHashBytes(value: unknown): Uint8Array {
  return sha256Bytes(canonicalBytes(value));
}

/**
 * Parses bytes that must already be canonical: strict UTF-8, valid JSON, and re-encoding gives
 * the same bytes. Rejects whitespace, other key orders, duplicate keys, `1.0`, `1e3`, escapes
 * like `\u0041` and integers beyond 2^53 - 1, so one value has exactly one encoding.
 */
export function parseCanonical(input: Uint8Array | string, bytesMax: number): CanonicalValue {
  const length = typeof input === "string" ? encoder.encode(input).length : input.length;
  if (length > bytesMax) {
    throw new CanonicalError(`encoded value is ${length} bytes, limit ${bytesMax}`);
  }
  let text: string;
  try {
    text = typeof input === "string" ? input : strictDecoder.decode(input);
  } catch {
    throw new CanonicalError("not valid UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CanonicalError(`not JSON: ${(error as Error).message}`);
  }
  const again = canonicalize(parsed);
  if (again !== text) throw new CanonicalError("not in canonical form (RFC 8785, integers only)");
  return parsed as CanonicalValue;
}

function write(value: unknown, path: string, depth: number): string {
  if (depth > CANONICAL_DEPTH_MAX) {
    throw new CanonicalError(`${path}: nested deeper than ${CANONICAL_DEPTH_MAX}`);
  }
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value)) {
        throw new CanonicalError(
          `${path}: ${value} is not an integer in ±(2^53-1); scale fractions to an integer *_e6 field`,
        );
      }
      return Object.is(value, -0) ? "0" : String(value);
    case "string":
      return writeString(value, path);
    case "object":
      break;
    default:
      throw new CanonicalError(`${path}: ${typeof value} cannot be encoded`);
  }
  if (Array.isArray(value)) {
    const items = value.map((item, index) => {
      if (item === undefined) throw new CanonicalError(`${path}[${index}]: undefined in an array`);
      return write(item, `${path}[${index}]`, depth + 1);
    });
    return `[${items.join(",")}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new CanonicalError(
      `${path}: only plain objects can be encoded (got ${proto?.constructor?.name})`,
    );
  }
  const record = value as Record<string, unknown>;
  // Default sort compares UTF-16 code units, which is exactly RFC 8785's order.
  const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort();
  const members = keys.map((key) =>
    `${writeString(key, `${path}{key}`)}:${write(record[key], `${path}.${key}`, depth + 1)}`
  );
  return `{${members.join(",")}}`;
}

// RFC 8785 §3.2.2.2 is ECMAScript's JSON.stringify for strings: escape `"`, `\`, and U+0000..U+001F
// (\b \t \n \f \r by name, others as \u00xx lowercase); everything else literal. Lone surrogates
// have no UTF-8 encoding, so they are an error rather than an escape.
function writeString(value: string, path: string): string {
  if (!value.isWellFormed()) {
    throw new CanonicalError(`${path}: string contains a lone surrogate`);
  }
  return JSON.stringify(value);
}
