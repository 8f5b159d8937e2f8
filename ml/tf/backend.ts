// Lazy TensorFlow.js initialisation. Importing this module loads nothing: `iomt-sfl --help` must
// start in < 150 ms, and tfjs + the wasm backend take ~100 ms to load. Call initTensorflow() first.
import type * as TF from "@tensorflow/tfjs";
import {
  patchMatMulTranspose,
  patchSlice,
  registerConv2DBackpropFilter,
  replaceMaxPoolGrad,
} from "./kernels.ts";

export type BackendName = "wasm" | "cpu";

export interface TensorflowOptions {
  /** Default "wasm" (SIMD, patched kernels); "cpu" is the slow pure-JS reference. */
  backend?: BackendName;
  /** wasm binaries by file name (e.g. "tfjs-backend-wasm-simd.wasm"), for a compiled binary that
   * has no file access to node_modules: served through tf.env().platform.fetch. */
  wasmBinaries?: Record<string, Uint8Array>;
  /** Threads of the fused LSTM kernel (ml/kernels/lstm_kernel.ts), 1 or 2; the environment
   * variable IOMT_SFL_LSTM_THREADS overrides it. Unset: 1, or what an earlier call set. */
  lstmThreads?: number;
}

export interface TensorflowInfo {
  backend: BackendName;
  simd: boolean;
  patches: string[];
}

const WASM_FILES = [
  "tfjs-backend-wasm.wasm",
  "tfjs-backend-wasm-simd.wasm",
  "tfjs-backend-wasm-threaded-simd.wasm",
] as const;

let loaded: Promise<{ tf: typeof TF; info: TensorflowInfo }> | null = null;
let loadedBackend: BackendName | null = null;

/** Loads tfjs once and selects the backend. Calling again with another backend is an error:
 * tfjs holds one global engine per process/worker. */
export function initTensorflow(
  options: TensorflowOptions = {},
): Promise<{ tf: typeof TF; info: TensorflowInfo }> {
  const backend = options.backend ?? "wasm";
  if (loaded) {
    if (loadedBackend !== backend) {
      return Promise.reject(
        new Error(`tfjs already initialised with backend ${loadedBackend}, not ${backend}`),
      );
    }
    return options.lstmThreads === undefined
      ? loaded
      : loaded.then(async (r) => (await applyLstmThreads(options.lstmThreads), r));
  }
  loadedBackend = backend;
  loaded = load(backend, options.wasmBinaries).then(async (r) => {
    await applyLstmThreads(options.lstmThreads);
    return r;
  });
  loaded.catch(() => {
    loaded = null;
    loadedBackend = null;
  });
  return loaded;
}

async function load(backend: BackendName, wasmBinaries?: Record<string, Uint8Array>) {
  const tf = await import("@tensorflow/tfjs");
  // Production mode: skips tfjs' debug checks and its "install tfjs-node" banner on stderr.
  tf.enableProdMode();
  if (backend === "cpu" && !(await tf.setBackend("cpu"))) {
    throw new Error("tfjs cpu backend failed to initialise");
  }
  const patches: string[] = [];
  let simd = false;
  if (backend === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    if (wasmBinaries) serveEmbeddedWasm(tf, wasm, wasmBinaries);
    if (!(await tf.setBackend("wasm"))) throw new Error("tfjs wasm backend failed to initialise");
    simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
    registerConv2DBackpropFilter(tf);
    patches.push("Conv2DBackpropFilter");
    patchMatMulTranspose(tf);
    patches.push("matMul-transpose");
    patchSlice(tf);
    patches.push("slice-heap-view");
    replaceMaxPoolGrad(tf);
    patches.push("MaxPoolGrad");
  }
  await tf.ready();
  return { tf, info: { backend, simd, patches } };
}

function serveEmbeddedWasm(
  tf: typeof TF,
  wasm: typeof import("@tensorflow/tfjs-backend-wasm"),
  binaries: Record<string, Uint8Array>,
): void {
  const paths: Record<string, string> = {};
  for (const file of WASM_FILES) {
    // Fall back to the SIMD build for every variant: Deno/Bun report IS_NODE, which disables threads.
    const name = binaries[file] ? file : "tfjs-backend-wasm-simd.wasm";
    if (!binaries[name]) {
      throw new Error(`embedded wasm binaries lack ${file} and the SIMD fallback`);
    }
    paths[file] = `embedded:${name}`;
  }
  const platform = tf.env().platform;
  const fetchOriginal = platform.fetch.bind(platform);
  platform.fetch = (path: string, init?: RequestInit) => {
    if (typeof path === "string" && path.startsWith("embedded:")) {
      const bytes = binaries[path.slice("embedded:".length)];
      return Promise.resolve(
        new Response(bytes as BodyInit, { headers: { "content-type": "application/wasm" } }),
      );
    }
    return fetchOriginal(path, init);
  };
  wasm.setWasmPaths(paths, true);
}

async function applyLstmThreads(threads?: number): Promise<number> {
  const { configureLstmThreads } = await import("../kernels/lstm_kernel.ts");
  return configureLstmThreads(threads);
}

/** The loaded tfjs module; throws if initTensorflow() has not completed. */
export async function tensorflow(): Promise<typeof TF> {
  if (!loaded) throw new Error("initTensorflow() has not been called");
  return (await loaded).tf;
}
