// Fused (Bi)LSTM for WebAssembly SIMD (wasm32 + simd128): the whole recurrence of one direction
// forward, and its whole BPTT backward, each in ONE call. Built by tools/build_kernels.sh into
// ml/kernels/lstm_wasm.generated.ts; called from ml/kernels/lstm_kernel.ts (which owns all size
// checks: this file trusts the sizes and pointers it is given). The memory is shared and imported:
// two instances of this module (the caller's thread and a worker) may run the two directions at
// the same time, each with its own scratch; a call writes only its direction's outputs.
//
// Layouts (row-major float32; G = 4H, gate order i, f, g, o as in Keras/PyTorch):
//   x [B, T, D]   W [R, D, G]   U [R, H, G]   bias [R, G]   hout / dy [B, R*H]
//   saved per direction d (indexed by the ORIGINAL time t, direction 1 runs t = T-1 .. 0), with
//   Hp = H rounded up to 4 and Gp = 4 Hp (see "Internal layout" below):
//     gates [R, T, B, Gp] (post-activation i, f, g, o, interleaved)
//     cs, hs, tcs [R, T, B, Hp] (c, h and tanh c after step t)
// Plain float32 SIMD arithmetic in a fixed order (no fused multiply-add, no relaxed SIMD), so every
// engine computes bit-identical results: V8 fuses relaxed_madd and JavaScriptCore does not.
// sigmoid = 1/(1+e^-x) with a Cephes-style expf (absolute error <= 9e-8); tanh a [13/6] rational
// approximation (relative error <= 3.5e-7).
#include <wasm_simd128.h>

typedef float f32;

#define SPLAT(v) wasm_f32x4_splat(v)

// The constants of the activations, read once per kernel call into locals (V8 rematerializes every
// v128.const at each use, which made the gate math ~1.6x slower). The table is a non-static global
// so that the compiler cannot fold it back into constants.
f32 lstm_math_constants[25][4] __attribute__((aligned(16))) = {
#define C4(v) {v, v, v, v}
    // vexp: magic (1.5 * 2^23), clamp lo/hi, log2(e), ln2 high/low, polynomial e0..e5, one
    C4(12582912.0f), C4(-87.3f), C4(88.3f), C4(1.44269504088896341f), C4(0.693359375f),
    C4(-2.12194440e-4f), C4(1.9875691500e-4f), C4(1.3981999507e-3f), C4(8.3334519073e-3f),
    C4(4.1665795894e-2f), C4(1.6666665459e-1f), C4(5.0000001201e-1f), C4(1.0f),
    // vtanh: clamp, numerator a13..a1 (odd), denominator b6..b0 (even)
    C4(7.90531110763549805f), C4(-2.76076847742355e-16f), C4(2.00018790482477e-13f),
    C4(-8.60467152213735e-11f), C4(5.12229709037114e-08f), C4(1.48572235717979e-05f),
    C4(6.37261928875436e-04f), C4(4.89352455891786e-03f), C4(1.19825839466702e-06f),
    C4(1.18534705686654e-04f), C4(2.26843463243900e-03f), C4(4.89352518554385e-03f)};
#undef C4

typedef struct {
  v128_t magic, lo, hi, log2e, ln2hi, ln2lo, e0, e1, e2, e3, e4, e5, one, tclamp, a13, a11, a9, a7,
      a5, a3, a1, b6, b4, b2, b0;
} Consts;

static inline __attribute__((always_inline)) Consts load_consts(void) {
  const v128_t* k = (const v128_t*)lstm_math_constants;
  Consts c = {k[0],  k[1],  k[2],  k[3],  k[4],  k[5],  k[6],  k[7],  k[8],
              k[9],  k[10], k[11], k[12], k[13], k[14], k[15], k[16], k[17],
              k[18], k[19], k[20], k[21], k[22], k[23], k[24]};
  return c;
}

