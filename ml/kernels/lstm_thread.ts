// The LSTM kernel's second thread: a worker (node:worker_threads, which Deno and Bun both provide,
// started from source text so that nothing has to be found on disk — the compiled binary has no
// files beside it) that instantiates the same wasm module on the same shared memory and runs one
// kernel call at a time, handed over through a control block of Int32s:
//
//   the caller writes the call (op, args), bumps REQUEST and notifies; the worker claims it (CLAIM
//   from REQUEST - 1 to REQUEST, compare-and-swap), runs it, stores its status, sets DONE =
//   REQUEST and notifies; the caller meanwhile runs its own share and then either claims the call
//   itself, if the worker has not started it yet (on a loaded machine the worker may not get a
//   core: the caller then runs it rather than wait), or waits (Atomics.wait: allowed on the main
//   thread in Deno and Bun) for DONE.
//
// The worker is unref'd: it never keeps a process alive. If it cannot be started, or has not
// reported ready yet, `ready()` is false and the kernel computes on the calling thread alone.
import { Worker } from "node:worker_threads";

export const OP_FORWARD = 1;
export const OP_BACKWARD = 2;
const OP_QUIT = 3;

/** One call of lstm_forward_dir / lstm_backward_dir (byte pointers into the shared memory). */
export interface KernelCall {
  op: typeof OP_FORWARD | typeof OP_BACKWARD;
  args: number[];
}

// Control block layout (Int32 indices).
const REQUEST = 0;
const DONE = 1;
const READY = 2; // 0 starting, 1 ready, -1 failed
const STATUS = 3; // of the last call: 0 ok, 1 failed
const OP = 4;
const NARGS = 5;
const CLAIM = 6; // the last request claimed, by the worker or (taken back) by the caller
const ARGS = 8;
const ARGS_MAX = 32;
const CONTROL_INTS = ARGS + ARGS_MAX;

/** How long the caller waits for one call of the worker before giving up on it. Far above any
 * call's duration (the largest, a backward pass of batch 4096, takes ~2 s of CPU). */
export const THREAD_CALL_TIMEOUT_MS = 120_000;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { bytes, memory, control, stackTop } = workerData;
const ctl = new Int32Array(control);
let kernel;
try {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  kernel = instance.exports;
  kernel.__stack_pointer.value = stackTop;
  Atomics.store(ctl, ${READY}, 1);
} catch (error) {
  Atomics.store(ctl, ${READY}, -1);
}
Atomics.notify(ctl, ${READY});
let seen = 0;
while (kernel) {
  Atomics.wait(ctl, ${REQUEST}, seen);
  seen = Atomics.load(ctl, ${REQUEST});
  if (ctl[${OP}] === ${OP_QUIT}) break;
  // Taken back by the caller: nothing to do (the caller does not wait for DONE then).
  if (Atomics.compareExchange(ctl, ${CLAIM}, seen - 1, seen) !== seen - 1) continue;
  const op = ctl[${OP}];
  const args = Array.from(ctl.subarray(${ARGS}, ${ARGS} + ctl[${NARGS}]));
  try {
    if (op === ${OP_FORWARD}) kernel.lstm_forward_dir(...args);
    else kernel.lstm_backward_dir(...args);
    ctl[${STATUS}] = 0;
  } catch (error) {
    ctl[${STATUS}] = 1;
  }
  Atomics.store(ctl, ${DONE}, seen);
  Atomics.notify(ctl, ${DONE});
}
`;

export interface LstmThread {
  /** True once the worker has instantiated the module (never blocks). */
  ready(): boolean;
  /** Blocks up to timeoutMs for the worker to become ready (or fail). */
  waitReady(timeoutMs: number): void;
  /** Hands one call to the worker. */
  start(call: KernelCall): void;
  /** Takes the call handed over by `start` back if the worker has not begun it: true if so (the
   * caller must then run it itself and not call `finish`). */
  reclaim(): boolean;
  /** Blocks until the call handed over by `start` is done; returns an error message if it failed
   * or timed out (the thread is then unusable and has been stopped), else null. */
  finish(): string | null;
  close(): void;
}

/** Starts the worker; returns null where workers or shared memory are unavailable. */
export function startLstmThread(
  bytes: Uint8Array,
  memory: WebAssembly.Memory,
  stackTop: number,
): LstmThread | null {
  let control: Int32Array;
  let worker: Worker;
  try {
    control = new Int32Array(new SharedArrayBuffer(CONTROL_INTS * 4));
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { bytes, memory, control: control.buffer, stackTop },
    });
  } catch {
    return null;
  }
  worker.unref();
  let failed = false;
  let closed = false;
  worker.on("error", () => {
    failed = true;
  });
  let request = 0;
  const close = () => {
    if (closed) return;
    closed = true;
    control[OP] = OP_QUIT;
    Atomics.store(control, REQUEST, ++request);
    Atomics.notify(control, REQUEST);
    void worker.terminate();
  };
  return {
    ready: () => !closed && !failed && Atomics.load(control, READY) === 1,
    waitReady(timeoutMs: number) {
      if (!closed) Atomics.wait(control, READY, 0, timeoutMs);
    },
    start(call: KernelCall) {
      if (call.args.length > ARGS_MAX) throw new Error("lstm thread: too many arguments");
      control[OP] = call.op;
      control[NARGS] = call.args.length;
      control.set(call.args, ARGS);
      Atomics.store(control, REQUEST, ++request);
      Atomics.notify(control, REQUEST);
    },
    reclaim() {
      return Atomics.compareExchange(control, CLAIM, request - 1, request) === request - 1;
    },
    finish() {
      const deadline = performance.now() + THREAD_CALL_TIMEOUT_MS;
      while (Atomics.load(control, DONE) !== request) {
        const left = deadline - performance.now();
        if (left <= 0) {
          close();
          return `lstm kernel: the worker thread did not finish a call within ${THREAD_CALL_TIMEOUT_MS} ms; stopped it (set threads to 1)`;
        }
        Atomics.wait(control, DONE, request - 1, left);
      }
      if (control[STATUS] !== 0) {
        close();
        return "lstm kernel: a call failed on the worker thread; stopped it";
      }
      return null;
    },
    close,
  };
}
