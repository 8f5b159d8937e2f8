// Fused (Bi)LSTM: every time step of both directions forward, and the whole BPTT backward, as ONE
// tf.customGrad op. The stock tfjs-layers LSTM runs ~15 tiny kernels per step with an autodiff
// tape over all of them; here the input projections of all steps are one batched matMul, both
// directions share each step's kernels (batched over a leading direction axis), and the backward
// pass is written by hand. Checked against referenceRnn (plain ops + autodiff) in
// tests/ml/model/fused_rnn_test.ts.
//
// Gate order i, f, g, o (Keras/PyTorch). tanh(v) is computed as 2*sigmoid(2v) - 1: the wasm
// Sigmoid kernel is XNNPACK-vectorised (~1.5 ns/element), wasm Tanh is ~20x slower.
import * as tf from "@tensorflow/tfjs";

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

/** [1,1,1(i) 1(f) 2(g) 1(o)] per gate block: scales the g pre-activation so that one sigmoid
 * over all gates yields tanh for g. */
function gateScale(units: number): tf.Tensor1D {
  const scale = new Float32Array(4 * units).fill(1);
  scale.fill(2, 2 * units, 3 * units);
  return tf.tensor1d(scale);
}

/** Reverses the step blocks of a step-major [T*B, D] matrix in JS: one read, one upload. The wasm
 * Reverse kernel takes ~25 ms for a [22, 256, 32] tensor; this takes well under 1 ms. */
function reverseSteps(m: tf.Tensor2D, steps: number): tf.Tensor2D {
  const data = m.dataSync();
  const out = new Float32Array(data.length);
  const block = data.length / steps;
  for (let t = 0; t < steps; t++) {
    out.set(data.subarray((steps - 1 - t) * block, (steps - t) * block), t * block);
  }
  return tf.tensor2d(out, m.shape);
}

/** Tensors one direction keeps per step for its backward pass: h before the step, f, the
 * products [g | c before | i] (one [B, 3H] block), o * (1 - tanh(c)^2), tanh(c), and the gate
 * derivatives [i(1-i) | f(1-f) | 1-g^2 | o(1-o)]. Precomputing them in the forward pass cuts the
 * backward pass from ~24 to 8 kernels per step (each wasm kernel call has a fixed cost). */
const SAVED_PER_STEP = 6;
function savedCount(steps: number): number {
  return 3 + SAVED_PER_STEP * steps; // xs, W, U, per-step tensors
}

/** True while a gradient tape records (inside tf.grads / engine.gradients). tfjs does not export
 * this; `state.gradientDepth` is what its own isTapeOn() reads (tfjs-core 4.22 engine.ts). */
function gradientTapeActive(): boolean {
  const state = (tf.engine() as unknown as { state?: { gradientDepth?: number } }).state;
  return (state?.gradientDepth ?? 1) > 0;
}

/** One direction over all steps. xs: step-major inputs [T*B, D] in this direction's order. All
 * matMuls are 2-D: the wasm BatchMatMul with a batch dimension leaves XNNPACK (40 ms a call). */
function forwardDirection(
  xs: tf.Tensor2D,
  W: tf.Tensor2D,
  U: tf.Tensor2D,
  b: tf.Tensor1D,
  B: number,
  T: number,
  training: boolean,
) {
  const H = U.shape[0];
  const G = 4 * H;
  const scale = gateScale(H);
  // d/dz of each gate from s = sigmoid(scaled z): s(1-s), and 4 s(1-s) = 1 - g^2 for g.
  const derivativeScale = tf.tensor1d(
    Float32Array.from({ length: G }, (_, k) => (k >= 2 * H && k < 3 * H ? 4 : 1)),
  );
  const projection = tf.matMul(xs, W).add(b).mul(scale); // [T*B, G], all steps in one matMul
  const Uscaled = U.mul(scale);
  const two = tf.scalar(2);
  const one = tf.scalar(1);
  let h: tf.Tensor2D = tf.zeros([B, H]);
  let c: tf.Tensor2D = tf.zeros([B, H]);
  const saved: tf.Tensor[] = [xs, W, U];
  for (let t = 0; t < T; t++) {
    const xw = projection.slice([t * B, 0], [B, G]);
    const z = t === 0 ? xw : xw.add(tf.matMul(h, Uscaled));
    const s = tf.sigmoid(z);
    const i = s.slice([0, 0], [B, H]);
    const f = s.slice([0, H], [B, H]);
    const g = s.slice([0, 2 * H], [B, H]).mul(two).sub(one);
    const o = s.slice([0, 3 * H], [B, H]);
    const hBefore = h;
    const cBefore = c;
    c = f.mul(c).add(i.mul(g)) as tf.Tensor2D;
    const tanhC = tf.sigmoid(c.mul(two)).mul(two).sub(one);
    h = o.mul(tanhC) as tf.Tensor2D;
    if (training) {
      const products = tf.concat([g, cBefore, i], 1);
      const outputFactor = o.mul(one.sub(tanhC.square()));
      const derivatives = s.mul(one.sub(s)).mul(derivativeScale);
      saved.push(hBefore, f, products, outputFactor, tanhC, derivatives);
    }
  }
  return { h, saved };
}

