// Starts tfjs the same way in every role: wasm + SIMD + the project's kernel patches, with the
// wasm binaries taken from the program itself (the single binary has no node_modules).
import { embeddedTfjsWasm } from "../runtime/embedded.ts";
import { initTensorflow, type TensorflowInfo } from "../ml/tf/backend.ts";

export async function startTensorflow(): Promise<TensorflowInfo> {
  const { info } = await initTensorflow({
    backend: "wasm",
    wasmBinaries: await embeddedTfjsWasm(),
  });
  return info;
}
