// Files embedded in the program itself (the single binary has no files beside it).
import { decodeBase64 } from "../util/base64.ts";

/** The tfjs wasm binaries by file name, loaded on first use (about 1 MB; keeps --help fast). */
export async function embeddedTfjsWasm(): Promise<Record<string, Uint8Array>> {
  const { TFJS_WASM_BASE64 } = await import("../generated/tfjs_wasm.ts");
  const binaries: Record<string, Uint8Array> = {};
  for (const [name, base64] of Object.entries(TFJS_WASM_BASE64)) {
    binaries[name] = decodeBase64(base64);
  }
  return binaries;
}
