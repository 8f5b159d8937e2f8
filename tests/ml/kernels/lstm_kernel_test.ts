// The LSTM kernel on two threads (a worker runs one direction, or half the rows of a unidirectional
// forward-only pass, on the shared memory) gives bit-identical results to one thread, also when
// the caller takes a call back from a worker that has not begun it, and falls back to the calling
// thread when its worker is gone.
import assert from "node:assert/strict";
import {
  configureLstmThreads,
  LSTM_THREADS_ENV,
  LstmKernel,
  type LstmShape,
  parseLstmThreads,
} from "../../../ml/kernels/lstm_kernel.ts";
import { prng } from "../../../ml/model/random.ts";
import { assertSameBits } from "../fixtures.ts";

function inputs(s: LstmShape, seed: number) {
  const random = prng(seed);
  const make = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
  const { batch: B, steps: T, inputs: D, units: H, directions: R } = s;
  return {
    x: make(B * T * D, 1),
    W: make(R * D * 4 * H, 0.3),
    U: make(R * H * 4 * H, 0.3),
    bias: make(R * 4 * H, 0.3),
    dy: make(B * R * H, 1 / B),
  };
}

/** Everything the kernel computes for one shape: taped forward, backward, forward-only. */
function runAll(kernel: LstmKernel, s: LstmShape, seed: number): Float32Array[] {
  const { x, W, U, bias, dy } = inputs(s, seed);
  const taped = kernel.forward(s, x, W, U, bias, true);
  const g = kernel.backward(taped.tape!, dy);
  const only = kernel.forward(s, x, W, U, bias, false);
  return [taped.h, g.dx, g.dW, g.dU, g.db, only.h];
}

function assertBitIdentical(a: Float32Array[], b: Float32Array[], what: string) {
  assert.equal(a.length, b.length);
  a.forEach((x, k) => assertSameBits(x, b[k], `${what}: output ${k}`));
}

// [directions, batch, steps, inputs, units]: odd sizes, units not a multiple of 4, batch 1, a
// unidirectional batch large enough to be split by rows, the default model's edge at batch 256.
const SHAPES: [number, number, number, number, number][] = [
  [2, 1, 3, 2, 5],
  [2, 7, 5, 3, 3],
  [2, 13, 6, 5, 9],
  [1, 33, 4, 3, 6],
  [1, 77, 5, 4, 8],
  [2, 256, 22, 32, 64],
];

Deno.test("lstm kernel: two threads give bit-identical values and gradients to one", () => {
  const one = new LstmKernel({ threads: 1 });
  // reclaim: false, so that every call handed to the worker is computed there.
  const two = new LstmKernel({ threads: 2, reclaim: false });
  try {
    assert.equal(one.waitForThreads(), 1);
    assert.equal(two.waitForThreads(), 2, "the worker thread did not start");
    SHAPES.forEach(([directions, batch, steps, inputs, units], k) => {
      const s = { batch, steps, inputs, units, directions };
      const calls = two.threadCalls;
      assertBitIdentical(runAll(one, s, k + 1), runAll(two, s, k + 1), JSON.stringify(s));
      // Bidirectional: forward, backward and forward-only each hand a direction to the worker;
      // unidirectional: only the forward-only pass (rows split).
      const expected = directions === 2 ? 3 : batch >= 32 ? 1 : 0;
      assert.equal(
        two.threadCalls - calls,
        expected,
        `calls on the worker for ${JSON.stringify(s)}`,
      );
    });
    assert.equal(one.threadCalls, 0);
    assert.equal(two.reclaimedCalls, 0);
  } finally {
    one.close();
    two.close();
  }
});

Deno.test("lstm kernel: with reclaiming (the default) results are the same whoever runs a call", () => {
  const one = new LstmKernel({ threads: 1 });
  const two = new LstmKernel({ threads: 2 });
  try {
    assert.equal(two.waitForThreads(), 2, "the worker thread did not start");
    for (let k = 0; k < 20; k++) {
      const s = { batch: 16 + k, steps: 5, inputs: 4, units: 8, directions: 2 };
      assertBitIdentical(runAll(one, s, 100 + k), runAll(two, s, 100 + k), JSON.stringify(s));
    }
    assert.equal(two.threadCalls, 60);
    assert.ok(two.reclaimedCalls <= two.threadCalls);
  } finally {
    one.close();
    two.close();
  }
});

Deno.test("lstm kernel: interleaved tapes on two threads keep their own state", () => {
  const one = new LstmKernel({ threads: 1 });
  const two = new LstmKernel({ threads: 2, reclaim: false });
  try {
    assert.equal(two.waitForThreads(), 2, "the worker thread did not start");
    const s = { batch: 9, steps: 4, inputs: 3, units: 5, directions: 2 };
    const results = [one, two].map((kernel) => {
      const a = inputs(s, 11);
      const b = inputs(s, 12);
      const ta = kernel.forward(s, a.x, a.W, a.U, a.bias, true);
      const tb = kernel.forward(s, b.x, b.W, b.U, b.bias, true); // spills ta
      const ga = kernel.backward(ta.tape!, a.dy);
      const gb = kernel.backward(tb.tape!, b.dy);
      return [ta.h, tb.h, ga.dx, ga.dW, ga.dU, ga.db, gb.dx, gb.dW, gb.dU, gb.db];
    });
    assertBitIdentical(results[0], results[1], "interleaved");
  } finally {
    one.close();
    two.close();
  }
});

Deno.test("lstm kernel: after close, a two-thread kernel computes alone with the same result", () => {
  const kernel = new LstmKernel({ threads: 2, reclaim: false });
  try {
    assert.equal(kernel.waitForThreads(), 2, "the worker thread did not start");
    const s = { batch: 8, steps: 3, inputs: 2, units: 4, directions: 2 };
    const threaded = runAll(kernel, s, 5);
    const calls = kernel.threadCalls;
    kernel.close();
    assert.equal(kernel.threads, 1);
    assertBitIdentical(runAll(kernel, s, 5), threaded, "after close");
    assert.equal(kernel.threadCalls, calls, "no call went to a closed worker");
  } finally {
    kernel.close();
  }
});

Deno.test("lstm kernel: thread counts other than 1 and 2 are refused", () => {
  assert.throws(() => new LstmKernel({ threads: 3 }), /threads=3 must be 1 or 2/);
  assert.throws(() => parseLstmThreads("0", LSTM_THREADS_ENV), /IOMT_SFL_LSTM_THREADS=0/);
  assert.throws(() => parseLstmThreads("two", LSTM_THREADS_ENV), /must be 1 or 2/);
  assert.equal(parseLstmThreads(" 2 ", LSTM_THREADS_ENV), 2);
  if (!Deno.env.get(LSTM_THREADS_ENV)) {
    assert.throws(() => configureLstmThreads(5), /threads=5/);
    assert.equal(configureLstmThreads(1), 1);
  }
});
