// The device CNN block — Conv1D ("same", stride 1) + bias + ReLU + MaxPool(2) — forward and
// backward for WebAssembly SIMD. Built by tools/build_kernels.sh into
// ml/kernels/conv_wasm.generated.ts; called from ml/kernels/conv_kernel.ts, which owns all size
// checks (this file trusts the sizes and pointers it is given).
//
// The arithmetic is float64, operation for operation and in the same order as the plain loops it
// replaces (tests/ml/model/conv_reference.ts, which accumulate in JavaScript doubles): products and
// sums in f64 (f64x2 lanes run over independent filters, so no sum is reordered), rounded to
// float32 only where the loops store into a Float32Array. So the results are bit-identical to those
// loops, and on every engine (no fused multiply-add, no relaxed SIMD).
//
// Layouts (row-major): xp [B, Lp, C] float32 (x zero-padded, Lp = L + K - 1); kernel [K*C, F]
// float32; bias [F]; out, dy [B, P, F] float32 (P = floor(L / 2)); winner [B, P, F] int8: 0 or 1
// for the conv position (2p or 2p+1) that won the pool, -1 when the ReLU cut it (no gradient).
#include <wasm_simd128.h>

typedef float f32;
typedef double f64;
typedef signed char i8;

// Filters per register block: 4 f64x2 accumulators for each of the window's two conv rows.
#define FB 8

static inline __attribute__((always_inline)) f64 fmax3(f64 a, f64 c) {
  // Math.max(a, c, 0): NaN if any is NaN, and +0 over -0.
  if (a != a || c != c) return a + c;
  f64 z = a > c ? a : c;
  if (z < 0 || (z == 0)) return 0;  // also -0 -> +0, and max(-0, +0) = +0
  return z;
}

// kd [K*C, F] (f64 copy of the kernel, filled here), scratch for the call.
__attribute__((export_name("conv_forward"))) void conv_forward(int B, int Lp, int C, int K, int F,
                                                               int P, const f32* xp,
                                                               const f32* kernel, const f32* bias,
                                                               f32* out, i8* winner, f64* kd) {
  const int KC = K * C;
  for (long k = 0; k < (long)KC * F; k++) kd[k] = kernel[k];
  for (int b = 0; b < B; b++) {
    for (int p = 0; p < P; p++) {
      const f32* x0p = xp + ((long)b * Lp + 2 * p) * C;
      const f32* x1p = x0p + C;
      const long o = ((long)b * P + p) * F;
      int f0 = 0;
      for (; f0 + FB <= F; f0 += FB) {
        v128_t a[4], c[4];
        for (int v = 0; v < 4; v++) {
          a[v] = c[v] = wasm_f64x2_make(bias[f0 + 2 * v], bias[f0 + 2 * v + 1]);
        }
        for (int j = 0; j < KC; j++) {
          const v128_t x0 = wasm_f64x2_splat(x0p[j]);
          const v128_t x1 = wasm_f64x2_splat(x1p[j]);
          const f64* w = kd + (long)j * F + f0;
          for (int v = 0; v < 4; v++) {
            const v128_t wv = wasm_v128_load(w + 2 * v);
            a[v] = wasm_f64x2_add(a[v], wasm_f64x2_mul(x0, wv));
            c[v] = wasm_f64x2_add(c[v], wasm_f64x2_mul(x1, wv));
          }
        }
        // Branch-free epilogue (data-dependent branches per filter mispredicted half the time):
        // f64x2.max is IEEE maximum, as Math.max (NaN if any is NaN, +0 over -0), so
        // max(max(a, c), +0) = Math.max(a, c, 0); the winner selects by lane masks.
        const v128_t zero = wasm_f64x2_splat(0);
        for (int v = 0; v < 4; v++) {
          const v128_t z = wasm_f64x2_max(wasm_f64x2_max(a[v], c[v]), zero);
          const v128_t zf = wasm_f32x4_demote_f64x2_zero(z);
          out[o + f0 + 2 * v] = wasm_f32x4_extract_lane(zf, 0);
          out[o + f0 + 2 * v + 1] = wasm_f32x4_extract_lane(zf, 1);
          // passed = z > 0 || z is NaN; first = a >= c (all-ones lanes or zero):
          // winner = passed ? (first ? 0 : 1) : -1 = (passed & (1 + first)) | ~passed.
          const v128_t passed = wasm_v128_or(wasm_f64x2_gt(z, zero), wasm_f64x2_ne(z, z));
          const v128_t first = wasm_f64x2_ge(a[v], c[v]);
          const v128_t w = wasm_v128_or(
              wasm_v128_and(passed, wasm_i64x2_add(wasm_i64x2_splat(1), first)),
              wasm_v128_not(passed));
          winner[o + f0 + 2 * v] = (i8)wasm_i64x2_extract_lane(w, 0);
          winner[o + f0 + 2 * v + 1] = (i8)wasm_i64x2_extract_lane(w, 1);
        }
      }
      for (; f0 < F; f0++) {
        f64 a = bias[f0], c = bias[f0];
        for (int j = 0; j < KC; j++) {
          const f64 w = kd[(long)j * F + f0];
          a += (f64)x0p[j] * w;
          c += (f64)x1p[j] * w;
        }
        const f64 z = fmax3(a, c);
        out[o + f0] = (f32)z;
        winner[o + f0] = z > 0 || z != z ? (a >= c ? 0 : 1) : -1;
      }
    }
  }
}

