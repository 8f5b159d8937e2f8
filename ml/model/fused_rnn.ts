// Fused (Bi)LSTM: every time step of both directions forward, and the whole BPTT backward, as ONE
// tf.customGrad op whose forward and backward are each ONE call into a WebAssembly SIMD kernel
// (ml/kernels/lstm.c via ml/kernels/lstm_kernel.ts): input projections, the recurrence with exact
// sigmoid/tanh, and all weight/input gradients run inside the kernel, so no per-step tfjs kernel
// dispatch remains. With the kernel on two threads (setLstmThreads / IOMT_SFL_LSTM_THREADS) the two
// directions run at the same time, with bit-identical results. Checked against referenceRnn (plain ops + autodiff) in
// tests/ml/model/fused_rnn_test.ts. Gate order i, f, g, o (Keras/PyTorch).
import * as tf from "@tensorflow/tfjs";
import { lstmKernel } from "../kernels/lstm_kernel.ts";
import { floatsView } from "../tf/views.ts";

/** Shapes: x [batch, steps, inputs]; W [directions, inputs, 4*units]; U [directions, units,
 * 4*units]; b [directions, 4*units]. Returns the final hidden state of every direction,
 * concatenated: [batch, directions * units] (direction 1 reads the sequence reversed). */
export type RnnOp = (x: tf.Tensor3D, W: tf.Tensor3D, U: tf.Tensor3D, b: tf.Tensor2D) => tf.Tensor2D;

export const RNN_STEPS_MAX = 4096;

function checkShapes(x: tf.Tensor, W: tf.Tensor, U: tf.Tensor, b: tf.Tensor) {
  if (x.rank !== 3 || W.rank !== 3 || U.rank !== 3 || b.rank !== 2) {
    throw new Error(
      `fusedRnn: ranks x=${x.rank} W=${W.rank} U=${U.rank} b=${b.rank}, expected 3,3,3,2`,
    );
  }
  const [batch, steps, inputs] = x.shape;
  const [directions, wInputs, gates] = W.shape;
  const units = gates / 4;
  const ok = (directions === 1 || directions === 2) && wInputs === inputs &&
    Number.isInteger(units) && U.shape[0] === directions && U.shape[1] === units &&
    U.shape[2] === gates && b.shape[0] === directions && b.shape[1] === gates;
  if (!ok) {
    throw new Error(
      `fusedRnn: shapes x=[${x.shape}] W=[${W.shape}] U=[${U.shape}] b=[${b.shape}] are inconsistent`,
    );
  }
  if (steps < 1 || steps > RNN_STEPS_MAX) {
    throw new Error(`fusedRnn: ${steps} steps, limit 1..${RNN_STEPS_MAX}`);
  }
  return { batch, steps, inputs, directions, units, gates };
}

/** True while a gradient tape records (inside tf.grads / engine.gradients). tfjs does not export
 * this; `state.gradientDepth` is what its own isTapeOn() reads (tfjs-core 4.22 engine.ts). */
function gradientTapeActive(): boolean {
  const state = (tf.engine() as unknown as { state?: { gradientDepth?: number } }).state;
  return (state?.gradientDepth ?? 1) > 0;
}

/** The values of `t` for the kernel, which copies them into its own memory at once (a heap view
 * on the wasm backend: no allocation). */
function floats(t: tf.Tensor, name: string): Float32Array {
  return floatsView(t, `fusedRnn: ${name}`);
}

const fused = tf.customGrad(
  ((
    x: tf.Tensor3D,
    W: tf.Tensor3D,
    U: tf.Tensor3D,
    b: tf.Tensor2D,
    save: tf.GradSaveFunc,
  ) => {
    const { batch, steps, inputs, directions, units } = checkShapes(x, W, U, b);
    const shape = { batch, steps, inputs, units, directions };
    const kernel = lstmKernel();
    const run = kernel.forward(
      shape,
      floats(x, "x"),
      floats(W, "W"),
      floats(U, "U"),
      floats(b, "b"),
      gradientTapeActive(),
    );
    save([]); // the saved state lives in the kernel's memory (run.tape), not in tensors
    const value = tf.tensor2d(run.h, [batch, directions * units]);
    const gradFunc = (dy: tf.Tensor2D) => {
      if (!run.tape) throw new Error("fusedRnn: gradient requested for a pass run without a tape");
      if (dy.shape[0] !== batch || dy.shape[1] !== directions * units) {
        throw new Error(
          `fusedRnn: gradient [${dy.shape}] for output [${batch}, ${directions * units}]`,
        );
      }
      // Views into the kernel's memory, copied into tensors before its next call.
      const g = kernel.backward(run.tape, floats(dy, "dy"), { views: true });
      return [
        tf.tensor3d(g.dx, [batch, steps, inputs]),
        tf.tensor3d(g.dW, [directions, inputs, 4 * units]),
        tf.tensor3d(g.dU, [directions, units, 4 * units]),
        tf.tensor2d(g.db, [directions, 4 * units]),
      ];
    };
    return { value, gradFunc };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor2D;

/** The fused op (forward and gradient), on the WebAssembly SIMD kernel. */
export const fusedRnn: RnnOp = (x, W, U, b) => fused(x, W, U, b);

/** Reference (Bi)LSTM from plain tfjs ops, differentiated by tfjs autodiff. Slow; for tests. */
export const referenceRnn: RnnOp = (x, W, U, b) => {
  const { batch: B, steps: T, directions: R, units: H } = checkShapes(x, W, U, b);
  const finals: tf.Tensor2D[] = [];
  for (let d = 0; d < R; d++) {
    const Wd = W.slice([d, 0, 0], [1, W.shape[1], 4 * H]).reshape([
      W.shape[1],
      4 * H,
    ]) as tf.Tensor2D;
    const Ud = U.slice([d, 0, 0], [1, H, 4 * H]).reshape([H, 4 * H]) as tf.Tensor2D;
    const bd = b.slice([d, 0], [1, 4 * H]).reshape([4 * H]);
    let h: tf.Tensor2D = tf.zeros([B, H]);
    let c: tf.Tensor2D = tf.zeros([B, H]);
    for (let step = 0; step < T; step++) {
      const t = d === 0 ? step : T - 1 - step;
      const xt = x.slice([0, t, 0], [B, 1, x.shape[2]]).reshape([B, x.shape[2]]) as tf.Tensor2D;
      const z = tf.matMul(xt, Wd).add(tf.matMul(h, Ud)).add(bd);
      const [zi, zf, zg, zo] = tf.split(z, 4, 1);
      c = tf.sigmoid(zf).mul(c).add(tf.sigmoid(zi).mul(tf.tanh(zg))) as tf.Tensor2D;
      h = tf.sigmoid(zo).mul(tf.tanh(c)) as tf.Tensor2D;
    }
    finals.push(h);
  }
  return (R === 1 ? finals[0] : tf.concat(finals, 1)) as tf.Tensor2D;
};
