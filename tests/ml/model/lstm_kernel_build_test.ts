// The committed kernel bytes (ml/kernels/lstm_wasm.generated.ts) are what tools/build_lstm_kernel.sh
// makes from ml/kernels/lstm.c. Needs clang + wasm-ld (Debian: apt-get install -y clang lld);
// skipped, saying so, when they are missing.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Buffer } from "node:buffer";
import { LSTM_WASM_BASE64, LSTM_WASM_SHA256 } from "../../../ml/kernels/lstm_wasm.generated.ts";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const hasClang = spawnSync("clang", ["--version"]).status === 0 &&
  spawnSync("wasm-ld", ["--version"]).status === 0;
if (!hasClang) {
  console.warn("lstm_kernel_build_test: clang/wasm-ld not found, rebuild check skipped");
}

Deno.test({
  name: "committed LSTM kernel bytes equal a fresh build of ml/kernels/lstm.c",
  ignore: !hasClang,
  fn: async () => {
    const dir = mkdtempSync(join(tmpdir(), "lstm-kernel-"));
    try {
      const out = join(dir, "lstm.wasm");
      execFileSync("bash", [join(root, "tools/build_lstm_kernel.sh"), "--wasm", out]);
      const fresh = readFileSync(out);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", fresh));
      const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(hex, LSTM_WASM_SHA256, "rerun tools/build_lstm_kernel.sh and commit the result");
      assert.equal(Buffer.from(fresh).toString("base64"), LSTM_WASM_BASE64);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("embedded LSTM kernel bytes match their recorded sha256", async () => {
  const bytes = Uint8Array.from(atob(LSTM_WASM_BASE64), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(hex, LSTM_WASM_SHA256);
  assert.ok(WebAssembly.validate(bytes), "kernel does not validate as WebAssembly");
});
