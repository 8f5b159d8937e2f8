// Fused (Bi)LSTM for WebAssembly SIMD (wasm32 + simd128): the whole recurrence of one direction
// forward, and its whole BPTT backward, each in ONE call. Built by tools/build_lstm_kernel.sh into
// ml/kernels/lstm_wasm.generated.ts; called from ml/kernels/lstm_kernel.ts (which owns all size
// checks: this file trusts the sizes and pointers it is given). The memory is shared and imported:
// two instances of this module (the caller's thread and a worker) may run the two directions at
// the same time, each with its own scratch; a call writes only its direction's outputs.
//
// Layouts (row-major float32; G = 4H, gate order i, f, g, o as in Keras/PyTorch):
//   x [B, T, D]   W [R, D, G]   U [R, H, G]   bias [R, G]   hout / dy [B, R*H]
//   saved per direction d (indexed by the ORIGINAL time t, direction 1 runs t = T-1 .. 0):
//     gates [R, T, B, G] (post-activation i, f, g, o)   cs, hs [R, T, B, H] (c and h after step t)
// Exact sigmoid 1/(1+e^-x) and tanh (1-e^-2|x|)/(1+e^-2|x|) with a Cephes-style expf
// (relative error ~1e-7); no approximations beyond float32 rounding.
#include <wasm_simd128.h>

typedef float f32;

#define SPLAT(v) wasm_f32x4_splat(v)

// e^x: x = n ln2 + r with n = round(x / ln2) (the 1.5 * 2^23 trick: the float's low mantissa bits
// then hold n, so 2^n is one integer add and shift, no float-int conversion), |r| <= ln2/2,
// Cephes' degree-6 polynomial for e^r. Clamped to [-87.3, 88.3] (pmin/pmax: single instructions).
static inline v128_t vexp(v128_t x) {
  const v128_t magic = SPLAT(12582912.0f);  // 1.5 * 2^23
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, SPLAT(-87.3f)), SPLAT(88.3f));
  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, SPLAT(1.44269504088896341f)), magic);
  v128_t fx = wasm_f32x4_sub(t, magic);
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, SPLAT(0.693359375f)));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, SPLAT(-2.12194440e-4f)));
  v128_t y = SPLAT(1.9875691500e-4f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), SPLAT(1.3981999507e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), SPLAT(8.3334519073e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), SPLAT(4.1665795894e-2f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), SPLAT(1.6666665459e-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, x), SPLAT(5.0000001201e-1f));
  y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(y, x), x), x), SPLAT(1.0f));
  // t's bits are 0x4B400000 + n; (bits + 127) << 23 is the float 2^n (the high bits shift out).
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(t, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, scale);
}

static inline v128_t vsigmoid(v128_t x) {
  v128_t one = SPLAT(1.0f);
  return wasm_f32x4_div(one, wasm_f32x4_add(one, vexp(wasm_f32x4_neg(x))));
}

static inline v128_t vtanh(v128_t x) {
  v128_t one = SPLAT(1.0f);
  v128_t sign = wasm_v128_and(x, wasm_i32x4_splat((int)0x80000000));
  v128_t e = vexp(wasm_f32x4_mul(wasm_f32x4_abs(x), SPLAT(-2.0f)));
  v128_t t = wasm_f32x4_div(wasm_f32x4_sub(one, e), wasm_f32x4_add(one, e));
  return wasm_v128_or(t, sign);
}

// ---------------------------------------------------------------------------------------------
// C[M,N] (+)= A[M,K] B[K,N], row strides lda, ldb, ldc. B is packed per block of KC rows into
// `panel` ([N/8][kc][8]: each 8-column strip contiguous), then 4 x 8 register tiles run over the
// strip. The last N % 8 columns use unpacked loads. panel holds at least KC * N floats.

#define KC 256
#define LOAD(p) wasm_v128_load(p)
#define STORE(p, v) wasm_v128_store(p, v)
#define MADD(acc, a, b) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))
#define BCAST(p) wasm_v128_load32_splat(p)

