// One device CNN block — Conv1D ("same" padding exactly as tf.conv1d, stride 1) + bias + ReLU +
// MaxPool(2, 'valid') — as ONE tf.customGrad op whose forward and backward are each one call into
// a WebAssembly SIMD kernel (ml/kernels/conv.c, float64 arithmetic). The tfjs composition
// (reshape, im2col conv, add, relu, maxPool and their gradients) cost ~19 ms of per-op overhead per
// split step at batch 256 for ~1.25 M multiply-adds; plain JavaScript loops over Float32Arrays then
// took ~3 ms forward; the kernel does the same double-precision arithmetic in the same order, with
// bit-identical results (tests/ml/model/conv_reference.ts keeps those loops as the oracle). The
// forward keeps, per pooled output, the position that won the pool (ties: the first, as
// tf.maxPool) and whether it passed the ReLU, so the backward only visits the winners. NaN
// propagates (a NaN input gives NaN outputs, which the wire checks refuse). Checked against the
// tfjs composition in tests/ml/model/conv_block_test.ts.
//
// Also exported on plain arrays (convBlockForward -> trace -> convBlockBackward): the split device
// keeps the trace across the round trip to the edge and computes its gradient from it, where the
// tensor op would need the forward recomputed under a tape.
import * as tf from "@tensorflow/tfjs";
import { convKernel, type ConvKernelDims } from "../kernels/conv_kernel.ts";
import { floatsView } from "../tf/views.ts";

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

/** Sizes of one block: x [batch, length, channels], kernel [size, channels, filters]. */
export interface ConvBlockDims {
  batch: number;
  length: number;
  channels: number;
  size: number;
  filters: number;
}

/** What one forward leaves for its backward: the zero-padded input, the kernel it used and, per
 * pooled output, the pool's winner. Plain arrays, no tensors: a device can keep it across the
 * network round trip to the edge instead of recomputing the forward under a tape. */
export interface ConvBlockTrace {
  readonly dims: ConvBlockDims;
  /** x zero-padded to [batch, length + size - 1, channels] ("same" padding). */
  readonly xp: Float32Array;
  /** The kernel [size, channels, filters] as the forward read it. */
  readonly kernel: Float32Array;
  /** Per pooled output: 0 if conv position 2p won the pool, 1 if 2p + 1 did, -1 if the ReLU cut
   * the winner (no gradient). */
  readonly winner: Int8Array;
}

/** Checks the sizes against the arrays' lengths (the array form has no tensor shapes to lean on). */
function checkArrays(
  dims: ConvBlockDims,
  x: Float32Array,
  kernel: Float32Array,
  bias: Float32Array,
) {
  const { batch: B, length: L, channels: C, size: K, filters: F } = dims;
  const sizes = [B, L, C, K, F];
  if (!sizes.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`convBlock: sizes [${sizes}] must be positive integers`);
  }
  if (L < 2) throw new Error(`convBlock: length ${L} cannot be pooled by 2`);
  if (x.length !== B * L * C || kernel.length !== K * C * F || bias.length !== F) {
    throw new Error(
      `convBlock: ${x.length} / ${kernel.length} / ${bias.length} values for x [${B}, ${L}, ${C}], kernel [${K}, ${C}, ${F}], bias [${F}]`,
    );
  }
}

/** The block's forward on plain arrays: x [batch, length, channels] -> out [batch, floor(length /
 * 2), filters], and the trace its backward needs. `x`, `kernel` and `bias` are not modified; the
 * trace keeps `kernel` (not a copy), so the caller must not change it before the backward. The
 * arithmetic runs in the WebAssembly kernel (ml/kernels/conv.c), in float64 like the plain loops
 * it replaced, which tests/ml/model/conv_reference.ts keeps as the bit-for-bit oracle. With
 * `outView`, `out` is a view into the kernel's memory, valid until its next call. */
