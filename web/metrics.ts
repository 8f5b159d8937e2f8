// A small Prometheus registry: counters, gauges and fixed-bucket histograms, rendered in the text
// exposition format (version 0.0.4) at /metrics. Other modules take a `Registry` (or the
// `NodeMetrics` set below) and increment; nothing here does I/O.

export type Labels = Record<string, string>;

/** Series per metric at most; past it new label sets are counted in `dropped` instead. */
export const SERIES_MAX = 500;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Metric {
  readonly name: string;
  render(): string;
}

abstract class Labelled<S> implements Metric {
  readonly #series = new Map<string, { labels: Labels; state: S }>();
  dropped = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    for (const l of labelNames) {
      if (!LABEL.test(l) || l === "le") throw new Error(`invalid label name ${l} on ${name}`);
    }
  }

  protected abstract fresh(): S;
  abstract render(): string;

  protected series(labels: Labels = {}): S | undefined {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || this.labelNames.some((l) => !(l in labels))) {
      throw new Error(
        `${this.name} expects labels {${this.labelNames.join(", ")}}, got {${keys.join(", ")}}`,
      );
    }
    const key = this.labelNames.map((l) => labels[l]).join("\u0000");
    let entry = this.#series.get(key);
    if (!entry) {
      if (this.#series.size >= SERIES_MAX) {
        this.dropped++;
        return undefined;
      }
      entry = { labels: { ...labels }, state: this.fresh() };
      this.#series.set(key, entry);
    }
    return entry.state;
  }

  protected entries(): { labels: Labels; state: S }[] {
    return [...this.#series.values()];
  }

  protected header(type: string): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${type}\n`;
  }
}

export class Counter extends Labelled<{ value: number }> {
  protected fresh() {
    return { value: 0 };
  }
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by)) {
      throw new Error(`${this.name}: counter increment ${by}`);
    }
    const s = this.series(labels);
    if (s) s.value += by;
  }
  get(labels?: Labels): number {
    return this.series(labels)?.value ?? 0;
  }
  render(): string {
    return this.header("counter") +
      this.entries().map((e) => `${this.name}${fmtLabels(e.labels)} ${fmtNum(e.state.value)}\n`)
        .join("");
  }
}

export class Gauge extends Labelled<{ value: number }> {
  protected fresh() {
    return { value: 0 };
  }
  set(value: number, labels?: Labels): void {
    const s = this.series(labels);
    if (s) s.value = value;
  }
  inc(labels?: Labels, by = 1): void {
    const s = this.series(labels);
    if (s) s.value += by;
  }
  get(labels?: Labels): number {
    return this.series(labels)?.value ?? 0;
  }
  render(): string {
    return this.header("gauge") +
      this.entries().map((e) => `${this.name}${fmtLabels(e.labels)} ${fmtNum(e.state.value)}\n`)
        .join("");
  }
}

export class Histogram extends Labelled<{ counts: number[]; sum: number; count: number }> {
  readonly buckets: readonly number[];
  constructor(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[] = [],
  ) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.length > 64) throw new Error(`${name}: 1..64 buckets`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i] > buckets[i - 1])) throw new Error(`${name}: buckets must increase`);
    }
    this.buckets = [...buckets];
  }
  protected fresh() {
    return { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(value: number, labels?: Labels): void {
    if (!Number.isFinite(value)) return;
    const s = this.series(labels);
    if (!s) return;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
  render(): string {
    let out = this.header("histogram");
    for (const { labels, state } of this.entries()) {
      this.buckets.forEach((le, i) => {
        out += `${this.name}_bucket${fmtLabels({ ...labels, le: fmtNum(le) })} ${
          state.counts[i]
        }\n`;
      });
      out += `${this.name}_bucket${fmtLabels({ ...labels, le: "+Inf" })} ${state.count}\n`;
      out += `${this.name}_sum${fmtLabels(labels)} ${fmtNum(state.sum)}\n`;
      out += `${this.name}_count${fmtLabels(labels)} ${state.count}\n`;
    }
    return out;
  }
}

export class Registry {
  readonly #metrics = new Map<string, Metric>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }
  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[] = [],
  ): Histogram {
    return this.#add(new Histogram(name, help, buckets, labelNames));
  }

  #add<M extends Metric>(metric: M): M {
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  render(): string {
    return [...this.#metrics.values()].map((m) => m.render()).join("");
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The metrics every node exports; the modules that know the numbers update them. */
export interface NodeMetrics {
  registry: Registry;
  round: Gauge;
  accuracy: Gauge;
  f1: Gauge;
  ledgerHeight: Gauge;
  commitLatency: Histogram;
  transactions: Counter;
  rejectedMessages: Counter;
  httpRequests: Counter;
  sseClients: Gauge;
}

export const COMMIT_LATENCY_BUCKETS_SECONDS = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

export function createNodeMetrics(registry = new Registry()): NodeMetrics {
  return {
    registry,
    round: registry.gauge("iomt_round", "Latest completed federated round.", ["mode"]),
    accuracy: registry.gauge("iomt_accuracy", "Validation accuracy of the latest round.", ["mode"]),
    f1: registry.gauge("iomt_f1", "Macro F1 of the latest round.", ["mode"]),
    ledgerHeight: registry.gauge("iomt_ledger_height", "Height of the last committed block."),
    commitLatency: registry.histogram(
      "iomt_commit_latency_seconds",
      "Time from pre-prepare to commit of a block.",
      COMMIT_LATENCY_BUCKETS_SECONDS,
    ),
    transactions: registry.counter(
      "iomt_ledger_transactions_total",
      "Committed transactions; rate() gives the transaction rate.",
      ["type"],
    ),
    rejectedMessages: registry.counter(
      "iomt_rejected_messages_total",
      "Messages rejected, by reason (bad_signature, stale_view, oversized, invalid_update, ...).",
      ["reason"],
    ),
    httpRequests: registry.counter(
      "iomt_http_requests_total",
      "HTTP requests served, by status class.",
      [
        "code",
      ],
    ),
    sseClients: registry.gauge("iomt_sse_clients", "Open server-sent-event streams."),
  };
}

function fmtNum(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function fmtLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}
