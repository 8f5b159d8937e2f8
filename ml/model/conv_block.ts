// One device CNN block — Conv1D ("same" padding exactly as tf.conv1d, stride 1) + bias + ReLU +
// MaxPool(2, 'valid') — as ONE tf.customGrad op whose forward and backward are plain loops over
// Float32Arrays. The tfjs composition (reshape, im2col conv, add, relu, maxPool and their gradients)
// cost ~19 ms of per-op overhead per split step at batch 256 for ~1.25 M multiply-adds; this does
// the same arithmetic in one pass each way. The forward keeps, per pooled output, the position
// that won the pool (ties: the first, as tf.maxPool) and whether it passed the ReLU, so the backward
// only visits the winners. NaN propagates (a NaN input gives NaN outputs, which the wire checks
// refuse). Checked against the tfjs composition in tests/ml/model/conv_block_test.ts.
import * as tf from "@tensorflow/tfjs";

function floats(t: tf.Tensor, name: string): Float32Array {
  if (t.dtype !== "float32") throw new Error(`convBlock: ${name} is ${t.dtype}, expected float32`);
  return t.dataSync() as Float32Array;
}

function checkShapes(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) {
  if (x.rank !== 3 || kernel.rank !== 3 || bias.rank !== 1) {
    throw new Error(
      `convBlock: ranks x=${x.rank} kernel=${kernel.rank} bias=${bias.rank}, expected 3,3,1`,
    );
  }
  const [batch, length, channels] = x.shape;
  const [size, kChannels, filters] = kernel.shape;
  if (kChannels !== channels || bias.shape[0] !== filters || size < 1) {
    throw new Error(
      `convBlock: shapes x=[${x.shape}] kernel=[${kernel.shape}] bias=[${bias.shape}] are inconsistent`,
    );
  }
  if (length < 2) throw new Error(`convBlock: length ${length} cannot be pooled by 2`);
  return { batch, length, channels, size, filters };
}