// Gradients from the forward's winners: dKernel [K*C, F] and dBias [F] (float32, from float64
// sums) and, if dxp is non-null, dxp [B, Lp, C] (float32, zeroed by the caller). Scratch: kd [K*C,
// F] f64 (kernel), dw [K*C, F] f64, db [F] f64, g0, g1 [F] f64.
__attribute__((export_name("conv_backward"))) void conv_backward(
    int B, int Lp, int C, int K, int F, int P, const f32* xp, const f32* kernel, const i8* winner,
    const f32* dy, f32* dKernel, f32* dBias, f32* dxp, f64* kd, f64* dw, f64* db, f64* g0,
    f64* g1) {
  const int KC = K * C;
  for (long k = 0; k < (long)KC * F; k++) {
    kd[k] = kernel[k];
    dw[k] = 0;
  }
  for (int f = 0; f < F; f++) db[f] = 0;
  const int F2 = F & ~1;
  for (int b = 0; b < B; b++) {
    for (int p = 0; p < P; p++) {
      const long o = ((long)b * P + p) * F;
      // Two filters per f64x2, branch-free: g = cut ? +0 : dy; g0 / g1 = g where position 0 / 1
      // won, else +0; db += g; any = some g != 0 (NaN included), as the loops' scalar code.
      v128_t anyMask = wasm_i64x2_splat(0);
      int f = 0;
      for (; f < F2; f += 2) {
        const v128_t w = wasm_i64x2_make(winner[o + f], winner[o + f + 1]);
        const v128_t d = wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(dy + o + f));
        const v128_t g = wasm_v128_andnot(d, wasm_i64x2_lt(w, wasm_i64x2_splat(0)));
        wasm_v128_store(g0 + f, wasm_v128_and(g, wasm_i64x2_eq(w, wasm_i64x2_splat(0))));
        wasm_v128_store(g1 + f, wasm_v128_and(g, wasm_i64x2_eq(w, wasm_i64x2_splat(1))));
        wasm_v128_store(db + f, wasm_f64x2_add(wasm_v128_load(db + f), g));
        anyMask = wasm_v128_or(anyMask, wasm_f64x2_ne(g, wasm_f64x2_splat(0)));
      }
      int any = wasm_v128_any_true(anyMask);
      for (; f < F; f++) {
        const int w = winner[o + f];
        const f64 g = w < 0 ? 0 : (f64)dy[o + f];
        g0[f] = w == 0 ? g : 0;
        g1[f] = w == 1 ? g : 0;
        db[f] += g;
        if (g != 0) any = 1;
      }
      if (!any) continue;
      const long base0 = ((long)b * Lp + 2 * p) * C;
      const long base1 = base0 + C;
      for (int j = 0; j < KC; j++) {
        const f64 x0s = xp[base0 + j], x1s = xp[base1 + j];
        const v128_t x0 = wasm_f64x2_splat(x0s), x1 = wasm_f64x2_splat(x1s);
        f64* dwj = dw + (long)j * F;
        int f = 0;
        for (; f < F2; f += 2) {
          const v128_t t = wasm_f64x2_add(wasm_f64x2_mul(x0, wasm_v128_load(g0 + f)),
                                          wasm_f64x2_mul(x1, wasm_v128_load(g1 + f)));
          wasm_v128_store(dwj + f, wasm_f64x2_add(wasm_v128_load(dwj + f), t));
        }
        for (; f < F; f++) dwj[f] += x0s * g0[f] + x1s * g1[f];
        if (dxp) {
          // Sequential in f, as the loops: these two sums must not be reordered.
          const f64* wj = kd + (long)j * F;
          f64 s0 = 0, s1 = 0;
          for (int k = 0; k < F; k++) {
            s0 += wj[k] * g0[k];
            s1 += wj[k] * g1[k];
          }
          dxp[base0 + j] = (f32)((f64)dxp[base0 + j] + s0);
          dxp[base1 + j] = (f32)((f64)dxp[base1 + j] + s1);
        }
      }
    }
  }
  for (long k = 0; k < (long)KC * F; k++) dKernel[k] = (f32)dw[k];
  for (int f = 0; f < F; f++) dBias[f] = (f32)db[f];
}
