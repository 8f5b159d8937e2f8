// One logger for every role. Human lines by default, JSON lines with --log-json; always stderr so
// that stdout stays machine-readable (tables, --json output, detection alerts).
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];
const LEVEL_RANK: Record<LogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 99,
};

export interface LogSettings {
  level: LogLevel;
  json: boolean;
}

const settings: LogSettings = { level: "info", json: false };
type Sink = (line: string) => void;
let sink: Sink = (line) => console.error(line);

export function configureLogging(next: Partial<LogSettings>, nextSink?: Sink): void {
  Object.assign(settings, next);
  if (nextSink) sink = nextSink;
}

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

export function logger(component: string): Logger {
  const emit = (level: LogLevel, message: string, fields?: LogFields) => {
    if (LEVEL_RANK[level] < LEVEL_RANK[settings.level]) return;
    const time = new Date().toISOString();
    if (settings.json) {
      sink(JSON.stringify({ time, level, component, message, ...fields }));
      return;
    }
    const extra = fields && Object.keys(fields).length > 0
      ? " " + Object.entries(fields).map(([k, v]) => `${k}=${formatValue(v)}`).join(" ")
      : "";
    sink(
      `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} [${component}] ${message}${extra}`,
    );
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (sub) => logger(`${component}/${sub}`),
  };
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return /\s/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value);
}
