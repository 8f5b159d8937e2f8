// initTensorflow for commands: in the compiled binary, hand tfjs the wasm bytes embedded in the
// program (there is no node_modules beside it); under deno/bun run, tfjs finds its files itself.
import { initTensorflow, type TensorflowInfo } from "./backend.ts";

export async function initTensorflowForCommand(): Promise<TensorflowInfo> {
  const { isCompiledBinary } = await import("../../runtime/adapter.ts");
  let wasmBinaries: Record<string, Uint8Array> | undefined;
  if (isCompiledBinary()) {
    const { embeddedTfjsWasm } = await import("../../runtime/embedded.ts");
    wasmBinaries = await embeddedTfjsWasm();
  }
  return (await initTensorflow({ backend: "wasm", wasmBinaries })).info;
}