// e^x: x = n ln2 + r with n = round(x / ln2) (the 1.5 * 2^23 trick: the float's low mantissa bits
// then hold n, so 2^n is one integer add and shift, no float-int conversion), |r| <= ln2/2,
// Cephes' degree-6 polynomial for e^r (relative error ~1e-7). Clamped to [-87.3, 88.3].
static inline __attribute__((always_inline)) v128_t vexp(const Consts* k, v128_t x) {
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, k->lo), k->hi);
  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, k->log2e), k->magic);
  v128_t fx = wasm_f32x4_sub(t, k->magic);
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, k->ln2hi));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, k->ln2lo));
  v128_t y = k->e0;
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), k->e1);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), k->e2);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), k->e3);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), k->e4);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), k->e5);
  y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(y, x), x), x), k->one);
  // t's bits are 0x4B400000 + n; (bits + 127) << 23 is the float 2^n (the high bits shift out).
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(t, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, scale);
}

// sigmoid(x) = 1 / (1 + e^-x): absolute error <= 9e-8 (measured over [-20, 20]).
static inline __attribute__((always_inline)) v128_t vsigmoid(const Consts* k, v128_t x) {
  return wasm_f32x4_div(k->one, wasm_f32x4_add(k->one, vexp(k, wasm_f32x4_neg(x))));
}

// tanh: the [13/6] rational minimax approximation on [-7.9053, 7.9053] used by Eigen and XNNPACK
// (clamped outside, where tanh rounds to +-1 within 3e-7): relative error <= 3.5e-7 everywhere,
// also near 0, where (1 - e^-2x) / (1 + e^-2x) loses precision to cancellation.
static inline __attribute__((always_inline)) v128_t vtanh(const Consts* k, v128_t x) {
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, wasm_f32x4_neg(k->tclamp)), k->tclamp);
  v128_t x2 = wasm_f32x4_mul(x, x);
  v128_t p = k->a13;
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), k->a11);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), k->a9);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), k->a7);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), k->a5);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), k->a3);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), k->a1);
  p = wasm_f32x4_mul(p, x);
  v128_t q = k->b6;
  q = wasm_f32x4_add(wasm_f32x4_mul(q, x2), k->b4);
  q = wasm_f32x4_add(wasm_f32x4_mul(q, x2), k->b2);
  q = wasm_f32x4_add(wasm_f32x4_mul(q, x2), k->b0);
  return wasm_f32x4_div(p, q);
}

// ---------------------------------------------------------------------------------------------
// Internal layout. Units are padded to Hp = H rounded up to 4 (padding units have zero weights and
// bias, so their c and h stay exactly 0 and they contribute nothing), Gp = 4 Hp, and gate columns
// are interleaved per group q of 4 units: the pre-activation of gate g (0 i, 1 f, 2 g, 3 o) of unit
// u = 4q + l sits at column 16q + 4g + l. So one 16-column strip holds all four gates of 4 units,
// and a register tile over it can finish the cell (c, h) without storing pre-activations.

#define LOAD(p) wasm_v128_load(p)
#define STORE(p, v) wasm_v128_store(p, v)
#define MADD(acc, a, b) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))
#define BCAST(p) wasm_v128_load32_splat(p)

static inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

// Interleaved column of gate g of unit u.
static inline int il(int g, int u) { return (u >> 2) * 16 + g * 4 + (u & 3); }

static void zero(f32* p, long n) {
  for (long k = 0; k < n; k++) p[k] = 0;
}

