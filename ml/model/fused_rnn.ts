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
    throw new Error(`fusedRnn: ranks x=${x.rank} W=${W.rank} U=${U.rank} b=${b.rank}, expected 3,3,3,2`);
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
  if (steps < 1 || steps > RNN_STEPS_MAX) throw new Error(`fusedRnn: ${steps} steps, limit 1..${RNN_STEPS_MAX}`);
  return { batch, steps, inputs, directions, units, gates };
}

/** [1,1,1(i) 1(f) 2(g) 1(o)] per gate block: scales the g pre-activation so that one sigmoid
 * over all gates yields tanh for g. */
function gateScale(units: number): tf.Tensor1D {
  const scale = new Float32Array(4 * units).fill(1);
  scale.fill(2, 2 * units, 3 * units);
  return tf.tensor1d(scale);
}

/** x [B,T,D] -> [directions, T*B, D] time-major, direction 1 time-reversed. */
function stepMajorInputs(x: tf.Tensor3D, directions: number): tf.Tensor3D {
  const [batch, steps, inputs] = x.shape;
  const timeMajor = tf.transpose(x, [1, 0, 2]);
  const stacked = directions === 2
    ? tf.stack([timeMajor, tf.reverse(timeMajor, 0)])
    : timeMajor.expandDims(0);
  return stacked.reshape([directions, steps * batch, inputs]);
}

