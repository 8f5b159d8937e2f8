// The fused (Bi)LSTM WebAssembly kernel (ml/kernels/lstm.c): its own small wasm instance on its
// own shared memory, instantiated synchronously from the embedded bytes (no file access needed, so
// it works the same under Deno, Bun and in the compiled binary). Plain Float32Arrays in and out;
// the tfjs op around it is ml/model/fused_rnn.ts.
//
// Threads: with `threads: 2` a worker thread (ml/kernels/lstm_thread.ts) instantiates the same
// module on the same memory, and each call of a bidirectional LSTM runs the backward (time-reversed)
// direction there while the calling thread runs the forward direction; the caller blocks
// (Atomics.wait) until both are done, so the API stays synchronous. Each direction's arithmetic is
// exactly the single-thread arithmetic (own scratch, same code), so results are bit-identical for
// any thread count; until the worker reports ready, or if it cannot be started, calls run on the
// calling thread alone. A unidirectional LSTM splits the batch rows of forward-only (inference)
// passes instead; its differentiable passes stay on one thread.
//
// Memory: [heap base | worker stack | tape region | scratch]. A forward pass that will be
// differentiated leaves its saved state (x, W, U, gates, c, h) in the tape region and returns a
// Tape; the backward pass reads it in place. If another differentiable forward pass comes first,
// the older tape is copied out to JS ("spilled") and copied back when its backward pass runs, so
// tapes never clobber each other; an abandoned tape is simply garbage-collected.
import process from "node:process";
import { LSTM_WASM_BASE64 } from "./lstm_wasm.generated.ts";
import {
  decodeBase64,
  growKernelMemory,
  layout as layoutAligned,
  newKernelMemory,
} from "./wasm_memory.ts";
import {
  type KernelCall,
  type LstmThread,
  OP_BACKWARD,
  OP_FORWARD,
  startLstmThread,
} from "./lstm_thread.ts";

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

/** Stack of the worker thread's instance (the linker's stack-size). */
const WORKER_STACK_BYTES = 65536;
/** lstm.c pads the units to a multiple of 4 (its gate columns are interleaved per 4 units). */
function paddedUnits(s: LstmShape): number {
  return Math.ceil(s.units / 4) * 4;
}

/** Floats of a forward panel: [W; U] packed, interleaved, plus the interleaved bias. */
function forwardPanelFloats(s: LstmShape): number {
  const Hp = paddedUnits(s);
  return (s.inputs + Hp) * 4 * Hp + 4 * Hp;
}

/** Rows per block of lstm.c's backward recurrence (BWD_ROWS). */
const BACKWARD_BLOCK_ROWS = 32;

interface Exports {
  __heap_base: WebAssembly.Global;
  lstm_forward_dir(...args: number[]): void;
  lstm_backward_dir(...args: number[]): void;
  lstm_backward_dx(
    B: number,
    T: number,
    D: number,
    R: number,
    dxs0: number,
    dxs1: number,
    dx: number,
  ): void;
}

/** Offsets in floats, 16-byte aligned, of named buffers laid out one after another. */
function layout(start: number, sizes: Record<string, number>) {
  return layoutAligned(start, sizes, 4);
}

/** A differentiable forward pass's saved state. */
export class Tape {
  spill: Float32Array | null = null;
  consumed = false;
  constructor(readonly shape: LstmShape, readonly floats: number) {}
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

function tapeSizes(s: LstmShape) {
  const { batch: B, steps: T, inputs: D, units: H, directions: R } = s;
  const G = 4 * H;
  const Hp = paddedUnits(s);
  return {
    x: B * T * D,
    W: R * D * G,
    U: R * H * G,
    gates: R * T * B * 4 * Hp,
    cs: R * T * B * Hp,
    hs: R * T * B * Hp,
    tcs: R * T * B * Hp,
  };
}

/** Options of one kernel instance. */
export interface LstmKernelOptions {
  /** Another build of lstm.c (for A/B measurements); default the embedded one. */
  bytes?: Uint8Array;
  /** 1 (default): everything on the calling thread; 2: a worker thread takes one direction (or
   * half the rows of a unidirectional forward-only pass). */
  threads?: number;
  /** Default true: when the caller has done its share and the worker has not yet begun its call
   * (no free core), the caller runs that call itself instead of waiting. False: always wait (tests
   * that must know the worker computed). Results are the same either way. */
  reclaim?: boolean;
}

/** Rows below which a unidirectional forward-only pass is not split between threads. */
const SPLIT_ROWS_MIN = 32;

export class LstmKernel {
  readonly #exports: Exports;
  readonly #memory: WebAssembly.Memory;
  readonly #base: number; // floats
  #heap: Float32Array;
  #pending: Tape | null = null;
  #thread: LstmThread | null = null;
  readonly #reclaim: boolean;
  #threadCalls = 0;
  #reclaimed = 0;

