// Minimal assertions for deno test (Deno std is on JSR, which this network cannot reach).
export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  const a = stableStringify(actual), e = stableStringify(expected);
  if (a !== e) throw new AssertionError(`${message ? message + ": " : ""}expected ${e}, got ${a}`);
}

export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  if (stableStringify(actual) === stableStringify(expected)) {
    throw new AssertionError(message ?? `expected values to differ: ${stableStringify(actual)}`);
  }
}

export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  message?: string,
) {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new AssertionError(
      `${message ? message + ": " : ""}expected ${expected} ± ${tolerance}, got ${actual}`,
    );
  }
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  if (!pattern.test(actual)) {
    throw new AssertionError(message ?? `expected ${JSON.stringify(actual)} to match ${pattern}`);
  }
}

export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    throw new AssertionError(
      message ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
    );
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

export function assertThrows(
  fn: () => unknown,
  errorClass?: ErrorClass,
  messageIncludes?: string,
): Error {
  try {
    fn();
  } catch (error) {
    checkError(error, errorClass, messageIncludes);
    return error as Error;
  }
  throw new AssertionError("expected function to throw");
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  errorClass?: ErrorClass,
  messageIncludes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    checkError(error, errorClass, messageIncludes);
    return error as Error;
  }
  throw new AssertionError("expected promise to reject");
}

function checkError(error: unknown, errorClass?: ErrorClass, messageIncludes?: string) {
  if (errorClass && !(error instanceof errorClass)) {
    throw new AssertionError(
      `expected ${errorClass.name}, got ${(error as Error)?.name}: ${(error as Error)?.message}`,
    );
  }
  if (messageIncludes && !(error as Error).message.includes(messageIncludes)) {
    throw new AssertionError(
      `expected error message to include ${JSON.stringify(messageIncludes)}, got ${
        JSON.stringify((error as Error).message)
      }`,
    );
  }
}

function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (
      v instanceof Float32Array || v instanceof Float64Array || v instanceof Int32Array ||
      v instanceof Uint8Array
    ) {
      return { [v.constructor.name]: Array.from(v) };
    }
    if (v instanceof Map) return { Map: [...v.entries()] };
    if (v instanceof Set) return { Set: [...v.values()] };
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]),
      );
    }
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    return v;
  });
}