static inline void put(f32* c, v128_t v, int accumulate) {
  if (accumulate) v = wasm_f32x4_add(v, LOAD(c));
  STORE(c, v);
}

static void pack(int kc, int n8, const f32* B, int ldb, f32* panel) {
  for (int j = 0; j < n8; j += 8) {
    f32* dst = panel + (long)j * kc;
    const f32* src = B + j;
    for (int k = 0; k < kc; k++, src += ldb, dst += 8) {
      STORE(dst, LOAD(src));
      STORE(dst + 4, LOAD(src + 4));
    }
  }
}

// 4 rows x 8 columns over kc, B strip packed ([kc][8]).
static inline void tile4x8(int kc, const f32* a0, int lda, const f32* b, f32* c, int ldc,
                           int accumulate) {
  const f32* a1 = a0 + lda;
  const f32* a2 = a1 + lda;
  const f32* a3 = a2 + lda;
  v128_t s00 = SPLAT(0), s01 = SPLAT(0), s10 = SPLAT(0), s11 = SPLAT(0);
  v128_t s20 = SPLAT(0), s21 = SPLAT(0), s30 = SPLAT(0), s31 = SPLAT(0);
  for (int k = 0; k < kc; k++, b += 8) {
    v128_t b0 = LOAD(b), b1 = LOAD(b + 4);
    v128_t x = BCAST(a0 + k);
    MADD(s00, x, b0);
    MADD(s01, x, b1);
    x = BCAST(a1 + k);
    MADD(s10, x, b0);
    MADD(s11, x, b1);
    x = BCAST(a2 + k);
    MADD(s20, x, b0);
    MADD(s21, x, b1);
    x = BCAST(a3 + k);
    MADD(s30, x, b0);
    MADD(s31, x, b1);
  }
  put(c, s00, accumulate);
  put(c + 4, s01, accumulate);
  c += ldc;
  put(c, s10, accumulate);
  put(c + 4, s11, accumulate);
  c += ldc;
  put(c, s20, accumulate);
  put(c + 4, s21, accumulate);
  c += ldc;
  put(c, s30, accumulate);
  put(c + 4, s31, accumulate);
}

static inline void tile1x8(int kc, const f32* a0, const f32* b, f32* c, int accumulate) {
  v128_t s0 = SPLAT(0), s1 = SPLAT(0);
  for (int k = 0; k < kc; k++, b += 8) {
    v128_t x = BCAST(a0 + k);
    MADD(s0, x, LOAD(b));
    MADD(s1, x, LOAD(b + 4));
  }
  put(c, s0, accumulate);
  put(c + 4, s1, accumulate);
}

// One block of kc rows of B, packed in `panel` (n8 columns), tail columns from Bk.
static void gemm_kblock(int M, int N, int kc, const f32* Ak, int lda, const f32* panel,
                        const f32* Bk, int ldb, f32* C, int ldc, int acc) {
  const int n8 = N & ~7;
  int i = 0;
  for (; i + 4 <= M; i += 4) {
    for (int j = 0; j < n8; j += 8) {
      tile4x8(kc, Ak + (long)i * lda, lda, panel + (long)j * kc, C + (long)i * ldc + j, ldc, acc);
    }
  }
  for (; i < M; i++) {
    for (int j = 0; j < n8; j += 8) {
      tile1x8(kc, Ak + (long)i * lda, panel + (long)j * kc, C + (long)i * ldc + j, acc);
    }
  }
  // Remaining N % 8 columns, one by one, straight from B.
  for (int j = n8; j < N; j++) {
    for (int r = 0; r < M; r++) {
      const f32* a = Ak + (long)r * lda;
      f32 sum = 0;
      for (int k = 0; k < kc; k++) sum += a[k] * Bk[(long)k * ldb + j];
      f32* c = C + (long)r * ldc + j;
      *c = acc ? *c + sum : sum;
    }
  }
}