  constructor(options: LstmKernelOptions = {}) {
    const bytes = options.bytes ?? decodeBase64(LSTM_WASM_BASE64);
    const threads = options.threads ?? 1;
    this.#reclaim = options.reclaim ?? true;
    if (threads !== 1 && threads !== 2) {
      throw new Error(`lstm kernel: threads=${threads} must be 1 or 2`);
    }
    const module = new WebAssembly.Module(bytes as BufferSource);
    this.#memory = newKernelMemory();
    const instance = new WebAssembly.Instance(module, { env: { memory: this.#memory } });
    this.#exports = instance.exports as unknown as Exports;
    const heapBase = this.#exports.__heap_base.value as number;
    // The worker's stack (the caller's is below the heap base, where the linker put it).
    const stackBottom = Math.ceil(heapBase / 16) * 16;
    this.#base = (stackBottom + WORKER_STACK_BYTES) / 4;
    this.#heap = new Float32Array(this.#memory.buffer);
    if (threads === 2) {
      this.#thread = startLstmThread(bytes, this.#memory, stackBottom + WORKER_STACK_BYTES);
    }
  }

  /** Threads this instance computes on right now (2 once its worker is ready). */
  get threads(): number {
    return this.#thread?.ready() ? 2 : 1;
  }

  /** Calls handed to the worker thread so far (including those taken back). */
  get threadCalls(): number {
    return this.#threadCalls;
  }

  /** Calls taken back from the worker thread (it had not begun them) and run by the caller. */
  get reclaimedCalls(): number {
    return this.#reclaimed;
  }

  /** Waits (up to `timeoutMs`) until the worker thread, if any, is ready; returns `threads`. */
  waitForThreads(timeoutMs = 5000): number {
    this.#thread?.waitReady(timeoutMs);
    return this.threads;
  }

  /** Stops the worker thread (calls then run on the calling thread). */
  close(): void {
    this.#thread?.close();
    this.#thread = null;
  }

  /** Bytes of wasm memory currently reserved by the instance. */
  get memoryBytes(): number {
    return this.#memory.buffer.byteLength;
  }

  #ensure(endFloats: number, what: string): Float32Array {
    const memory = this.#memory;
    growKernelMemory(memory, endFloats * 4, LSTM_KERNEL_MEMORY_MAX_BYTES, "lstm kernel", what);
    if (this.#heap.byteLength !== memory.buffer.byteLength) {
      this.#heap = new Float32Array(memory.buffer);
    }
    return this.#heap;
  }

  /** Runs `calls` (one per direction or row range, each with its own scratch): the last on the
   * worker thread when there is one and it is ready, the others here. */
  #run(calls: KernelCall[]): void {
    const thread = this.#thread;
    if (calls.length > 1 && thread?.ready()) {
      const last = calls[calls.length - 1];
      thread.start(last);
      this.#threadCalls++;
      let error: unknown = null;
      try {
        for (const call of calls.slice(0, -1)) this.#call(call);
      } catch (e) {
        error = e;
      }
      if (this.#reclaim && thread.reclaim()) {
        // The worker had not begun: run its call here (it will not touch the memory for it).
        this.#reclaimed++;
        if (error) throw error;
        this.#call(last);
        return;
      }
      // Wait even after an error: the worker writes into this memory until it is done.
      const failure = thread.finish();
      if (error) throw error;
      if (failure) {
        this.#thread = null;
        throw new Error(failure);
      }
      return;
    }
    for (const call of calls) this.#call(call);
  }

  #call(call: KernelCall): void {
    const e = this.#exports;
    if (call.op === OP_FORWARD) e.lstm_forward_dir(...call.args);
    else e.lstm_backward_dir(...call.args);
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
    const Hp = paddedUnits(s);
    const scratch = layout(t.end, {
      hout: B * R * H,
      bias: R * G,
      panel0: forwardPanelFloats(s),
      panel1: forwardPanelFloats(s),
    });
    const heap = this.#ensure(scratch.end, `a differentiable pass of batch ${B}`);
    heap.set(x, t.at.x);
    heap.set(W, t.at.W);
    heap.set(U, t.at.U);
    heap.set(bias, scratch.at.bias);
    const calls: KernelCall[] = [];
    for (let d = 0; d < R; d++) {
      calls.push({
        op: OP_FORWARD,
        args: [
          d,
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
          4 * (t.at.gates + d * T * B * 4 * Hp),
          4 * (t.at.cs + d * T * B * Hp),
          4 * (t.at.hs + d * T * B * Hp),
          4 * (t.at.tcs + d * T * B * Hp),
          4 * scratch.at[`panel${d}`],
        ],
      });
    }
    this.#run(calls);
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
    // Two parts, each with its own scratch: one per direction, or (one direction) two row ranges
    // when a worker thread can take one of them.
    const splitRows = R === 1 && B >= SPLIT_ROWS_MIN && this.#thread?.ready() === true;
    const parts = R === 2
      ? [{ d: 0, row: 0, rows: B }, { d: 1, row: 0, rows: B }]
      : splitRows
      ? [{ d: 0, row: 0, rows: B >> 1 }, { d: 0, row: B >> 1, rows: B - (B >> 1) }]
      : [{ d: 0, row: 0, rows: B }];
    const Hp = paddedUnits(s);
    const m = layout(start, {
      x: B * T * D,
      W: R * D * G,
      U: R * H * G,
      bias: R * G,
      hout: B * R * H,
      cs0: 2 * B * Hp,
      hs0: 2 * B * Hp,
      panel0: forwardPanelFloats(s),
      cs1: 2 * B * Hp,
      hs1: 2 * B * Hp,
      panel1: forwardPanelFloats(s),
    });
    const heap = this.#ensure(m.end, `a forward pass of batch ${B}`);
    heap.set(x, m.at.x);
    heap.set(W, m.at.W);
    heap.set(U, m.at.U);
    heap.set(bias, m.at.bias);
    this.#run(parts.map(({ d, row, rows }, k) => ({
      op: OP_FORWARD,
      args: [
        d,
        rows,
        T,
        D,
        H,
        R,
        0,
        4 * (m.at.x + row * T * D),
        4 * m.at.W,
        4 * m.at.U,
        4 * m.at.bias,
        4 * (m.at.hout + row * R * H),
        0, // no saved activations
        4 * m.at[`cs${k}`],
        4 * m.at[`hs${k}`],
        0, // no saved tanh(c)
        4 * m.at[`panel${k}`],
      ],
    })));
    return this.#heap.slice(m.at.hout, m.at.hout + B * R * H);
  }

  /** BPTT for a tape from `forward`, given dL/d(final h) [batch, directions * units]. Each tape
   * can be differentiated once. With `views`, the results are views into the kernel's memory,
   * valid only until its next call (copy them at once); by default they are copies. */
  backward(tape: Tape, dy: Float32Array, options: { views?: boolean } = {}): {
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
    // Per direction d: its own scratch (suffix d), so that the directions can run concurrently.
    const Hp = paddedUnits(s);
    const Gp = 4 * Hp;
    const perDirection = (d: number) => ({
      [`dWU${d}`]: (D + Hp) * Gp,
      [`dzb${d}`]: BACKWARD_BLOCK_ROWS * Gp,
      [`utp${d}`]: Math.ceil(Hp / 8) * 8 * Gp,
      [`wtp${d}`]: Math.ceil(D / 8) * 8 * Gp,
      [`dxs${d}`]: B * T * D,
      [`dh${d}`]: B * Hp,
      [`dc${d}`]: B * Hp,
      [`dhn${d}`]: B * Hp,
      [`dbIl${d}`]: Gp,
    });
    const m = layout(t.end, {
      dy: B * R * H,
      dx: B * T * D,
      dW: R * D * G,
      dU: R * H * G,
      db: R * G,
      ...perDirection(0),
      ...(R === 2 ? perDirection(1) : {}),
    });
    const heap = this.#ensure(m.end, `the backward pass of batch ${B}`);
    heap.set(dy, m.at.dy);
    const p = (k: string) => 4 * m.at[k];
    const calls: KernelCall[] = [];
    for (let d = 0; d < R; d++) {
      calls.push({
        op: OP_BACKWARD,
        args: [
          d,
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
          4 * t.at.tcs,
          p("dy"),
          p("dW"),
          p("dU"),
          p("db"),
          p(`dWU${d}`),
          p(`dzb${d}`),
          p(`utp${d}`),
          p(`wtp${d}`),
          p(`dxs${d}`),
          p(`dh${d}`),
          p(`dc${d}`),
          p(`dhn${d}`),
          p(`dbIl${d}`),
        ],
      });
    }
    this.#run(calls);
    this.#exports.lstm_backward_dx(B, T, D, R, p("dxs0"), R === 2 ? p("dxs1") : 0, p("dx"));
    tape.consumed = true;
    this.#pending = null;
    // views: subarrays of the kernel's memory, valid until its next call (no allocation).
    const read = (k: string, n: number) =>
      options.views
        ? this.#heap.subarray(m.at[k], m.at[k] + n)
        : this.#heap.slice(m.at[k], m.at[k] + n);
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

/** Environment variable that sets the kernel's thread count (1 or 2), above any default. */
export const LSTM_THREADS_ENV = "IOMT_SFL_LSTM_THREADS";

let shared: LstmKernel | null = null;
let configuredThreads = 1;

/** Parses a thread count (1 or 2); `what` names its source in the error. */
export function parseLstmThreads(value: string | number, what: string): number {
  const n = typeof value === "number" ? value : Number(value.trim());
  if (n !== 1 && n !== 2) {
    throw new Error(`${what}=${value}: the LSTM kernel's threads must be 1 or 2`);
  }
  return n;
}

/** Sets the thread count of this thread's kernel (from now on; an existing instance with another
 * count is closed and replaced). 2 needs a second core to help: on a machine with one core it is
 * lowered to 1. */
export function setLstmThreads(threads: number): void {
  const n = Math.min(parseLstmThreads(threads, "threads"), Math.max(1, availableCores()));
  if (n === configuredThreads) return;
  configuredThreads = n;
  shared?.close();
  shared = null;
}

/** Applies the thread count for this thread's kernel: the environment variable IOMT_SFL_LSTM_THREADS
 * if set, else `preferred`, else what was set before (initially 1). Returns the count in effect. */
export function configureLstmThreads(preferred?: number): number {
  const env = process.env[LSTM_THREADS_ENV];
  if (env !== undefined && env !== "") setLstmThreads(parseLstmThreads(env, LSTM_THREADS_ENV));
  else if (preferred !== undefined) setLstmThreads(preferred);
  return configuredThreads;
}

/** The configured thread count of this thread's kernel. */
export function lstmThreads(): number {
  return configuredThreads;
}

function availableCores(): number {
  return typeof navigator !== "undefined" && navigator.hardwareConcurrency
    ? navigator.hardwareConcurrency
    : 1;
}

/** The kernel instance of this thread (each worker gets its own). */
export function lstmKernel(): LstmKernel {
  shared ??= new LstmKernel({ threads: configuredThreads });
  return shared;
}
