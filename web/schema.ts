// A tiny schema language: each builder returns the JSON Schema that goes into /openapi.json and a
// parser that validates (and, for path and query strings, coerces) a value against that same
// schema. One definition, two uses, so the document cannot drift from what the server enforces.

export type JsonSchema = Record<string, unknown>;

export interface Issue {
  /** JSON-pointer-like location, e.g. `body.flows[3].features`. */
  path: string;
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

export interface Schema<T> {
  readonly json: JsonSchema;
  /** Component name when the schema is emitted as `#/components/schemas/<name>`. */
  readonly name?: string;
  readonly optional?: boolean;
  /** Sub-schemas, so that `collectComponents` can find nested named schemas. */
  readonly children?: Schema<unknown>[];
  parse(value: unknown, path: string, coerce: boolean): Parsed<T>;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/** The most issues one response reports; a 10 000-element bad array must not make a 10 000-line error. */
export const ISSUES_MAX = 20;

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (path: string, message: string): Parsed<never> => ({
  ok: false,
  issues: [{ path, message }],
});

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

export function string(
  o: {
    minLength?: number;
    maxLength: number;
    pattern?: RegExp;
    description?: string;
    format?: string;
  },
): Schema<string> {
  const json: JsonSchema = { type: "string", maxLength: o.maxLength };
  if (o.minLength !== undefined) json.minLength = o.minLength;
  if (o.pattern) json.pattern = o.pattern.source;
  if (o.description) json.description = o.description;
  if (o.format) json.format = o.format;
  return {
    json,
    parse(value, path) {
      if (typeof value !== "string") return fail(path, `expected string, got ${typeName(value)}`);
      if (value.length > o.maxLength) return fail(path, `longer than ${o.maxLength} characters`);
      if (o.minLength !== undefined && value.length < o.minLength) {
        return fail(path, `shorter than ${o.minLength} characters`);
      }
      if (o.pattern && !o.pattern.test(value)) {
        return fail(path, `does not match ${o.pattern.source}`);
      }
      return ok(value);
    },
  };
}

export function literal<const T extends string>(
  values: readonly T[],
  description?: string,
): Schema<T> {
  const json: JsonSchema = { type: "string", enum: [...values] };
  if (description) json.description = description;
  return {
    json,
    parse(value, path) {
      if (typeof value !== "string" || !(values as readonly string[]).includes(value)) {
        return fail(path, `expected one of ${values.join(", ")}`);
      }
      return ok(value as T);
    },
  };
}

function numeric(
  integer: boolean,
  o: { minimum?: number; maximum?: number; description?: string },
): Schema<number> {
  const json: JsonSchema = { type: integer ? "integer" : "number" };
  if (o.minimum !== undefined) json.minimum = o.minimum;
  if (o.maximum !== undefined) json.maximum = o.maximum;
  if (o.description) json.description = o.description;
  return {
    json,
    parse(value, path, coerce) {
      let n = value;
      // Path and query values arrive as text; only a plain decimal is accepted, never "", "1e3" or "0x10".
      if (coerce && typeof value === "string") {
        n = (integer ? /^-?\d{1,16}$/ : /^-?\d{1,16}(\.\d{1,16})?$/).test(value)
          ? Number(value)
          : NaN;
      }
      if (typeof n !== "number" || !Number.isFinite(n)) {
        return fail(
          path,
          `expected ${json.type}, got ${coerce ? JSON.stringify(value) : typeName(value)}`,
        );
      }
      if (integer && !Number.isSafeInteger(n)) return fail(path, "expected an integer");
      if (o.minimum !== undefined && n < o.minimum) return fail(path, `less than ${o.minimum}`);
      if (o.maximum !== undefined && n > o.maximum) return fail(path, `greater than ${o.maximum}`);
      return ok(n);
    },
  };
}

export const integer = (o: { minimum?: number; maximum?: number; description?: string } = {}) =>
  numeric(true, o);
export const number = (o: { minimum?: number; maximum?: number; description?: string } = {}) =>
  numeric(false, o);

export function boolean(description?: string): Schema<boolean> {
  const json: JsonSchema = { type: "boolean" };
  if (description) json.description = description;
  return {
    json,
    parse(value, path, coerce) {
      if (coerce && (value === "true" || value === "false")) return ok(value === "true");
      if (typeof value !== "boolean") return fail(path, `expected boolean, got ${typeName(value)}`);
      return ok(value);
    },
  };
}

export function array<T>(
  item: Schema<T>,
  o: { minItems?: number; maxItems: number; description?: string },
): Schema<T[]> {
  const json: JsonSchema = { type: "array", items: ref(item), maxItems: o.maxItems };
  if (o.minItems !== undefined) json.minItems = o.minItems;
  if (o.description) json.description = o.description;
  return {
    json,
    children: [item as Schema<unknown>],
    parse(value, path, coerce) {
      if (!Array.isArray(value)) return fail(path, `expected array, got ${typeName(value)}`);
      if (value.length > o.maxItems) return fail(path, `more than ${o.maxItems} items`);
      if (o.minItems !== undefined && value.length < o.minItems) {
        return fail(path, `fewer than ${o.minItems} items`);
      }
      const out: T[] = [];
      const issues: Issue[] = [];
      for (let i = 0; i < value.length && issues.length < ISSUES_MAX; i++) {
        const r = item.parse(value[i], `${path}[${i}]`, coerce);
        if (r.ok) out.push(r.value);
        else issues.push(...r.issues);
      }
      return issues.length > 0 ? { ok: false, issues: issues.slice(0, ISSUES_MAX) } : ok(out);
    },
  };
}

/** Any JSON value, for free-form fields such as a transaction's payload. Documented, not checked. */
export function unknownValue(description: string): Schema<unknown> {
  return { json: { description }, parse: (value) => ok(value) };
}

export function optional<T>(schema: Schema<T>): Schema<T | undefined> {
  return { ...schema, optional: true } as Schema<T | undefined>;
}

export function nullable<T>(schema: Schema<T>): Schema<T | null> {
  return {
    children: [schema as Schema<unknown>],
    json: { ...(schema.name ? { allOf: [ref(schema)] } : schema.json), nullable: true },
    parse: (value, path, coerce) => (value === null ? ok(null) : schema.parse(value, path, coerce)),
  };
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: undefined extends Infer<S[K]> ? K : never;
}[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
export type ObjectOf<S extends Shape> =
  & { [K in RequiredKeys<S>]: Infer<S[K]> }
  & { [K in OptionalKeys<S>]?: Infer<S[K]> };

/** A closed object: unknown keys are an error, which catches typos such as `?limt=5`. */
export function object<S extends Shape>(
  shape: S,
  o: { description?: string; open?: boolean } = {},
): Schema<ObjectOf<S>> & { shape: S } {
  const required = Object.keys(shape).filter((k) => !shape[k].optional);
  const properties: Record<string, JsonSchema> = {};
  for (const [k, v] of Object.entries(shape)) properties[k] = ref(v);
  const json: JsonSchema = { type: "object", properties };
  if (required.length > 0) json.required = required;
  if (!o.open) json.additionalProperties = false;
  if (o.description) json.description = o.description;
  return {
    json,
    shape,
    children: Object.values(shape),
    parse(value, path, coerce) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return fail(path, `expected object, got ${typeName(value)}`);
      }
      const input = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      const issues: Issue[] = [];
      for (const key of Object.keys(input)) {
        if (!Object.hasOwn(shape, key) && !o.open) {
          issues.push({ path: join(path, key), message: "unknown field" });
        }
      }
      for (const [key, schema] of Object.entries(shape)) {
        if (issues.length >= ISSUES_MAX) break;
        const v = Object.hasOwn(input, key) ? input[key] : undefined;
        if (v === undefined) {
          if (!schema.optional) issues.push({ path: join(path, key), message: "required" });
          continue;
        }
        const r = schema.parse(v, join(path, key), coerce);
        if (r.ok) out[key] = r.value;
        else issues.push(...r.issues);
      }
      if (issues.length > 0) return { ok: false, issues: issues.slice(0, ISSUES_MAX) };
      return ok(out as ObjectOf<S>);
    },
  };
}

/** A map from string keys to one value schema, e.g. per-reason counters. */
export function record<T>(
  value: Schema<T>,
  o: { maxProperties: number; description?: string },
): Schema<Record<string, T>> {
  const json: JsonSchema = {
    type: "object",
    additionalProperties: ref(value),
    maxProperties: o.maxProperties,
  };
  if (o.description) json.description = o.description;
  return {
    json,
    children: [value as Schema<unknown>],
    parse(input, path, coerce) {
      if (typeof input !== "object" || input === null || Array.isArray(input)) {
        return fail(path, `expected object, got ${typeName(input)}`);
      }
      const entries = Object.entries(input as Record<string, unknown>);
      if (entries.length > o.maxProperties) {
        return fail(path, `more than ${o.maxProperties} properties`);
      }
      const out: Record<string, T> = {};
      for (const [k, v] of entries) {
        const r = value.parse(v, join(path, k), coerce);
        if (!r.ok) return r;
        out[k] = r.value;
      }
      return ok(out);
    },
  };
}

/** Gives a schema a component name; it is then referenced, not inlined, in the document. */
export function named<T, S extends Schema<T>>(name: string, schema: S): S {
  return { ...schema, name };
}

/** The JSON Schema to embed for `schema`: a `$ref` for named schemas. */
export function ref(schema: Schema<unknown>): JsonSchema {
  return schema.name ? { $ref: `#/components/schemas/${schema.name}` } : schema.json;
}

/** Every named schema reachable from `roots`, for `components.schemas`. */
export function collectComponents(roots: Schema<unknown>[]): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  const seen = new Set<Schema<unknown>>();
  const visit = (s: Schema<unknown>) => {
    if (seen.has(s)) return;
    seen.add(s);
    if (s.name) out[s.name] = s.json;
    for (const child of s.children ?? []) visit(child);
  };
  roots.forEach(visit);
  return out;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