const block = tf.customGrad(
  ((x: tf.Tensor3D, kernel: tf.Tensor3D, bias: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const { batch: B, length: L, channels: C, size: K, filters: F } = checkShapes(x, kernel, bias);
    const xs = floats(x, "x");
    const ws = floats(kernel, "kernel");
    const bs = floats(bias, "bias");
    // tf "same" for stride 1: total padding K - 1, the smaller half on the left. With x copied
    // into a zero-padded [B, L + K - 1, C] buffer, the receptive field of conv position t is the
    // K * C consecutive values from (t, 0): each output is one contiguous dot product.
    const padLeft = Math.floor((K - 1) / 2);
    const Lp = L + K - 1;
    const KC = K * C;
    const P = Math.floor(L / 2);
    const xp = new Float32Array(B * Lp * C);
    for (let b = 0; b < B; b++) {
      xp.set(xs.subarray(b * L * C, (b + 1) * L * C), (b * Lp + padLeft) * C);
    }
    const out = new Float32Array(B * P * F);
    // Per pooled output: 0 if conv position 2p won the pool, 1 if 2p + 1 did, -1 if the ReLU cut
    // the winner (no gradient).
    const winner = new Int8Array(B * P * F);
    // The two conv rows of one pool window, kernel [K, C, F] read as [K * C, F]: inner loops run
    // over the filters, contiguous in the kernel and in the output.
    const acc0 = new Float64Array(F);
    const acc1 = new Float64Array(F);
    for (let b = 0; b < B; b++) {
      for (let p = 0; p < P; p++) {
        const base0 = (b * Lp + 2 * p) * C;
        const base1 = base0 + C;
        for (let f = 0; f < F; f++) {
          acc0[f] = bs[f];
          acc1[f] = bs[f];
        }
        for (let j = 0; j < KC; j++) {
          const x0 = xp[base0 + j];
          const x1 = xp[base1 + j];
          const wBase = j * F;
          for (let f = 0; f < F; f++) {
            const w = ws[wBase + f];
            acc0[f] += x0 * w;
            acc1[f] += x1 * w;
          }
        }
        const oBase = (b * P + p) * F;
        for (let f = 0; f < F; f++) {
          const a = acc0[f];
          const c = acc1[f];
          // max(relu(a), relu(c)); Math.max propagates NaN. Ties: the first wins (as tf.maxPool).
          const z = Math.max(a, c, 0);
          out[oBase + f] = z;
          winner[oBase + f] = z > 0 || z !== z ? (a >= c ? 0 : 1) : -1;
        }
      }
    }
    save([]); // the saved state (inputs, winners) lives in this closure, not in tensors
    const value = tf.tensor3d(out, [B, P, F]);
    const gradFunc = (dy: tf.Tensor3D) => {
      if (dy.shape[0] !== B || dy.shape[1] !== P || dy.shape[2] !== F) {
        throw new Error(`convBlock: gradient [${dy.shape}] for output [${B}, ${P}, ${F}]`);
      }
      const dys = floats(dy, "dy");
      const dxp = new Float32Array(B * Lp * C);
      const dw = new Float64Array(KC * F);
      const db = new Float64Array(F);
      // Gradient of the pre-activation at the window's two conv positions: only the pool's
      // winner, if it passed the ReLU, gets one.
      const g0 = new Float64Array(F);
      const g1 = new Float64Array(F);
      for (let b = 0; b < B; b++) {
        for (let p = 0; p < P; p++) {
          const oBase = (b * P + p) * F;
          let any = false;
          for (let f = 0; f < F; f++) {
            const w = winner[oBase + f];
            const g = w < 0 ? 0 : dys[oBase + f];
            g0[f] = w === 0 ? g : 0;
            g1[f] = w === 1 ? g : 0;
            db[f] += g;
            if (g !== 0) any = true;
          }
          if (!any) continue;
          const base0 = (b * Lp + 2 * p) * C;
          const base1 = base0 + C;
          for (let j = 0; j < KC; j++) {
            const x0 = xp[base0 + j];
            const x1 = xp[base1 + j];
            const wBase = j * F;
            let s0 = 0;
            let s1 = 0;
            for (let f = 0; f < F; f++) {
              const w = ws[wBase + f];
              const a = g0[f];
              const c = g1[f];
              s0 += w * a;
              s1 += w * c;
              dw[wBase + f] += x0 * a + x1 * c;
            }
            dxp[base0 + j] += s0;
            dxp[base1 + j] += s1;
          }
        }
      }
      const dx = new Float32Array(B * L * C);
      for (let b = 0; b < B; b++) {
        const from = (b * Lp + padLeft) * C;
        dx.set(dxp.subarray(from, from + L * C), b * L * C);
      }
      return [
        tf.tensor3d(dx, [B, L, C]),
        tf.tensor3d(Float32Array.from(dw), [K, C, F]),
        tf.tensor1d(Float32Array.from(db)),
      ];
    };
    return { value, gradFunc };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor3D;

/** x [batch, length, channels], kernel [size, channels, filters], bias [filters] ->
 * maxPool2(relu(conv1d(x, kernel, 1, "same") + bias)) [batch, floor(length / 2), filters]. */
export function convBlock(x: tf.Tensor3D, kernel: tf.Tensor3D, bias: tf.Tensor1D): tf.Tensor3D {
  return block(x, kernel, bias);
}

/** The same block as the tfjs composition it replaces (autodiff by tfjs). For tests. */
export function referenceConvBlock(
  x: tf.Tensor3D,
  kernel: tf.Tensor3D,
  bias: tf.Tensor1D,
): tf.Tensor3D {
  const [batch] = x.shape;
  const filters = kernel.shape[2];
  const y = tf.relu(tf.conv1d(x, kernel, 1, "same").add(bias)) as tf.Tensor3D;
  const length = y.shape[1];
  const pooled = tf.maxPool(
    y.reshape([batch, length, 1, filters]) as tf.Tensor4D,
    [2, 1],
    [2, 1],
    "valid",
  );
  return pooled.reshape([batch, Math.floor(length / 2), filters]);
}
