// initTensorflow for commands: in the compiled binary, hand tfjs the wasm bytes embedded in the
// program (there is no node_modules beside it); under deno/bun run, tfjs finds its files itself.
import { initTensorflow, type TensorflowInfo } from "./backend.ts";

/** LSTM kernel threads for a command that a user runs as one process on its own (detect, privacy):
 * both cores (docs/benchmarks.md: detect 1.09x faster by the median of 5 runs at load 5-11, up to
 * 1.8x; same output). IOMT_SFL_LSTM_THREADS=1 overrides it. */
export const COMMAND_LSTM_THREADS = 2;

export async function initTensorflowForCommand(): Promise<TensorflowInfo> {
  const { isCompiledBinary } = await import("../../runtime/adapter.ts");
  let wasmBinaries: Record<string, Uint8Array> | undefined;
  if (isCompiledBinary()) {
    const { embeddedTfjsWasm } = await import("../../runtime/embedded.ts");
    wasmBinaries = await embeddedTfjsWasm();
  }
  return (await initTensorflow({
    backend: "wasm",
    wasmBinaries,
    lstmThreads: COMMAND_LSTM_THREADS,
  }))
    .info;
}
