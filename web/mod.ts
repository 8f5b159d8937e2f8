// Public surface of web/: the app factory, the NodeView contract, the in-memory store, metrics.
export { type AppOptions, createApp, CSP } from "./app.ts";
export * from "./node_view.ts";
export {
  DEFAULT_LIMITS,
  type Detector,
  MemoryView,
  type MemoryViewInit,
  type MemoryViewLimits,
} from "./memory_view.ts";
export {
  COMMIT_LATENCY_BUCKETS_SECONDS,
  Counter,
  createNodeMetrics,
  Gauge,
  Histogram,
  type NodeMetrics,
  PROMETHEUS_CONTENT_TYPE,
  Registry,
} from "./metrics.ts";
export { PAGE_WEIGHT_BYTES } from "./assets.ts";
export { DETECT_BODY_LIMIT } from "./routes.ts";

/** The largest body any route accepts; give the runtime adapter this as its hard cap. */
export { DETECT_BODY_LIMIT as MAX_REQUEST_BODY_BYTES } from "./routes.ts";