// General GEMM: packs each block of KC rows of B into panel (KC * N floats) as it goes.
static void gemm(int M, int N, int K, const f32* A, int lda, const f32* B, int ldb, f32* C,
                 int ldc, int accumulate, f32* panel) {
  const int n8 = N & ~7;
  for (int k0 = 0; k0 < K; k0 += KC) {
    const int kc = K - k0 < KC ? K - k0 : KC;
    pack(kc, n8, B + (long)k0 * ldb, ldb, panel);
    gemm_kblock(M, N, kc, A + k0, lda, panel, B + (long)k0 * ldb, ldb, C, ldc,
                accumulate || k0 > 0);
  }
}

// Packs all of B [K, N] once (K * N floats), for a matrix used by many GEMMs (U, W per step).
static void pack_all(int N, int K, const f32* B, int ldb, f32* panel) {
  const int n8 = N & ~7;
  for (int k0 = 0; k0 < K; k0 += KC) {
    const int kc = K - k0 < KC ? K - k0 : KC;
    pack(kc, n8, B + (long)k0 * ldb, ldb, panel + (long)k0 * n8);
  }
}

static void gemm_packed(int M, int N, int K, const f32* A, int lda, const f32* panel,
                        const f32* B, int ldb, f32* C, int ldc, int accumulate) {
  const int n8 = N & ~7;
  for (int k0 = 0; k0 < K; k0 += KC) {
    const int kc = K - k0 < KC ? K - k0 : KC;
    gemm_kblock(M, N, kc, A + k0, lda, panel + (long)k0 * n8, B + (long)k0 * ldb, ldb, C, ldc,
                accumulate || k0 > 0);
  }
}

// Batch rows per block of the recurrence: gate pre-activations of a block stay in L1 between the
// GEMM and the gate math.
#define RB 16

// dst[c, r] = src[r, c] for r < rows, c < cols (row strides lds, ldd), in 8 x 8 blocks so that
// both sides stay within a few cache lines (the column-wise writes of a plain loop over a [5632]
// stride cost a cache/TLB miss each).
static void transpose_to(int rows, int cols, const f32* src, int lds, f32* dst, int ldd) {
  for (int r0 = 0; r0 < rows; r0 += 8) {
    const int r1 = r0 + 8 < rows ? r0 + 8 : rows;
    for (int c0 = 0; c0 < cols; c0 += 8) {
      const int c1 = c0 + 8 < cols ? c0 + 8 : cols;
      for (int c = c0; c < c1; c++) {
        f32* d = dst + (long)c * ldd;
        for (int r = r0; r < r1; r++) d[r] = src[(long)r * lds + c];
      }
    }
  }
}

// dst[cols, rows] = transpose of src[rows, cols] (src row stride lds).
static void transpose(int rows, int cols, const f32* src, int lds, f32* dst) {
  transpose_to(rows, cols, src, lds, dst, rows);
}

static void zero(f32* p, long n) {
  for (long k = 0; k < n; k++) p[k] = 0;
}

// Lane helpers: elementwise loops run 4 lanes at a time; the last n % 4 lanes go through a padded
// temporary so that every H works (the values of the padding lanes are discarded).
static inline __attribute__((always_inline)) v128_t load_n(const f32* p, int n) {
  if (n == 4) return LOAD(p);
  f32 tmp[4] = {0, 0, 0, 0};
  for (int k = 0; k < n; k++) tmp[k] = p[k];
  return LOAD(tmp);
}

static inline __attribute__((always_inline)) void store_n(f32* p, v128_t v, int n) {
  if (n == 4) {
    STORE(p, v);
    return;
  }
  f32 tmp[4];
  STORE(tmp, v);
  for (int k = 0; k < n; k++) p[k] = tmp[k];
}

