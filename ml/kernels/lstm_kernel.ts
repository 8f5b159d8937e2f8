// The fused (Bi)LSTM WebAssembly kernel (ml/kernels/lstm.c): its own small wasm instance with its
// own memory, instantiated synchronously from the embedded bytes (no file access needed, so it
// works the same under Deno, Bun and in the compiled binary). Plain Float32Arrays in and out; the
// tfjs op around it is ml/model/fused_rnn.ts.
//
// Memory: [heap base | tape region | scratch]. A forward pass that will be differentiated leaves
// its saved state (x, W, U, gates, c, h) in the tape region and returns a Tape; the backward pass
// reads it in place. If another differentiable forward pass comes first, the older tape is copied
// out to JS ("spilled") and copied back when its backward pass runs, so tapes never clobber each
// other; an abandoned tape is simply garbage-collected.
import { LSTM_WASM_BASE64 } from "./lstm_wasm.generated.ts";

/** Shape of one call. G = 4 * units; directions 1 or 2 (direction 1 reads time reversed). */
export interface LstmShape {
  batch: number;
  steps: number;
  inputs: number;
  units: number;
  directions: number;
}

/** Upper bound of the kernel's wasm memory. Inference is chunked over the batch to stay far below;
 * a differentiable pass that does not fit is an error naming the sizes. */
export const LSTM_KERNEL_MEMORY_MAX_BYTES = 1024 * 1024 * 1024;
/** Rows per forward-only call (inference), so that memory stays bounded for any batch. */
export const LSTM_INFERENCE_CHUNK_ROWS = 2048;

const PAGE = 65536;
/** Rows per packed GEMM block in lstm.c (KC). */
const GEMM_KC = 256;

function panelFloats(s: LstmShape): number {
  return GEMM_KC * (Math.max(4 * s.units, s.inputs, s.units) + 8);
}

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  lstm_forward(
    B: number,
    T: number,
    D: number,
    H: number,
    R: number,
    save: number,
    x: number,
    W: number,
    U: number,
    bias: number,
    hout: number,
    gates: number,
    cs: number,
    hs: number,
    wpanel: number,
    upanel: number,
  ): void;
  lstm_backward(...args: number[]): void;
}

/** A differentiable forward pass's saved state. */
export class Tape {
  spill: Float32Array | null = null;
  consumed = false;
  constructor(readonly shape: LstmShape, readonly floats: number) {}
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
  return bytes;
}

function checkShape(s: LstmShape): void {
  const intIn = (name: keyof LstmShape, min: number, max: number) => {
    const v = s[name];
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new Error(`lstm kernel: ${name}=${v} must be an integer in ${min}..${max}`);
    }
  };
  intIn("batch", 1, 1 << 20);
  intIn("steps", 1, 4096);
  intIn("inputs", 1, 65536);
  intIn("units", 1, 4096);
  intIn("directions", 1, 2);
}

/** Offsets (in floats, 16-byte aligned) of named buffers laid out one after another. */
function layout(start: number, sizes: Record<string, number>) {
  const at: Record<string, number> = {};
  let next = start;
  for (const [name, size] of Object.entries(sizes)) {
    at[name] = next;
    next += Math.ceil(size / 4) * 4;
  }
  return { at, end: next };
}

function tapeSizes(s: LstmShape) {
  const { batch: B, steps: T, inputs: D, units: H, directions: R } = s;
  const G = 4 * H;
  return {
    x: B * T * D,
    W: R * D * G,
    U: R * H * G,
    gates: R * T * B * G,
    cs: R * T * B * H,
    hs: R * T * B * H,
  };
}

export class LstmKernel {
  readonly #exports: Exports;
  readonly #base: number; // floats
  #heap: Float32Array;
  #pending: Tape | null = null;

  /** `bytes`: another build of lstm.c (for A/B measurements); default the embedded one. */
  constructor(bytes: Uint8Array = decodeBase64(LSTM_WASM_BASE64)) {
    const module = new WebAssembly.Module(bytes as BufferSource);
    const instance = new WebAssembly.Instance(module, {});
    this.#exports = instance.exports as unknown as Exports;
    const heapBase = this.#exports.__heap_base.value as number;
    this.#base = Math.ceil(heapBase / 16) * 4;
    this.#heap = new Float32Array(this.#exports.memory.buffer);
  }

