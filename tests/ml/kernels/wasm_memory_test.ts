// The kernels' shared memory helpers: aligned layouts, bounded growth with an error naming the
// kernel and the pass, and the embedded bytes' decoding.
import assert from "node:assert/strict";
import {
  decodeBase64,
  growKernelMemory,
  layout,
  newKernelMemory,
  WASM_PAGE_BYTES,
} from "../../../ml/kernels/wasm_memory.ts";

Deno.test("layout rounds every buffer up to the alignment, in order", () => {
  const { at, end } = layout(100, { a: 5, b: 16, c: 1 }, 16);
  assert.deepEqual(at, { a: 100, b: 116, c: 132 });
  assert.equal(end, 148);
  assert.deepEqual(layout(0, {}, 4), { at: {}, end: 0 });
});

Deno.test("kernel memory grows to what a pass needs and refuses more than its limit", () => {
  const memory = newKernelMemory();
  const before = memory.buffer.byteLength;
  growKernelMemory(memory, before + 1, 64 * 2 ** 20, "test kernel", "a pass");
  assert.equal(memory.buffer.byteLength, before + WASM_PAGE_BYTES);
  assert.throws(
    () => growKernelMemory(memory, 65 * 2 ** 20, 64 * 2 ** 20, "test kernel", "a pass of batch 9"),
    /^Error: test kernel: a pass of batch 9 needs 65 MB of wasm memory, limit 64 MB: use a smaller batch$/,
  );
  assert.equal(memory.buffer.byteLength, before + WASM_PAGE_BYTES, "a refused pass grew memory");
});

Deno.test("decodeBase64 returns the bytes", () => {
  assert.deepEqual(decodeBase64(btoa("\x00\x61\xff")), Uint8Array.of(0, 0x61, 0xff));
});