// One group of n <= 4 units of one batch row. z: pre-activations i, f, g, o at z, z+H, z+2H, z+3H
// (replaced by the activations); cPrev is null on the direction's first step.
static inline __attribute__((always_inline)) void forward_cell(f32* z, int H, const f32* cPrev,
                                                               f32* c, f32* h, int n) {
  v128_t gi = vsigmoid(load_n(z, n));
  v128_t gf = vsigmoid(load_n(z + H, n));
  v128_t gg = vtanh(load_n(z + 2 * H, n));
  v128_t go = vsigmoid(load_n(z + 3 * H, n));
  v128_t cn = wasm_f32x4_mul(gi, gg);
  if (cPrev) cn = wasm_f32x4_add(cn, wasm_f32x4_mul(gf, load_n(cPrev, n)));
  store_n(z, gi, n);
  store_n(z + H, gf, n);
  store_n(z + 2 * H, gg, n);
  store_n(z + 3 * H, go, n);
  store_n(c, cn, n);
  store_n(h, wasm_f32x4_mul(go, vtanh(cn)), n);
}

// BPTT through one group of n <= 4 units of one batch row: g the saved activations (i, f, g, o
// strided by H), c / cPrev the cell after / before the step (cPrev null on the first step),
// dh / dc the incoming gradients (dc is replaced by the gradient w.r.t. cPrev), dz the output.
static inline __attribute__((always_inline)) void backward_cell(const f32* g, int H, const f32* c,
                                                                const f32* cPrev, const f32* dh,
                                                                f32* dc, f32* dz, int n) {
  v128_t one = SPLAT(1.0f);
  v128_t gi = load_n(g, n), gf = load_n(g + H, n);
  v128_t gg = load_n(g + 2 * H, n), go = load_n(g + 3 * H, n);
  v128_t tc = vtanh(load_n(c, n));
  v128_t vdh = load_n(dh, n);
  v128_t dct = wasm_f32x4_add(
      load_n(dc, n),
      wasm_f32x4_mul(vdh, wasm_f32x4_mul(go, wasm_f32x4_sub(one, wasm_f32x4_mul(tc, tc)))));
  v128_t cp = cPrev ? load_n(cPrev, n) : SPLAT(0);
  v128_t dzi =
      wasm_f32x4_mul(wasm_f32x4_mul(dct, gg), wasm_f32x4_mul(gi, wasm_f32x4_sub(one, gi)));
  v128_t dzf =
      wasm_f32x4_mul(wasm_f32x4_mul(dct, cp), wasm_f32x4_mul(gf, wasm_f32x4_sub(one, gf)));
  v128_t dzg =
      wasm_f32x4_mul(wasm_f32x4_mul(dct, gi), wasm_f32x4_sub(one, wasm_f32x4_mul(gg, gg)));
  v128_t dzo =
      wasm_f32x4_mul(wasm_f32x4_mul(vdh, tc), wasm_f32x4_mul(go, wasm_f32x4_sub(one, go)));
  store_n(dz, dzi, n);
  store_n(dz + H, dzf, n);
  store_n(dz + 2 * H, dzg, n);
  store_n(dz + 3 * H, dzo, n);
  store_n(dc, wasm_f32x4_mul(dct, gf), n);
}