  /** Bytes of wasm memory currently reserved by the instance. */
  get memoryBytes(): number {
    return this.#exports.memory.buffer.byteLength;
  }

  #ensure(endFloats: number, what: string): Float32Array {
    const bytes = endFloats * 4;
    if (bytes > LSTM_KERNEL_MEMORY_MAX_BYTES) {
      throw new Error(
        `lstm kernel: ${what} needs ${Math.ceil(bytes / 2 ** 20)} MB of wasm memory, limit ${
          LSTM_KERNEL_MEMORY_MAX_BYTES / 2 ** 20
        } MB: use a smaller batch`,
      );
    }
    const memory = this.#exports.memory;
    if (memory.buffer.byteLength < bytes) {
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
    }
    if (this.#heap.buffer !== memory.buffer) this.#heap = new Float32Array(memory.buffer);
    return this.#heap;
  }

  /** Copies a pending (not yet differentiated) tape out of wasm memory so the region can be
   * reused. */
  #spillPending(): void {
    const tape = this.#pending;
    if (tape && !tape.consumed && tape.spill === null) {
      tape.spill = this.#heap.slice(this.#base, this.#base + tape.floats);
    }
    this.#pending = null;
  }

  /** Forward pass. Returns the final hidden states [batch, directions * units] and, when `tape`
   * is true, the saved state for `backward`. */
  forward(
    s: LstmShape,
    x: Float32Array,
    W: Float32Array,
    U: Float32Array,
    bias: Float32Array,
    tape: boolean,
  ): { h: Float32Array; tape: Tape | null } {
    checkShape(s);
    const { batch: B, steps: T, inputs: D, units: H, directions: R } = s;
    const G = 4 * H;
    expectLength("x", x, B * T * D);
    expectLength("W", W, R * D * G);
    expectLength("U", U, R * H * G);
    expectLength("bias", bias, R * G);
    if (!tape) {
      // Forward only: chunk the batch so memory stays bounded; rows are independent.
      const out = new Float32Array(B * R * H);
      for (let row = 0; row < B; row += LSTM_INFERENCE_CHUNK_ROWS) {
        const rows = Math.min(LSTM_INFERENCE_CHUNK_ROWS, B - row);
        const part = this.#forwardChunk(
          { ...s, batch: rows },
          x.subarray(row * T * D, (row + rows) * T * D),
          W,
          U,
          bias,
        );
        out.set(part, row * R * H);
      }
      return { h: out, tape: null };
    }
    this.#spillPending();
    const sizes = tapeSizes(s);
    const t = layout(this.#base, sizes);
    const scratch = layout(t.end, {
      hout: B * R * H,
      bias: R * G,
      wpanel: D * G,
      upanel: H * G,
    });
    const heap = this.#ensure(scratch.end, `a differentiable pass of batch ${B}`);
    heap.set(x, t.at.x);
    heap.set(W, t.at.W);
    heap.set(U, t.at.U);
    heap.set(bias, scratch.at.bias);
    this.#exports.lstm_forward(
      B,
      T,
      D,
      H,
      R,
      1,
      4 * t.at.x,
      4 * t.at.W,
      4 * t.at.U,
      4 * scratch.at.bias,
      4 * scratch.at.hout,
      4 * t.at.gates,
      4 * t.at.cs,
      4 * t.at.hs,
      4 * scratch.at.wpanel,
      4 * scratch.at.upanel,
    );
    const h = this.#heap.slice(scratch.at.hout, scratch.at.hout + B * R * H);
    const saved = new Tape({ ...s }, t.end - this.#base);
    this.#pending = saved;
    return { h, tape: saved };
  }

  #forwardChunk(
    s: LstmShape,
    x: Float32Array,
    W: Float32Array,
    U: Float32Array,
    bias: Float32Array,
  ): Float32Array {
    const { batch: B, steps: T, inputs: D, units: H, directions: R } = s;
    const G = 4 * H;
    // Leave a pending tape untouched: the scratch goes after it.
    const start = this.#pending && !this.#pending.consumed && this.#pending.spill === null
      ? this.#base + this.#pending.floats
      : this.#base;
    const m = layout(start, {
      x: B * T * D,
      W: R * D * G,
      U: R * H * G,
      bias: R * G,
      hout: B * R * H,
      gates: B * G,
      cs: 2 * B * H,
      hs: 2 * B * H,
      wpanel: D * G,
      upanel: H * G,
    });
    const heap = this.#ensure(m.end, `a forward pass of batch ${B}`);
    heap.set(x, m.at.x);
    heap.set(W, m.at.W);
    heap.set(U, m.at.U);
    heap.set(bias, m.at.bias);
    this.#exports.lstm_forward(
      B,
      T,
      D,
      H,
      R,
      0,
      4 * m.at.x,
      4 * m.at.W,
      4 * m.at.U,
      4 * m.at.bias,
      4 * m.at.hout,
      4 * m.at.gates,
      4 * m.at.cs,
      4 * m.at.hs,
      4 * m.at.wpanel,
      4 * m.at.upanel,
    );
    return this.#heap.slice(m.at.hout, m.at.hout + B * R * H);
  }

  /** BPTT for a tape from `forward`, given dL/d(final h) [batch, directions * units]. Each tape
   * can be differentiated once. */
  backward(tape: Tape, dy: Float32Array): {
    dx: Float32Array;
    dW: Float32Array;
    dU: Float32Array;
    db: Float32Array;
  } {
    if (tape.consumed) throw new Error("lstm kernel: tape already differentiated");
    const s = tape.shape;
    const { batch: B, steps: T, inputs: D, units: H, directions: R } = s;
    const G = 4 * H;
    expectLength("dy", dy, B * R * H);
    const t = layout(this.#base, tapeSizes(s));
    if (this.#pending !== tape) {
      // Its state was spilled: bring it back (spilling whatever tape is pending now).
      this.#spillPending();
      const heap = this.#ensure(t.end, `the backward pass of batch ${B}`);
      if (!tape.spill || tape.spill.length !== tape.floats) {
        throw new Error("lstm kernel: tape state lost");
      }
      heap.set(tape.spill, this.#base);
      tape.spill = null;
      this.#pending = tape;
    }
    const m = layout(t.end, {
      dy: B * R * H,
      dx: B * T * D,
      dW: R * D * G,
      dU: R * H * G,
      db: R * G,
      xhT: (D + H) * T * B,
      dZ: T * B * G,
      dWU: (D + H) * G,
      UT: G * H,
      WT: G * D,
      dxs: T * B * D,
      dh: B * H,
      dc: B * H,
      dhn: B * H,
      panel: panelFloats(s),
      upanel: G * H,
    });
    const heap = this.#ensure(m.end, `the backward pass of batch ${B}`);
    heap.set(dy, m.at.dy);
    const p = (k: string) => 4 * m.at[k];
    this.#exports.lstm_backward(
      B,
      T,
      D,
      H,
      R,
      4 * t.at.x,
      4 * t.at.W,
      4 * t.at.U,
      4 * t.at.gates,
      4 * t.at.cs,
      4 * t.at.hs,
      p("dy"),
      p("dx"),
      p("dW"),
      p("dU"),
      p("db"),
      p("xhT"),
      p("dZ"),
      p("dWU"),
      p("UT"),
      p("WT"),
      p("dxs"),
      p("dh"),
      p("dc"),
      p("dhn"),
      p("panel"),
      p("upanel"),
    );
    tape.consumed = true;
    this.#pending = null;
    const read = (k: string, n: number) => this.#heap.slice(m.at[k], m.at[k] + n);
    return {
      dx: read("dx", B * T * D),
      dW: read("dW", R * D * G),
      dU: read("dU", R * H * G),
      db: read("db", R * G),
    };
  }
}

function expectLength(name: string, a: Float32Array, n: number): void {
  if (!(a instanceof Float32Array) || a.length !== n) {
    throw new Error(
      `lstm kernel: ${name} has ${a?.length} values, expected ${n} (Float32Array)`,
    );
  }
}

let shared: LstmKernel | null = null;

/** The kernel instance of this thread (each worker gets its own). */
export function lstmKernel(): LstmKernel {
  shared ??= new LstmKernel();
  return shared;
}