export function convBlockForward(
  dims: ConvBlockDims,
  x: Float32Array,
  kernel: Float32Array,
  bias: Float32Array,
  outView = false,
): { out: Float32Array; trace: ConvBlockTrace } {
  checkArrays(dims, x, kernel, bias);
  const { batch: B, length: L, channels: C, size: K } = dims;
  // tf "same" for stride 1: total padding K - 1, the smaller half on the left. With x copied
  // into a zero-padded [B, L + K - 1, C] buffer, the receptive field of conv position t is the
  // K * C consecutive values from (t, 0): each output is one contiguous dot product.
  const padLeft = Math.floor((K - 1) / 2);
  const Lp = L + K - 1;
  const xp = new Float32Array(B * Lp * C);
  for (let b = 0; b < B; b++) {
    xp.set(x.subarray(b * L * C, (b + 1) * L * C), (b * Lp + padLeft) * C);
  }
  const { out, winner } = convKernel().forward(kernelDims(dims), xp, kernel, bias, outView);
  return { out, trace: { dims, xp, kernel, winner } };
}

function kernelDims(dims: ConvBlockDims): ConvKernelDims {
  const { batch, length, channels, size, filters } = dims;
  return {
    batch,
    paddedLength: length + size - 1,
    channels,
    size,
    filters,
    pooled: Math.floor(length / 2),
  };
}

/** The block's backward on plain arrays: given dy [batch, floor(length / 2), filters], the
 * gradients of the kernel and bias and, if `withInput`, of x (a first layer's input is data, whose
 * gradient nobody needs). */
export function convBlockBackward(
  trace: ConvBlockTrace,
  dy: Float32Array,
  withInput: boolean,
): { dx: Float32Array | null; dKernel: Float32Array; dBias: Float32Array } {
  const { dims, xp, kernel, winner } = trace;
  const { batch: B, length: L, channels: C, size: K, filters: F } = dims;
  const P = Math.floor(L / 2);
  if (dy.length !== B * P * F) {
    throw new Error(`convBlock: ${dy.length} gradient values for output [${B}, ${P}, ${F}]`);
  }
  const { dxp, dKernel, dBias } = convKernel().backward(
    kernelDims(dims),
    xp,
    kernel,
    winner,
    dy,
    withInput,
  );
  let dx: Float32Array | null = null;
  if (dxp !== null) {
    const padLeft = Math.floor((K - 1) / 2);
    const Lp = L + K - 1;
    dx = new Float32Array(B * L * C);
    for (let b = 0; b < B; b++) {
      const from = (b * Lp + padLeft) * C;
      dx.set(dxp.subarray(from, from + L * C), b * L * C);
    }
  }
  return { dx, dKernel, dBias };
}

const block = tf.customGrad(
  ((x: tf.Tensor3D, kernel: tf.Tensor3D, bias: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const dims = checkShapes(x, kernel, bias);
    // x as a heap view (copied into the padded input at once), the kernel as a copy (the trace
    // keeps it), the output as a view into the conv kernel's memory, copied into the tensor below.
    const { out, trace } = convBlockForward(
      dims,
      floatsView(x, "convBlock: x"),
      floats(kernel, "kernel"),
      floats(bias, "bias"),
      true,
    );
    const { batch: B, length: L, channels: C, size: K, filters: F } = dims;
    const P = Math.floor(L / 2);
    save([]); // the saved state (the trace) lives in this closure, not in tensors
    const value = tf.tensor3d(out, [B, P, F]);
    const gradFunc = (dy: tf.Tensor3D) => {
      if (dy.shape[0] !== B || dy.shape[1] !== P || dy.shape[2] !== F) {
        throw new Error(`convBlock: gradient [${dy.shape}] for output [${B}, ${P}, ${F}]`);
      }
      const { dx, dKernel, dBias } = convBlockBackward(
        trace,
        floatsView(dy, "convBlock: dy"),
        true,
      );
      return [
        tf.tensor3d(dx!, [B, L, C]),
        tf.tensor3d(dKernel, [K, C, F]),
        tf.tensor1d(dBias),
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