// Forward panel of direction d: [Q][K][16] with K = D + Hp, row k < D from W_d, row D + j from U_d
// (zero for padding units), followed by the interleaved bias [Gp].
static void pack_forward(int D, int H, const f32* Wd, const f32* Ud, const f32* bd, f32* panel) {
  const int Hp = round_up(H, 4), K = D + Hp, G = 4 * H, Q = Hp / 4;
  for (int q = 0; q < Q; q++) {
    f32* strip = panel + (long)q * K * 16;
    for (int k = 0; k < K; k++) {
      for (int g = 0; g < 4; g++) {
        for (int l = 0; l < 4; l++) {
          const int u = 4 * q + l;
          f32 v = 0;
          if (u < H) {
            if (k < D) v = Wd[(long)k * G + g * H + u];
            else if (k - D < H) v = Ud[(long)(k - D) * G + g * H + u];
          }
          strip[k * 16 + g * 4 + l] = v;
        }
      }
    }
  }
  f32* bias = panel + (long)K * 4 * Hp;
  for (int u = 0; u < Hp; u++)
    for (int g = 0; g < 4; g++) bias[il(g, u)] = u < H ? bd[g * H + u] : 0;
}

// The cell of 4 units of one row from its pre-activations: c = f*cPrev + i*g, h = o*tanh(c).
// gates (the activations, interleaved) and tc (tanh c) are stored when non-null (a taped pass).
static inline __attribute__((always_inline)) void forward_cell(const Consts* k, v128_t zi,
                                                               v128_t zf, v128_t zg, v128_t zo,
                                                               const f32* cPrev, f32* gates,
                                                               f32* c, f32* h, f32* tc) {
  v128_t gi = vsigmoid(k, zi), gf = vsigmoid(k, zf), gg = vtanh(k, zg), go = vsigmoid(k, zo);
  v128_t cn = wasm_f32x4_mul(gi, gg);
  if (cPrev) cn = wasm_f32x4_add(cn, wasm_f32x4_mul(gf, LOAD(cPrev)));
  v128_t t = vtanh(k, cn);
  if (gates) {
    STORE(gates, gi);
    STORE(gates + 4, gf);
    STORE(gates + 8, gg);
    STORE(gates + 12, go);
  }
  if (tc) STORE(tc, t);
  STORE(c, cn);
  STORE(h, wasm_f32x4_mul(go, t));
}

#define FMA4(s0, s1, s2, s3, p, b)  \
  do {                              \
    MADD(s0, p, LOAD(b));           \
    MADD(s1, p, LOAD((b) + 4));     \
    MADD(s2, p, LOAD((b) + 8));     \
    MADD(s3, p, LOAD((b) + 12));    \
  } while (0)

// One k of the two-row tile: the strip's 16 weights of row k times the two rows' k-th values,
// added into accumulators a0..a3 (row a) and b0..b3 (row b).
#define PAIR_MADD(pa, pb, w)                                                      \
  do {                                                                            \
    const v128_t w0 = LOAD(w), w1 = LOAD((w) + 4);                                \
    const v128_t w2 = LOAD((w) + 8), w3 = LOAD((w) + 12);                         \
    v128_t p = BCAST(pa);                                                         \
    MADD(a0, p, w0);                                                              \
    MADD(a1, p, w1);                                                              \
    MADD(a2, p, w2);                                                              \
    MADD(a3, p, w3);                                                              \
    p = BCAST(pb);                                                                \
    MADD(b0, p, w0);                                                              \
    MADD(b1, p, w1);                                                              \
    MADD(b2, p, w2);                                                              \
    MADD(b3, p, w3);                                                              \
  } while (0)

// One step of two rows (a, b) for unit group q: pre-activations = bias + x W + hPrev U over the
// strip (x rows of D values, hPrev rows of Hp values or null on the first step), then the cells.
static inline __attribute__((always_inline)) void forward_pair(
    const Consts* kc, int D, int Hp, const f32* strip, const f32* bias16, const f32* xa,
    const f32* xb, const f32* ha, const f32* hb, const f32* cpa, const f32* cpb, f32* ga, f32* gb,
    f32* ca, f32* cb, f32* hna, f32* hnb, f32* tca, f32* tcb) {
  v128_t a0 = LOAD(bias16), a1 = LOAD(bias16 + 4), a2 = LOAD(bias16 + 8), a3 = LOAD(bias16 + 12);
  v128_t b0 = a0, b1 = a1, b2 = a2, b3 = a3;
  const f32* w = strip;
  for (int k = 0; k < D; k++, w += 16) PAIR_MADD(xa + k, xb + k, w);
  if (ha) {
    for (int k = 0; k < Hp; k++, w += 16) PAIR_MADD(ha + k, hb + k, w);
  }
  forward_cell(kc, a0, a1, a2, a3, cpa, ga, ca, hna, tca);
  forward_cell(kc, b0, b1, b2, b3, cpb, gb, cb, hnb, tcb);
}

