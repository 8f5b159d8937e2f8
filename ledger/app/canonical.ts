// Canonical JSON for hashed ledger objects: RFC 8785 restricted to integers (no floats may reach
// the ledger, so number serialization has one form on every runtime), keys sorted by UTF-16 code
// units, no whitespace. Anything else (undefined, floats, typed arrays, -0) is a bug: throw.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

export type Canonical =
  | null
  | boolean
  | number
  | string
  | readonly Canonical[]
  | { readonly [key: string]: Canonical };

export function canonicalJson(value: unknown): string {
  return encode(value, "$");
}

export function canonicalHash(value: unknown): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(value))));
}

function encode(value: unknown, path: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isSafeInteger(value)) {
        throw new Error(`canonical: ${path} is not a safe integer: ${value}`);
      }
      if (Object.is(value, -0)) throw new Error(`canonical: ${path} is -0`);
      return String(value);
    case "object": {
      if (Array.isArray(value)) {
        return "[" + value.map((v, i) => encode(v, `${path}[${i}]`)).join(",") + "]";
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) {
        throw new Error(`canonical: ${path} is not a plain object`);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      return "{" +
        keys.map((k) => JSON.stringify(k) + ":" + encode(record[k], `${path}.${k}`)).join(",") +
        "}";
    }
    default:
      throw new Error(`canonical: ${path} has unsupported type ${typeof value}`);
  }
}

/** First path where two canonical values differ, or null; used to say why a proposal is refused. */
export function firstDifference(a: unknown, b: unknown, path = "$"): string | null {
  if (a === b) return null;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return path;
  if (Array.isArray(a) !== Array.isArray(b)) return path;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}.length`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort();
  for (const k of keys) {
    const d = firstDifference(ra[k], rb[k], `${path}.${k}`);
    if (d) return d;
  }
  return null;
}
