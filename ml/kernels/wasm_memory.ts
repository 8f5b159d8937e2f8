// What the two WebAssembly kernels (lstm_kernel.ts, conv_kernel.ts) share: their embedded bytes,
// their memory (shared, imported; limits as tools/build_kernels.sh links them), its bounded growth
// and the layout of named buffers in it.

export const WASM_PAGE_BYTES = 65536;
/** The modules' memory limits (tools/build_kernels.sh: --initial-memory, --max-memory). */
const MEMORY_INITIAL_PAGES = 1048576 / WASM_PAGE_BYTES;
const MEMORY_MAX_PAGES = 1207959552 / WASM_PAGE_BYTES;

export function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
  return bytes;
}

/** A fresh memory for one kernel instance (shared, so that a worker thread can use it too). */
export function newKernelMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({
    initial: MEMORY_INITIAL_PAGES,
    maximum: MEMORY_MAX_PAGES,
    shared: true,
  });
}

/** Grows `memory` to at least `bytes`; above `limitBytes` it throws an error naming `kernel`,
 * `what` needed it and the sizes. */
export function growKernelMemory(
  memory: WebAssembly.Memory,
  bytes: number,
  limitBytes: number,
  kernel: string,
  what: string,
): void {
  if (bytes > limitBytes) {
    throw new Error(
      `${kernel}: ${what} needs ${Math.ceil(bytes / 2 ** 20)} MB of wasm memory, limit ${
        limitBytes / 2 ** 20
      } MB: use a smaller batch`,
    );
  }
  if (memory.buffer.byteLength < bytes) {
    memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / WASM_PAGE_BYTES));
  }
}

/** Offsets of named buffers laid out one after another from `start`, each rounded up to a
 * multiple of `align` (in the caller's unit: floats or bytes). */
export function layout(start: number, sizes: Record<string, number>, align: number) {
  const at: Record<string, number> = {};
  let next = start;
  for (const [name, size] of Object.entries(sizes)) {
    at[name] = next;
    next += Math.ceil(size / align) * align;
  }
  return { at, end: next };
}