static inline __attribute__((always_inline)) void forward_one(
    const Consts* kc, int D, int Hp, const f32* strip, const f32* bias16, const f32* xa,
    const f32* ha, const f32* cpa, f32* ga, f32* ca, f32* hna, f32* tca) {
  v128_t a0 = LOAD(bias16), a1 = LOAD(bias16 + 4), a2 = LOAD(bias16 + 8), a3 = LOAD(bias16 + 12);
  const f32* w = strip;
  for (int k = 0; k < D; k++, w += 16) {
    v128_t p = BCAST(xa + k);
    FMA4(a0, a1, a2, a3, p, w);
  }
  if (ha) {
    for (int k = 0; k < Hp; k++, w += 16) {
      v128_t p = BCAST(ha + k);
      FMA4(a0, a1, a2, a3, p, w);
    }
  }
  forward_cell(kc, a0, a1, a2, a3, cpa, ga, ca, hna, tca);
}

// Rows per block of the forward recurrence: a block's rows reuse each 16-column strip of the
// panel ((D + Hp) * 64 bytes) while it is in L1.
#define FWD_ROWS 16

// ---------------------------------------------------------------------------------------------
// Forward of ONE direction d (the directions are independent, so two threads can run one each on a
// shared memory, each with its own panel). Per step, for each block of rows and group of 4 units,
// one register tile computes the pre-activations of all four gates and finishes the cells.
// Taped (save = 1): gd [T, B, Gp] (activations i, f, g, o, interleaved), cd, hd, tcd [T, B, Hp]
// (c, h and tanh c after step t), indexed by the ORIGINAL time t (direction 1 runs t = T-1 .. 0).
// Forward-only (save = 0): cd, hd hold [2, B, Hp] (a ring of the last two steps); gd, tcd unused.
// hout [B, R*H] receives the direction's final h in its columns d*H .. d*H+H-1.
// panel: (D + Hp) * Gp + Gp floats (pack_forward).
__attribute__((export_name("lstm_forward_dir"))) void lstm_forward_dir(
    int d, int B, int T, int D, int H, int R, int save, const f32* x, const f32* W, const f32* U,
    const f32* bias, f32* hout, f32* gd, f32* cd, f32* hd, f32* tcd, f32* panel) {
  const int Hp = round_up(H, 4), Gp = 4 * Hp, K = D + Hp, Q = Hp / 4, G = 4 * H;
  const long BG = (long)B * Gp, BH = (long)B * Hp;
  pack_forward(D, H, W + (long)d * D * G, U + (long)d * H * G, bias + (long)d * G, panel);
  const f32* biasIl = panel + (long)K * Gp;
  const Consts kc = load_consts();
  const f32* cPrev = 0;
  const f32* hPrev = 0;
  for (int s = 0; s < T; s++) {
    const int t = d == 0 ? s : T - 1 - s;
    f32* g = save ? gd + (long)t * BG : 0;
    f32* tc = save ? tcd + (long)t * BH : 0;
    f32* c = cd + (save ? (long)t : (long)(s & 1)) * BH;
    f32* h = hd + (save ? (long)t : (long)(s & 1)) * BH;
    for (int r0 = 0; r0 < B; r0 += FWD_ROWS) {
      const int r1 = B - r0 < FWD_ROWS ? B : r0 + FWD_ROWS;
      for (int q = 0; q < Q; q++) {
        const f32* strip = panel + (long)q * K * 16;
        const f32* b16 = biasIl + 16 * q;
        int r = r0;
        for (; r + 2 <= r1; r += 2) {
          const long oa = (long)r * Hp + 4 * q, ob = oa + Hp;
          forward_pair(&kc, D, Hp, strip, b16, x + ((long)r * T + t) * D,
                       x + ((long)(r + 1) * T + t) * D,
                       hPrev ? hPrev + (long)r * Hp : 0, hPrev ? hPrev + (long)(r + 1) * Hp : 0,
                       cPrev ? cPrev + oa : 0, cPrev ? cPrev + ob : 0,
                       g ? g + (long)r * Gp + 16 * q : 0, g ? g + (long)(r + 1) * Gp + 16 * q : 0,
                       c + oa, c + ob, h + oa, h + ob, tc ? tc + oa : 0, tc ? tc + ob : 0);
        }
        if (r < r1) {
          const long oa = (long)r * Hp + 4 * q;
          forward_one(&kc, D, Hp, strip, b16, x + ((long)r * T + t) * D,
                      hPrev ? hPrev + (long)r * Hp : 0, cPrev ? cPrev + oa : 0,
                      g ? g + (long)r * Gp + 16 * q : 0, c + oa, h + oa, tc ? tc + oa : 0);
        }
      }
    }
    cPrev = c;
    hPrev = h;
  }
  for (int b = 0; b < B; b++)
    for (int k = 0; k < H; k++) hout[(long)b * R * H + (long)d * H + k] = hPrev[(long)b * Hp + k];
}

