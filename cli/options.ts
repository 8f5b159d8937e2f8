// Strict option parsers for commander. commander passes the raw string; a parser that throws
// InvalidArgumentError becomes "error: option '--port <n>' argument 'abc' is invalid. <reason>"
// and exit code 2. Never return NaN: `--port abc` must fail, not become NaN.
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { existsSync, statSync } from "node:fs";

/** Parser for an integer in [min, max], e.g. `.option("--devices <n>", "...", intInRange(1, 1000))`. */
export function intInRange(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const trimmed = value.trim();
    if (!/^[+-]?\d+$/.test(trimmed)) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    }
    const parsed = Number(trimmed);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    }
    return parsed;
  };
}

/** Parser for a finite number in [min, max] (inclusive unless `exclusiveMin`). */
export function numberInRange(
  min: number,
  max: number,
  options: { exclusiveMin?: boolean; exclusiveMax?: boolean } = {},
): (value: string) => number {
  const lower = options.exclusiveMin ? `greater than ${min}` : `from ${min}`;
  const upper = options.exclusiveMax ? `less than ${max}` : `to ${max}`;
  const message = options.exclusiveMin && options.exclusiveMax
    ? `expected a number strictly between ${min} and ${max}.`
    : `expected a number ${lower} ${upper}.`;
  return (value: string) => {
    const trimmed = value.trim();
    const parsed = trimmed === "" ? NaN : Number(trimmed);
    const below = options.exclusiveMin ? parsed <= min : parsed < min;
    const above = options.exclusiveMax ? parsed >= max : parsed > max;
    if (!Number.isFinite(parsed) || below || above) {
      throw new InvalidArgumentError(message);
    }
    return parsed;
  };
}

/** Parser for one of a fixed set of words. */
export function oneOf<const T extends readonly string[]>(
  choices: T,
): (value: string) => T[number] {
  return (value: string) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`expected one of: ${choices.join(", ")}.`);
    }
    return value as T[number];
  };
}

/** Parser for a path that must exist (file or directory). */
export function existingPath(
  kind: "file" | "directory" | "any" = "any",
): (value: string) => string {
  return (value: string) => {
    if (!existsSync(value)) {
      throw new InvalidArgumentError(`no such ${kind === "any" ? "path" : kind}: ${value}`);
    }
    const stat = statSync(value);
    if (kind === "file" && !stat.isFile()) throw new InvalidArgumentError(`not a file: ${value}`);
    if (kind === "directory" && !stat.isDirectory()) {
      throw new InvalidArgumentError(`not a directory: ${value}`);
    }
    return value;
  };
}

/** Parser for `host:port` or `:port` listen addresses; port in 0..65535 (0 = any free port). */
export function listenAddress(value: string): { hostname: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new InvalidArgumentError(
      "expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:7100.",
    );
  }
  return { hostname: match[1] ?? (match[2] || "127.0.0.1"), port };
}

/** Parser for a comma-separated list of non-empty words. */
export function commaList(value: string): string[] {
  const items = value.split(",").map((item) => item.trim()).filter((item) => item.length > 0);
  if (items.length === 0) throw new InvalidArgumentError("expected a comma-separated list.");
  return items;
}