// ---------------------------------------------------------------------------------------------
// Forward of ONE direction d (the directions are independent, so two threads can run one each on a
// shared memory with separate scratch). gates holds [T, B, G] when save, else [B, G] (one step);
// cs/hs hold [T, B, H] when save, else [2, B, H] (a ring of the last two steps): this direction's
// own regions. hout [B, R*H] receives the direction's final h in its columns d*H .. d*H+H-1.
// wpanel (D * G floats) and upanel (H * G) hold W_d and U_d packed.
// Per step and block of RB rows: z = bias + x_t W_d + h_prev U_d (two GEMMs), then the gates.
__attribute__((export_name("lstm_forward_dir"))) void lstm_forward_dir(
    int d, int B, int T, int D, int H, int R, int save, const f32* x, const f32* W, const f32* U,
    const f32* bias, f32* hout, f32* gd, f32* cd, f32* hd, f32* wpanel, f32* upanel) {
  const int G = 4 * H;
  const long BG = (long)B * G, BH = (long)B * H;
  const f32* Wd = W + (long)d * D * G;
  const f32* Ud = U + (long)d * H * G;
  const f32* bd = bias + (long)d * G;
  pack_all(G, D, Wd, G, wpanel);
  pack_all(G, H, Ud, G, upanel);
  const f32* cPrev = 0;
  const f32* hPrev = 0;
  for (int s = 0; s < T; s++) {
    const int t = d == 0 ? s : T - 1 - s;
    f32* z = gd + (save ? (long)t : 0) * BG;
    f32* c = cd + (save ? (long)t : (long)(s & 1)) * BH;
    f32* h = hd + (save ? (long)t : (long)(s & 1)) * BH;
    for (int b0 = 0; b0 < B; b0 += RB) {
      const int rows = B - b0 < RB ? B - b0 : RB;
      f32* zr = z + (long)b0 * G;
      for (int r = 0; r < rows; r++) {
        for (int k = 0; k < G; k += 4) STORE(zr + (long)r * G + k, LOAD(bd + k));
      }
      gemm_packed(rows, G, D, x + ((long)b0 * T + t) * D, T * D, wpanel, Wd, G, zr, G, 1);
      if (s > 0) gemm_packed(rows, G, H, hPrev + (long)b0 * H, H, upanel, Ud, G, zr, G, 1);
      for (int b = b0; b < b0 + rows; b++) {
        f32* zb = z + (long)b * G;
        f32* cb = c + (long)b * H;
        f32* hb = h + (long)b * H;
        const f32* cpb = s > 0 ? cPrev + (long)b * H : 0;
        int k = 0;
        for (; k + 4 <= H; k += 4) {
          forward_cell(zb + k, H, cpb ? cpb + k : 0, cb + k, hb + k, 4);
        }
        if (k < H) forward_cell(zb + k, H, cpb ? cpb + k : 0, cb + k, hb + k, H - k);
      }
    }
    cPrev = c;
    hPrev = h;
  }
  for (int b = 0; b < B; b++)
    for (int k = 0; k < H; k++) hout[(long)b * R * H + (long)d * H + k] = hPrev[(long)b * H + k];
}