// ---------------------------------------------------------------------------------------------
// Backward GEMMs.
//
// C[M, N] = A[M, K] P with P packed as strips of 8 columns, [ceil(N/8)][K][8] (zero beyond N):
// 4 x 8 register tiles; only the N valid columns are stored.

static inline __attribute__((always_inline)) void store8(f32* c, v128_t v0, v128_t v1, int nc) {
  if (nc == 8) {
    STORE(c, v0);
    STORE(c + 4, v1);
    return;
  }
  f32 tmp[8];
  STORE(tmp, v0);
  STORE(tmp + 4, v1);
  for (int k = 0; k < nc; k++) c[k] = tmp[k];
}

static inline void tile4x8(int K, const f32* a0, int lda, const f32* b, f32* c, int ldc, int nc) {
  const f32* a1 = a0 + lda;
  const f32* a2 = a1 + lda;
  const f32* a3 = a2 + lda;
  v128_t s00 = SPLAT(0), s01 = SPLAT(0), s10 = SPLAT(0), s11 = SPLAT(0);
  v128_t s20 = SPLAT(0), s21 = SPLAT(0), s30 = SPLAT(0), s31 = SPLAT(0);
  for (int k = 0; k < K; k++, b += 8) {
    v128_t b0 = LOAD(b), b1 = LOAD(b + 4);
    v128_t p = BCAST(a0 + k);
    MADD(s00, p, b0);
    MADD(s01, p, b1);
    p = BCAST(a1 + k);
    MADD(s10, p, b0);
    MADD(s11, p, b1);
    p = BCAST(a2 + k);
    MADD(s20, p, b0);
    MADD(s21, p, b1);
    p = BCAST(a3 + k);
    MADD(s30, p, b0);
    MADD(s31, p, b1);
  }
  store8(c, s00, s01, nc);
  store8(c + ldc, s10, s11, nc);
  store8(c + 2 * ldc, s20, s21, nc);
  store8(c + 3 * ldc, s30, s31, nc);
}

static inline void tile1x8(int K, const f32* a0, const f32* b, f32* c, int nc) {
  v128_t s0 = SPLAT(0), s1 = SPLAT(0);
  for (int k = 0; k < K; k++, b += 8) {
    v128_t p = BCAST(a0 + k);
    MADD(s0, p, LOAD(b));
    MADD(s1, p, LOAD(b + 4));
  }
  store8(c, s0, s1, nc);
}

