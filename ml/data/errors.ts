// Errors about the data itself (as opposed to how a command was called): exit code 1.

/** Where a problem was found. line is 1-based; column is the header name when known. */
export interface DataLocation {
  file: string;
  line?: number;
  column?: string;
}

/** Bad input data. The message always names the file, and the line and column when known. */
export class DataError extends Error {
  override name = "DataError";
  readonly file: string;
  readonly line?: number;
  readonly column?: string;
  readonly reason: string;

  constructor(location: DataLocation, reason: string) {
    const parts = [location.file];
    if (location.line !== undefined) parts.push(`line ${location.line}`);
    if (location.column !== undefined) parts.push(`column "${location.column}"`);
    super(`${parts.join(", ")}: ${reason}`);
    this.file = location.file;
    this.line = location.line;
    this.column = location.column;
    this.reason = reason;
  }
}

/** A bad row that --skip-bad-rows may skip (ragged, text in a numeric column, no label). */
export class BadRowError extends DataError {
  override name = "BadRowError";
  readonly kind: BadRowKind;
  constructor(location: DataLocation, kind: BadRowKind, reason: string) {
    super(location, reason);
    this.kind = kind;
  }
}

export type BadRowKind = "ragged" | "non-numeric" | "missing-label" | "bad-json";