// ---------------------------------------------------------------------------------------------
// Backward (BPTT) of ONE direction d from the forward pass's saved gates/cs/hs ([R, T, B, ...]).
// Writes dW [R, D, G], dU [R, H, G], db [R, G] in direction d's slices and this direction's share
// of dx, dxs [T*B, D] (rows t*B + b); lstm_backward_dx adds the directions' shares into dx.
// Scratch, this direction's own: xhT [D + H, T*B] (x and the h before each step, transposed, so
// that dW and dU are one GEMM), dZ [T*B, G], dWU [D + H, G], UT [G, H], WT [G, D], dh, dc, dhn
// [B, H], panel (see gemm), upanel (G * H: U_d transposed and packed).
__attribute__((export_name("lstm_backward_dir"))) void lstm_backward_dir(
    int d, int B, int T, int D, int H, int R, const f32* x, const f32* W, const f32* U,
    const f32* gates, const f32* cs, const f32* hs, const f32* dy, f32* dW, f32* dU, f32* db,
    f32* xhT, f32* dZ, f32* dWU, f32* UT, f32* WT, f32* dxs, f32* dh, f32* dc, f32* dhn,
    f32* panel, f32* upanel) {
  const int G = 4 * H;
  const long TB = (long)T * B, BG = (long)B * G, BH = (long)B * H;
  f32* xT = xhT;
  f32* hT = xhT + (long)D * TB;
  // xT[k, t*B + b] = x[b, t, k]
  for (int t = 0; t < T; t++) transpose_to(B, D, x + (long)t * D, T * D, xT + (long)t * B, (int)TB);
  const f32* gd = gates + (long)d * T * BG;
  const f32* cd = cs + (long)d * T * BH;
  const f32* hd = hs + (long)d * T * BH;
  const f32* Ud = U + (long)d * H * G;
  transpose(H, G, Ud, G, UT);
  pack_all(H, G, UT, H, upanel);
  for (int b = 0; b < B; b++)
    for (int k = 0; k < H; k++) dh[(long)b * H + k] = dy[(long)b * R * H + (long)d * H + k];
  zero(dc, BH);
  for (int s = T - 1; s >= 0; s--) {
    const int t = d == 0 ? s : T - 1 - s;
    const int tPrev = d == 0 ? t - 1 : t + 1;
    const f32* g = gd + (long)t * BG;
    const f32* c = cd + (long)t * BH;
    const f32* cp = s > 0 ? cd + (long)tPrev * BH : 0;
    f32* dz = dZ + (long)t * BG;
    for (int b0 = 0; b0 < B; b0 += RB) {
      const int rows = B - b0 < RB ? B - b0 : RB;
      for (int b = b0; b < b0 + rows; b++) {
        const f32* gb = g + (long)b * G;
        f32* dzb = dz + (long)b * G;
        const long o = (long)b * H;
        const f32* cpb = s > 0 ? cp + o : 0;
        int k = 0;
        for (; k + 4 <= H; k += 4) {
          backward_cell(gb + k, H, c + o + k, cpb ? cpb + k : 0, dh + o + k, dc + o + k,
                        dzb + k, 4);
        }
        if (k < H) {
          backward_cell(gb + k, H, c + o + k, cpb ? cpb + k : 0, dh + o + k, dc + o + k,
                        dzb + k, H - k);
        }
      }
      if (s > 0) {
        gemm_packed(rows, H, G, dz + (long)b0 * G, G, upanel, UT, H, dhn + (long)b0 * H, H, 0);
      }
    }
    if (s > 0) {
      f32* swap = dh;
      dh = dhn;
      dhn = swap;
    }
  }
  // hT[k, t*B + b] = h before the step at time t (zero for the direction's first step).
  for (int s = 0; s < T; s++) {
    const int t = d == 0 ? s : T - 1 - s;
    const int tPrev = d == 0 ? t - 1 : t + 1;
    if (s == 0) {
      for (int k = 0; k < H; k++) zero(hT + (long)k * TB + (long)t * B, B);
    } else {
      transpose_to(B, H, hd + (long)tPrev * BH, H, hT + (long)t * B, (int)TB);
    }
  }
  gemm(D + H, G, (int)TB, xhT, (int)TB, dZ, G, dWU, G, 0, panel);
  f32* dWd = dW + (long)d * D * G;
  f32* dUd = dU + (long)d * H * G;
  for (long k = 0; k < (long)D * G; k++) dWd[k] = dWU[k];
  for (long k = 0; k < (long)H * G; k++) dUd[k] = dWU[(long)D * G + k];
  f32* dbd = db + (long)d * G;
  for (int k = 0; k < G; k += 4) {
    v128_t sum = SPLAT(0);
    for (long r = 0; r < TB; r++) sum = wasm_f32x4_add(sum, LOAD(dZ + r * G + k));
    STORE(dbd + k, sum);
  }
  transpose(D, G, W + (long)d * D * G, G, WT);
  gemm((int)TB, D, G, dZ, G, WT, D, dxs, D, 0, panel);
}

// dx [B, T, D] = dxs0 (+ dxs1 when R = 2), each [T*B, D] with rows t*B + b.
__attribute__((export_name("lstm_backward_dx"))) void lstm_backward_dx(
    int B, int T, int D, int R, const f32* dxs0, const f32* dxs1, f32* dx) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const long o = ((long)t * B + b) * D;
      f32* dst = dx + ((long)b * T + t) * D;
      if (R == 1) {
        for (int k = 0; k < D; k++) dst[k] = dxs0[o + k];
      } else {
        for (int k = 0; k < D; k++) dst[k] = dxs0[o + k] + dxs1[o + k];
      }
    }
}