// deno-lint-ignore no-explicit-any
const fused = tf.customGrad(((
  x: tf.Tensor3D,
  W: tf.Tensor3D,
  U: tf.Tensor3D,
  b: tf.Tensor2D,
  save: tf.GradSaveFunc,
) => {
  const { batch: B, steps: T, inputs: D, directions: R, units: H, gates: G } = checkShapes(x, W, U, b);
  const scale = gateScale(H);
  const xs = stepMajorInputs(x, R); // [R, T*B, D]
  // Input projections of all steps and directions: one batched matMul.
  const projection = tf.matMul(xs, W).add(b.reshape([R, 1, G])).mul(scale).reshape([R, T, B, G]);
  const Uscaled = U.mul(scale);
  const two = tf.scalar(2);
  const one = tf.scalar(1);
  let h: tf.Tensor3D = tf.zeros([R, B, H]);
  let c: tf.Tensor3D = tf.zeros([R, B, H]);
  const hiddenBefore: tf.Tensor3D[] = [];
  const cells: tf.Tensor3D[] = [c];
  const gatesSaved: tf.Tensor3D[] = [];
  for (let t = 0; t < T; t++) {
    hiddenBefore.push(h);
    const xw = projection.slice([0, t, 0, 0], [R, 1, B, G]).reshape([R, B, G]) as tf.Tensor3D;
    const z = t === 0 ? xw : xw.add(tf.matMul(h, Uscaled));
    const s = tf.sigmoid(z);
    const i = s.slice([0, 0, 0], [R, B, H]);
    const f = s.slice([0, 0, H], [R, B, H]);
    const g = s.slice([0, 0, 2 * H], [R, B, H]).mul(two).sub(one);
    const o = s.slice([0, 0, 3 * H], [R, B, H]);
    c = f.mul(c).add(i.mul(g)) as tf.Tensor3D;
    const tanhC = tf.sigmoid(c.mul(two)).mul(two).sub(one);
    h = o.mul(tanhC) as tf.Tensor3D;
    cells.push(c);
    gatesSaved.push(i as tf.Tensor3D, f as tf.Tensor3D, g as tf.Tensor3D, o as tf.Tensor3D, tanhC as tf.Tensor3D);
  }
  // Only kept when a gradient tape is recording (tfjs ignores save otherwise).
  save([xs, W, U, ...hiddenBefore, ...cells, ...gatesSaved]);
  const value = tf.transpose(h, [1, 0, 2]).reshape([B, R * H]) as tf.Tensor2D;

  const gradFunc = (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
    const sxs = saved[0] as tf.Tensor3D;
    const sW = saved[1] as tf.Tensor3D;
    const sU = saved[2] as tf.Tensor3D;
    const sh = saved.slice(3, 3 + T) as tf.Tensor3D[];
    const sc = saved.slice(3 + T, 4 + 2 * T) as tf.Tensor3D[];
    const sg = saved.slice(4 + 2 * T) as tf.Tensor3D[];
    return tf.tidy(() => {
      const UT = tf.transpose(sU, [0, 2, 1]); // [R, G, H]
      const oneB = tf.scalar(1);
      let dh = dy.reshape([B, R, H]).transpose([1, 0, 2]) as tf.Tensor3D;
      let dc: tf.Tensor3D = tf.zerosLike(dh);
      const dZ: tf.Tensor3D[] = new Array(T);
      for (let t = T - 1; t >= 0; t--) {
        const [i, f, g, o, tanhC] = sg.slice(5 * t, 5 * t + 5);
        const cPrev = sc[t];
        const next = tf.tidy((): tf.Tensor3D[] => {
          const dcTotal = dc.add(dh.mul(o).mul(oneB.sub(tanhC.square())));
          const dzi = dcTotal.mul(g).mul(i).mul(oneB.sub(i));
          const dzf = dcTotal.mul(cPrev).mul(f).mul(oneB.sub(f));
          const dzg = dcTotal.mul(i).mul(oneB.sub(g.square()));
          const dzo = dh.mul(tanhC).mul(o).mul(oneB.sub(o));
          const dz = tf.concat([dzi, dzf, dzg, dzo], 2) as tf.Tensor3D; // [R, B, G]
          const dcPrev = dcTotal.mul(f) as tf.Tensor3D;
          return t > 0 ? [dz, dcPrev, tf.matMul(dz, UT) as tf.Tensor3D] : [dz, dcPrev];
        });
        dZ[t] = next[0];
        dc = next[1];
        if (t > 0) dh = next[2];
      }
      const dZall = tf.concat(dZ, 1); // [R, T*B, G], step order per direction
      const hsAll = tf.concat(sh, 1); // [R, T*B, H]
      const dW = tf.matMul(sxs, dZall, true, false) as tf.Tensor3D; // [R, D, G]
      const dU = tf.matMul(hsAll, dZall, true, false) as tf.Tensor3D; // [R, H, G]
      // Column sum as a matMul: much faster than sum() on wasm.
      const db = tf.matMul(tf.ones([R, 1, T * B]), dZall).reshape([R, G]) as tf.Tensor2D;
      const dxs = tf.matMul(dZall, sW, false, true).reshape([R, T, B, D]); // step order
      let dxTime = dxs.slice([0, 0, 0, 0], [1, T, B, D]).reshape([T, B, D]);
      if (R === 2) {
        dxTime = dxTime.add(tf.reverse(dxs.slice([1, 0, 0, 0], [1, T, B, D]).reshape([T, B, D]), 0));
      }
      const dx = tf.transpose(dxTime, [1, 0, 2]) as tf.Tensor3D;
      return [dx, dW, dU, db];
    });
  };
  return { value, gradFunc };
  // deno-lint-ignore no-explicit-any
}) as any) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor2D;

/** The fused op (forward and gradient). */
export const fusedRnn: RnnOp = (x, W, U, b) => fused(x, W, U, b);

/** Reference (Bi)LSTM from plain tfjs ops, differentiated by tfjs autodiff. Slow; for tests. */
export const referenceRnn: RnnOp = (x, W, U, b) => {
  const { batch: B, steps: T, directions: R, units: H } = checkShapes(x, W, U, b);
  const finals: tf.Tensor2D[] = [];
  for (let d = 0; d < R; d++) {
    const Wd = W.slice([d, 0, 0], [1, W.shape[1], 4 * H]).reshape([W.shape[1], 4 * H]) as tf.Tensor2D;
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
