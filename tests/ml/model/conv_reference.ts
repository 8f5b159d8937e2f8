// The device CNN block's forward and backward as the plain JavaScript loops (float64 accumulators)
// that ml/model/conv_block.ts ran before its WebAssembly kernel (ml/kernels/conv.c): the oracle
// the kernel must equal bit for bit (tests/ml/model/conv_block_test.ts). Not used in production.
import type { ConvBlockDims, ConvBlockTrace } from "../../../ml/model/conv_block.ts";

/** The block's forward on plain arrays: x [batch, length, channels] -> out [batch, floor(length /
 * 2), filters], and the trace its backward needs. `x`, `kernel` and `bias` are not modified; the
 * trace keeps `kernel` (not a copy), so the caller must not change it before the backward. */
export function convBlockForwardLoops(
  dims: ConvBlockDims,
  x: Float32Array,
  kernel: Float32Array,
  bias: Float32Array,
): { out: Float32Array; trace: ConvBlockTrace } {
  const { batch: B, length: L, channels: C, size: K, filters: F } = dims;
  // tf "same" for stride 1: total padding K - 1, the smaller half on the left. With x copied
  // into a zero-padded [B, L + K - 1, C] buffer, the receptive field of conv position t is the
  // K * C consecutive values from (t, 0): each output is one contiguous dot product.
  const padLeft = Math.floor((K - 1) / 2);
  const Lp = L + K - 1;
  const KC = K * C;
  const P = Math.floor(L / 2);
  const xp = new Float32Array(B * Lp * C);
  for (let b = 0; b < B; b++) {
    xp.set(x.subarray(b * L * C, (b + 1) * L * C), (b * Lp + padLeft) * C);
  }
  const out = new Float32Array(B * P * F);
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
        acc0[f] = bias[f];
        acc1[f] = bias[f];
      }
      for (let j = 0; j < KC; j++) {
        const x0 = xp[base0 + j];
        const x1 = xp[base1 + j];
        const wBase = j * F;
        for (let f = 0; f < F; f++) {
          const w = kernel[wBase + f];
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
  return { out, trace: { dims, xp, kernel, winner } };
}

/** The block's backward on plain arrays: given dy [batch, floor(length / 2), filters], the
 * gradients of the kernel and bias and, if `withInput`, of x (a first layer's input is data, whose
 * gradient nobody needs). */
export function convBlockBackwardLoops(
  trace: ConvBlockTrace,
  dy: Float32Array,
  withInput: boolean,
): { dx: Float32Array | null; dKernel: Float32Array; dBias: Float32Array } {
  const { dims, xp, kernel: ws, winner } = trace;
  const { batch: B, length: L, channels: C, size: K, filters: F } = dims;
  const P = Math.floor(L / 2);
  if (dy.length !== B * P * F) {
    throw new Error(`convBlock: ${dy.length} gradient values for output [${B}, ${P}, ${F}]`);
  }
  const padLeft = Math.floor((K - 1) / 2);
  const Lp = L + K - 1;
  const KC = K * C;
  const dxp = withInput ? new Float32Array(B * Lp * C) : null;
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
        const g = w < 0 ? 0 : dy[oBase + f];
        g0[f] = w === 0 ? g : 0;
        g1[f] = w === 1 ? g : 0;
        db[f] += g;
        if (g !== 0) any = true;
      }
      if (!any) continue;
      const base0 = (b * Lp + 2 * p) * C;
      const base1 = base0 + C;
      if (dxp === null) {
        for (let j = 0; j < KC; j++) {
          const x0 = xp[base0 + j];
          const x1 = xp[base1 + j];
          const wBase = j * F;
          for (let f = 0; f < F; f++) dw[wBase + f] += x0 * g0[f] + x1 * g1[f];
        }
        continue;
      }
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
  let dx: Float32Array | null = null;
  if (dxp !== null) {
    dx = new Float32Array(B * L * C);
    for (let b = 0; b < B; b++) {
      const from = (b * Lp + padLeft) * C;
      dx.set(dxp.subarray(from, from + L * C), b * L * C);
    }
  }
  return { dx, dKernel: Float32Array.from(dw), dBias: Float32Array.from(db) };
}