static void gemm_packed(int M, int N, int K, const f32* A, int lda, const f32* P, f32* C,
                        int ldc) {
  for (int j = 0; j < N; j += 8) {
    const int nc = N - j < 8 ? N - j : 8;
    const f32* strip = P + (long)(j / 8) * K * 8;
    int i = 0;
    for (; i + 4 <= M; i += 4) {
      tile4x8(K, A + (long)i * lda, lda, strip, C + (long)i * ldc + j, ldc, nc);
    }
    for (; i < M; i++) tile1x8(K, A + (long)i * lda, strip, C + (long)i * ldc + j, nc);
  }
}

// C[M, N] += A^T Bm over n rows: A is [n][M] (row stride lda), Bm is [n][N] (row stride ldb,
// N a multiple of 8). 4 x 8 tiles of C kept in registers over the n rows.
static void gemm_tn_acc(int M, int N, int n, const f32* A, int lda, const f32* Bm, int ldb,
                        f32* C, int ldc) {
  int i = 0;
  for (; i + 4 <= M; i += 4) {
    for (int j = 0; j < N; j += 8) {
      f32* c = C + (long)i * ldc + j;
      v128_t s00 = LOAD(c), s01 = LOAD(c + 4), s10 = LOAD(c + ldc), s11 = LOAD(c + ldc + 4);
      v128_t s20 = LOAD(c + 2 * ldc), s21 = LOAD(c + 2 * ldc + 4);
      v128_t s30 = LOAD(c + 3 * ldc), s31 = LOAD(c + 3 * ldc + 4);
      const f32* a = A + i;
      const f32* b = Bm + j;
      for (int r = 0; r < n; r++, a += lda, b += ldb) {
        v128_t b0 = LOAD(b), b1 = LOAD(b + 4);
        v128_t p = BCAST(a);
        MADD(s00, p, b0);
        MADD(s01, p, b1);
        p = BCAST(a + 1);
        MADD(s10, p, b0);
        MADD(s11, p, b1);
        p = BCAST(a + 2);
        MADD(s20, p, b0);
        MADD(s21, p, b1);
        p = BCAST(a + 3);
        MADD(s30, p, b0);
        MADD(s31, p, b1);
      }
      STORE(c, s00);
      STORE(c + 4, s01);
      STORE(c + ldc, s10);
      STORE(c + ldc + 4, s11);
      STORE(c + 2 * ldc, s20);
      STORE(c + 2 * ldc + 4, s21);
      STORE(c + 3 * ldc, s30);
      STORE(c + 3 * ldc + 4, s31);
    }
  }
  for (; i < M; i++) {
    for (int j = 0; j < N; j += 8) {
      f32* c = C + (long)i * ldc + j;
      v128_t s0 = LOAD(c), s1 = LOAD(c + 4);
      const f32* a = A + i;
      const f32* b = Bm + j;
      for (int r = 0; r < n; r++, a += lda, b += ldb) {
        v128_t p = BCAST(a);
        MADD(s0, p, LOAD(b));
        MADD(s1, p, LOAD(b + 4));
      }
      STORE(c, s0);
      STORE(c + 4, s1);
    }
  }
}

// Packs the transpose of a direction's weights for dz P: P[j][k] = M[j][col(k)] for the
// interleaved column k of gate g, unit u (M row j of `rows` valid ones, row stride G; zero for
// padding units and j >= rows), as strips [ceil(n/8)][Gp][8] over n >= rows columns.
static void pack_transposed(int rows, int n, int H, const f32* Md, f32* P) {
  const int Hp = round_up(H, 4), Gp = 4 * Hp, G = 4 * H;
  for (int j0 = 0; j0 < n; j0 += 8) {
    f32* strip = P + (long)(j0 / 8) * Gp * 8;
    for (int k = 0; k < Gp; k++) {
      const int q = k / 16, g = (k % 16) / 4, u = 4 * q + k % 4;
      for (int l = 0; l < 8; l++) {
        const int j = j0 + l;
        strip[k * 8 + l] = j < rows && u < H ? Md[(long)j * G + g * H + u] : 0;
      }
    }
  }
}

