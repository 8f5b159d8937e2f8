// Shape checks for decoded JSON. Every failure is a LedgerError("malformed") naming the JSON path,
// so a verifier's message points at the exact field.
import { isHex } from "../crypto/bytes.ts";
import type { CanonicalValue } from "./canonical.ts";
import { fail } from "./errors.ts";

export type Json = Record<string, unknown>;

/** A plain object whose keys are all in required ∪ optional, with every required key present. */
export function object(
  value: unknown,
  path: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("malformed", `${path}: expected an object`);
  }
  const record = value as Json;
  for (const key of required) {
    if (record[key] === undefined) fail("malformed", `${path}.${key}: missing`);
  }
  for (const key of Object.keys(record)) {
    if (!required.includes(key) && !optional.includes(key)) {
      fail("malformed", `${path}.${key}: unknown field`);
    }
  }
  return record;
}

export function int(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(
      "malformed",
      `${path}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function hex(value: unknown, path: string, bytes: number): string {
  if (!isHex(value, bytes)) {
    fail("malformed", `${path}: expected ${bytes * 2} lowercase hex digits`);
  }
  return value;
}

export function text(value: unknown, path: string, pattern: RegExp, what: string): string {
  if (typeof value !== "string" || !pattern.test(value)) {
    fail("malformed", `${path}: expected ${what}`);
  }
  return value;
}

export function literal<T>(value: unknown, path: string, expected: T): T {
  if (value !== expected) fail("malformed", `${path}: expected ${JSON.stringify(expected)}`);
  return expected;
}

export function array(value: unknown, path: string, lengthMax: number): unknown[] {
  if (!Array.isArray(value)) fail("malformed", `${path}: expected an array`);
  if (value.length > lengthMax) fail("malformed", `${path}: more than ${lengthMax} items`);
  return value;
}

/** Any JSON object (already known canonical-encodable); used for free-form `meta`/`ext` fields. */
export function freeObject(value: unknown, path: string): Record<string, CanonicalValue> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("malformed", `${path}: expected an object`);
  }
  return value as Record<string, CanonicalValue>;
}