/** BPTT for one direction; returns [dxs (step order), dW, dU, db]. */
function backwardDirection(
  dy: tf.Tensor2D,
  saved: readonly tf.Tensor[],
  B: number,
  T: number,
): tf.Tensor[] {
  const [xs, W, U] = saved as tf.Tensor2D[];
  const H = U.shape[0];
  const UT = tf.transpose(U); // [G, H]
  let dh: tf.Tensor2D = dy;
  let dc: tf.Tensor2D = tf.zerosLike(dy);
  const dZ: tf.Tensor2D[] = new Array(T);
  const hsBefore: tf.Tensor2D[] = new Array(T);
  for (let t = T - 1; t >= 0; t--) {
    const k = 3 + SAVED_PER_STEP * t;
    const [hBefore, f, products, outputFactor, tanhC, derivatives] = saved.slice(
      k,
      k + SAVED_PER_STEP,
    ) as tf.Tensor2D[];
    hsBefore[t] = hBefore;
    const next = tf.tidy((): tf.Tensor2D[] => {
      const dcTotal = dc.add(dh.mul(outputFactor));
      // [dc*g | dc*c_prev | dc*i] in one broadcast multiply over a [B, 3, H] view.
      const cellPart = products.reshape([B, 3, H]).mul(dcTotal.reshape([B, 1, H]))
        .reshape([B, 3 * H]);
      const dz = tf.concat([cellPart, dh.mul(tanhC)], 1).mul(derivatives) as tf.Tensor2D;
      const dcPrev = dcTotal.mul(f) as tf.Tensor2D;
      return t > 0 ? [dz, dcPrev, tf.matMul(dz, UT) as tf.Tensor2D] : [dz, dcPrev];
    });
    dZ[t] = next[0];
    dc = next[1];
    if (t > 0) dh = next[2];
  }
  const dZall = tf.concat(dZ, 0); // [T*B, G]
  const dW = tf.matMul(xs, dZall, true, false);
  const dU = tf.matMul(tf.concat(hsBefore, 0), dZall, true, false);
  // Column sum as a matMul: much faster than sum() on wasm.
  const db = tf.matMul(tf.ones([1, T * B]), dZall).reshape([4 * H]);
  const dxs = tf.matMul(dZall, W, false, true); // [T*B, D]
  return [dxs, dW, dU, db];
}

const fused = tf.customGrad(
  ((
    x: tf.Tensor3D,
    W: tf.Tensor3D,
    U: tf.Tensor3D,
    b: tf.Tensor2D,
    save: tf.GradSaveFunc,
  ) => {
    const { batch: B, steps: T, inputs: D, directions: R, units: H, gates: G } = checkShapes(
      x,
      W,
      U,
      b,
    );
    const xs0 = tf.transpose(x, [1, 0, 2]).reshape([T * B, D]) as tf.Tensor2D; // step-major
    const finals: tf.Tensor2D[] = [];
    const saved: tf.Tensor[] = [];
    const training = gradientTapeActive();
    for (let d = 0; d < R; d++) {
      const xs = d === 0 ? xs0 : reverseSteps(xs0, T); // direction 1 reads the sequence backwards
      const Wd = W.slice([d, 0, 0], [1, D, G]).reshape([D, G]) as tf.Tensor2D;
      const Ud = U.slice([d, 0, 0], [1, H, G]).reshape([H, G]) as tf.Tensor2D;
      const bd = b.slice([d, 0], [1, G]).reshape([G]) as tf.Tensor1D;
      const run = forwardDirection(xs, Wd, Ud, bd, B, T, training);
      finals.push(run.h);
      saved.push(...run.saved);
    }
    // Only kept when a gradient tape is recording (tfjs ignores save otherwise).
    save(saved);
    const value = (R === 1 ? finals[0] : tf.concat(finals, 1)) as tf.Tensor2D;

    const gradFunc = (dy: tf.Tensor2D, kept: tf.Tensor[]) =>
      tf.tidy(() => {
        const per = savedCount(T);
        const grads = Array.from({ length: R }, (_, d) => {
          const dyd = R === 1 ? dy : dy.slice([0, d * H], [B, H]);
          return backwardDirection(dyd as tf.Tensor2D, kept.slice(d * per, (d + 1) * per), B, T);
        });
        let dxs = grads[0][0] as tf.Tensor2D;
        if (R === 2) dxs = dxs.add(reverseSteps(grads[1][0] as tf.Tensor2D, T));
        const dx = tf.transpose(dxs.reshape([T, B, D]), [1, 0, 2]) as tf.Tensor3D;
        const stackDirections = (k: number) => tf.stack(grads.map((g) => g[k]));
        return [dx, stackDirections(1), stackDirections(2), stackDirections(3)];
      });
    return { value, gradFunc };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor2D;

/** The fused op (forward and gradient). */
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