// BPTT through 4 units of one row: g the saved activations (interleaved i, f, g, o), tcp tanh of
// the cell after the step, cPrev the cell before it (null on the direction's first step), dh / dc
// the incoming gradients (dc is replaced by the gradient w.r.t. cPrev), dz the output
// (interleaved).
static inline __attribute__((always_inline)) void backward_cell(const f32* g, const f32* tcp,
                                                                const f32* cPrev, const f32* dh,
                                                                f32* dc, f32* dz) {
  v128_t one = SPLAT(1.0f);
  v128_t gi = LOAD(g), gf = LOAD(g + 4), gg = LOAD(g + 8), go = LOAD(g + 12);
  v128_t tc = LOAD(tcp);
  v128_t vdh = LOAD(dh);
  v128_t dct = wasm_f32x4_add(
      LOAD(dc),
      wasm_f32x4_mul(vdh, wasm_f32x4_mul(go, wasm_f32x4_sub(one, wasm_f32x4_mul(tc, tc)))));
  v128_t cp = cPrev ? LOAD(cPrev) : SPLAT(0);
  STORE(dz, wasm_f32x4_mul(wasm_f32x4_mul(dct, gg), wasm_f32x4_mul(gi, wasm_f32x4_sub(one, gi))));
  STORE(dz + 4,
        wasm_f32x4_mul(wasm_f32x4_mul(dct, cp), wasm_f32x4_mul(gf, wasm_f32x4_sub(one, gf))));
  STORE(dz + 8,
        wasm_f32x4_mul(wasm_f32x4_mul(dct, gi), wasm_f32x4_sub(one, wasm_f32x4_mul(gg, gg))));
  STORE(dz + 12,
        wasm_f32x4_mul(wasm_f32x4_mul(vdh, tc), wasm_f32x4_mul(go, wasm_f32x4_sub(one, go))));
  STORE(dc, wasm_f32x4_mul(dct, gf));
}

// Rows per block of the backward recurrence: the block's dz ([rows, Gp]) stays in cache between
// the cell gradients and the three GEMMs that consume it.
#define BWD_ROWS 32

