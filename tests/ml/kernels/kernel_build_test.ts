// The committed kernel bytes (ml/kernels/*_wasm.generated.ts) are what tools/build_kernels.sh makes
// from ml/kernels/*.c. Needs clang + wasm-ld (Debian: apt-get install -y clang lld); the rebuild
// check is skipped, saying so, when they are missing.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Buffer } from "node:buffer";
import { LSTM_WASM_BASE64, LSTM_WASM_SHA256 } from "../../../ml/kernels/lstm_wasm.generated.ts";
import { CONV_WASM_BASE64, CONV_WASM_SHA256 } from "../../../ml/kernels/conv_wasm.generated.ts";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const hasClang = spawnSync("clang", ["--version"]).status === 0 &&
  spawnSync("wasm-ld", ["--version"]).status === 0;
if (!hasClang) {
  console.warn("kernel_build_test: clang/wasm-ld not found, rebuild check skipped");
}

const KERNELS = [
  { name: "lstm", base64: LSTM_WASM_BASE64, sha256: LSTM_WASM_SHA256 },
  { name: "conv", base64: CONV_WASM_BASE64, sha256: CONV_WASM_SHA256 },
];

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

for (const kernel of KERNELS) {
  Deno.test({
    name:
      `committed ${kernel.name} kernel bytes equal a fresh build of ml/kernels/${kernel.name}.c`,
    ignore: !hasClang,
    fn: async () => {
      const dir = mkdtempSync(join(tmpdir(), "kernel-"));
      try {
        const out = join(dir, `${kernel.name}.wasm`);
        execFileSync("bash", [join(root, "tools/build_kernels.sh"), "--wasm", kernel.name, out]);
        const fresh = readFileSync(out);
        assert.equal(
          await sha256Hex(fresh),
          kernel.sha256,
          "rerun tools/build_kernels.sh and commit the result",
        );
        assert.equal(Buffer.from(fresh).toString("base64"), kernel.base64);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  });

  Deno.test(`embedded ${kernel.name} kernel bytes match their recorded sha256`, async () => {
    const bytes = Uint8Array.from(atob(kernel.base64), (c) => c.charCodeAt(0));
    assert.equal(await sha256Hex(bytes), kernel.sha256);
    assert.ok(WebAssembly.validate(bytes), "kernel does not validate as WebAssembly");
  });
}
