// The wasm kernel patches against plain-JS references.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { prng } from "../../../ml/model/random.ts";
import { maxAbsDiff, tfForTests } from "../fixtures.ts";

await tfForTests();

const randomArray = (n: number, seed: number) => {
  const r = prng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
};

Deno.test("Conv2DBackpropFilter (wasm) equals the direct formula", () => {
  assert.equal(tf.getBackend(), "wasm");
  for (
    const [pad, stride, k] of [["same", 1, 3], ["valid", 1, 3], ["same", 2, 5], [
      "valid",
      2,
      2,
    ]] as const
  ) {
    const [B, L, Cin, Cout] = [3, 11, 2, 4];
    const xData = randomArray(B * L * Cin, 1);
    const wData = randomArray(k * Cin * Cout, 2);
    const x = tf.tensor3d(xData, [B, L, Cin]);
    const w = tf.tensor3d(wData, [k, Cin, Cout]);
    const y = tf.conv1d(x, w, stride, pad);
    const Lout = y.shape[1];
    const dyData = randomArray(B * Lout * Cout, 3);
    const dy = tf.tensor3d(dyData, [B, Lout, Cout]);
    const dw = tf.grad((filter: tf.Tensor) => tf.conv1d(x, filter as tf.Tensor3D, stride, pad))(
      w,
      dy,
    );
    // Reference: dW[j, ci, co] = sum_b,o x[b, o*stride + j - padLeft, ci] * dy[b, o, co]
    const total = pad === "same" ? Math.max((Lout - 1) * stride + k - L, 0) : 0;
    const padLeft = Math.floor(total / 2);
    const expected = new Float32Array(k * Cin * Cout);
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < Lout; o++) {
        for (let j = 0; j < k; j++) {
          const at = o * stride + j - padLeft;
          if (at < 0 || at >= L) continue;
          for (let ci = 0; ci < Cin; ci++) {
            for (let co = 0; co < Cout; co++) {
              expected[(j * Cin + ci) * Cout + co] += xData[(b * L + at) * Cin + ci] *
                dyData[(b * Lout + o) * Cout + co];
            }
          }
        }
      }
    }
    const diff = maxAbsDiff(dw.dataSync(), expected);
    assert.ok(diff < 1e-5, `pad=${pad} stride=${stride} k=${k}: max abs diff ${diff}`);
    tf.dispose([x, w, y, dy, dw]);
  }
});

Deno.test("patched matMul with transposes and patched slice/unstack equal references", () => {
  const a = randomArray(6 * 5, 4);
  const b = randomArray(5 * 7, 5);
  const naive = new Float32Array(6 * 7);
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 7; j++) {
      for (let k = 0; k < 5; k++) naive[i * 7 + j] += a[i * 5 + k] * b[k * 7 + j];
    }
  }
  tf.tidy(() => {
    const A = tf.tensor2d(a, [6, 5]);
    const Bm = tf.tensor2d(b, [5, 7]);
    assert.ok(maxAbsDiff(tf.matMul(A, Bm).dataSync(), naive) < 1e-6);
    assert.ok(maxAbsDiff(tf.matMul(A.transpose(), Bm, true, false).dataSync(), naive) < 1e-6);
    assert.ok(maxAbsDiff(tf.matMul(A, Bm.transpose(), false, true).dataSync(), naive) < 1e-6);
    assert.ok(
      maxAbsDiff(tf.matMul(A.transpose(), Bm.transpose(), true, true).dataSync(), naive) < 1e-6,
    );
    const t = tf.tensor3d(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    assert.deepEqual(Array.from(t.slice([1, 1, 1], [1, 2, 2]).dataSync()), [17, 18, 21, 22]);
    assert.deepEqual(Array.from(tf.unstack(t, 1)[2].dataSync()), [8, 9, 10, 11, 20, 21, 22, 23]);
  });
});

Deno.test("MaxPoolGrad (wasm) routes each window's dy to its first maximum", () => {
  assert.equal(tf.getBackend(), "wasm");
  for (
    const [H, W, C, filter, stride, pad] of [
      [44, 1, 32, [2, 1], [2, 1], "valid"],
      [7, 5, 3, [3, 3], [2, 2], "same"],
      [6, 6, 2, [2, 2], [1, 1], "valid"],
    ] as const
  ) {
    const B = 3;
    // Rounded values give ties, which must go to the first position in scan order.
    const xData = randomArray(B * H * W * C, 4).map((v) => Math.round(v * 4) / 4);
    const x = tf.tensor4d(xData, [B, H, W, C]);
    const y = tf.maxPool(x, filter as [number, number], stride as [number, number], pad);
    const [, oh, ow] = y.shape;
    const dyData = randomArray(B * oh * ow * C, 5);
    const dy = tf.tensor4d(dyData, y.shape);
    const dx = tf.grad((a: tf.Tensor) =>
      tf.maxPool(a as tf.Tensor4D, filter as [number, number], stride as [number, number], pad)
    )(x, dy);
    const padTop = pad === "same"
      ? Math.floor(Math.max((oh - 1) * stride[0] + filter[0] - H, 0) / 2)
      : 0;
    const padLeft = pad === "same"
      ? Math.floor(Math.max((ow - 1) * stride[1] + filter[1] - W, 0) / 2)
      : 0;
    const expected = new Float32Array(xData.length);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          for (let c = 0; c < C; c++) {
            let best = -Infinity;
            let at = -1;
            for (let r = i * stride[0] - padTop; r < i * stride[0] - padTop + filter[0]; r++) {
              for (let s = j * stride[1] - padLeft; s < j * stride[1] - padLeft + filter[1]; s++) {
                if (r < 0 || r >= H || s < 0 || s >= W) continue;
                const k = ((b * H + r) * W + s) * C + c;
                if (at < 0 || xData[k] > best) [best, at] = [xData[k], k];
              }
            }
            expected[at] += dyData[((b * oh + i) * ow + j) * C + c];
          }
        }
      }
    }
    const diff = maxAbsDiff(dx.dataSync(), expected);
    assert.ok(diff < 1e-6, `${H}x${W}x${C} filter ${filter} stride ${stride} ${pad}: ${diff}`);
    tf.dispose([x, y, dy, dx]);
  }
});