// ---------------------------------------------------------------------------------------------
// Backward (BPTT) of ONE direction d from the forward pass's saved state (gates [R, T, B, Gp],
// cs, hs, tcs [R, T, B, Hp]). Per step and block of rows: dz from the cell, then dh of the
// previous step (dz U^T), this direction's share of dx (dz W^T) and the weight gradients
// ([x_t, h_prev]^T dz, accumulated) — so no [T*B, G] buffer and no transposes.
// Writes dW [R, D, G], dU [R, H, G], db [R, G] in direction d's slices and dxs [B, T, D] (this
// direction's share of dx; lstm_backward_dx adds the shares). Scratch, this direction's own:
// dWU [D + Hp, Gp], dzb [BWD_ROWS, Gp], utp [ceil(Hp/8)*8 * Gp], wtp [ceil(D/8)*8 * Gp],
// dh, dc, dhn [B, Hp], dbIl [Gp].
__attribute__((export_name("lstm_backward_dir"))) void lstm_backward_dir(
    int d, int B, int T, int D, int H, int R, const f32* x, const f32* W, const f32* U,
    const f32* gates, const f32* cs, const f32* hs, const f32* tcs, const f32* dy, f32* dW,
    f32* dU, f32* db, f32* dWU, f32* dzb, f32* utp, f32* wtp, f32* dxs, f32* dh, f32* dc,
    f32* dhn, f32* dbIl) {
  const int Hp = round_up(H, 4), Gp = 4 * Hp, K = D + Hp, Q = Hp / 4, G = 4 * H;
  const long BG = (long)B * Gp, BH = (long)B * Hp;
  const f32* gd = gates + (long)d * T * BG;
  const f32* cd = cs + (long)d * T * BH;
  const f32* hd = hs + (long)d * T * BH;
  const f32* tcd = tcs + (long)d * T * BH;
  pack_transposed(H, round_up(Hp, 8), H, U + (long)d * H * G, utp);
  pack_transposed(D, round_up(D, 8), H, W + (long)d * D * G, wtp);
  zero(dWU, (long)K * Gp);
  zero(dbIl, Gp);
  zero(dc, BH);
  for (int b = 0; b < B; b++)
    for (int k = 0; k < Hp; k++)
      dh[(long)b * Hp + k] = k < H ? dy[(long)b * R * H + (long)d * H + k] : 0;
  for (int s = T - 1; s >= 0; s--) {
    const int t = d == 0 ? s : T - 1 - s;
    const int tPrev = d == 0 ? t - 1 : t + 1;
    const f32* g = gd + (long)t * BG;
    const f32* tc = tcd + (long)t * BH;
    const f32* cp = s > 0 ? cd + (long)tPrev * BH : 0;
    const f32* hp = s > 0 ? hd + (long)tPrev * BH : 0;
    for (int r0 = 0; r0 < B; r0 += BWD_ROWS) {
      const int rows = B - r0 < BWD_ROWS ? B - r0 : BWD_ROWS;
      for (int r = 0; r < rows; r++) {
        const long b = r0 + r;
        for (int q = 0; q < Q; q++) {
          const long o = b * Hp + 4 * q;
          backward_cell(g + b * Gp + 16 * q, tc + o, cp ? cp + o : 0, dh + o, dc + o,
                        dzb + (long)r * Gp + 16 * q);
        }
      }
      for (int r = 0; r < rows; r++)
        for (int k = 0; k < Gp; k += 4)
          STORE(dbIl + k, wasm_f32x4_add(LOAD(dbIl + k), LOAD(dzb + (long)r * Gp + k)));
      gemm_packed(rows, D, Gp, dzb, Gp, wtp, dxs + ((long)r0 * T + t) * D, T * D);
      gemm_tn_acc(D, Gp, rows, x + ((long)r0 * T + t) * D, T * D, dzb, Gp, dWU, Gp);
      if (s > 0) {
        gemm_packed(rows, Hp, Gp, dzb, Gp, utp, dhn + (long)r0 * Hp, Hp);
        gemm_tn_acc(Hp, Gp, rows, hp + (long)r0 * Hp, Hp, dzb, Gp, dWU + (long)D * Gp, Gp);
      }
    }
    if (s > 0) {
      f32* swap = dh;
      dh = dhn;
      dhn = swap;
    }
  }
  f32* dWd = dW + (long)d * D * G;
  f32* dUd = dU + (long)d * H * G;
  f32* dbd = db + (long)d * G;
  for (int g = 0; g < 4; g++) {
    for (int u = 0; u < H; u++) {
      const int k = il(g, u);
      for (int j = 0; j < D; j++) dWd[(long)j * G + g * H + u] = dWU[(long)j * Gp + k];
      for (int j = 0; j < H; j++) dUd[(long)j * G + g * H + u] = dWU[(long)(D + j) * Gp + k];
      dbd[g * H + u] = dbIl[k];
    }
  }
}

// dx = dxs0 (+ dxs1 when R = 2), all [B, T, D].
__attribute__((export_name("lstm_backward_dx"))) void lstm_backward_dx(
    int B, int T, int D, int R, const f32* dxs0, const f32* dxs1, f32* dx) {
  const long n = (long)B * T * D;
  if (R == 1) {
    for (long k = 0; k < n; k++) dx[k] = dxs0[k];
  } else {
    for (long k = 0; k < n; k++) dx[k] = dxs0[k] + dxs1[k];
  }
}
