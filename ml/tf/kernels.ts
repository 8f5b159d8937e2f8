// Kernel patches for tfjs-backend-wasm 4.22, measured in shared/notes/tfjs-and-binary.md.
// All three give results identical to the stock kernels; they only change how the work is done.
import type * as TF from "@tensorflow/tfjs";

type Tf = typeof TF;
// tfjs' kernel-level types are not exported from the union package; these are the fields we use.
interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: TF.DataType;
}
interface WasmBackendLike {
  readSync(dataId: object): TF.TypedArray;
  makeOutput(shape: number[], dtype: TF.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): TF.TypedArray;
  disposeData(dataId: object): void;
}
type KernelArgs = {
  inputs: Record<string, TensorInfo>;
  backend: WasmBackendLike;
  attrs: Record<string, unknown>;
};
type KernelFunc = (args: KernelArgs) => TensorInfo | TensorInfo[];

function kernelFuncOf(tf: Tf, name: string, backend: string): KernelFunc {
  const kernel = tf.getKernel(name, backend);
  if (!kernel) throw new Error(`tfjs kernel ${name} is not registered for ${backend}`);
  return kernel.kernelFunc as unknown as KernelFunc;
}

function replaceKernel(tf: Tf, name: string, kernelFunc: KernelFunc): void {
  const original = tf.getKernel(name, "wasm");
  if (original) tf.unregisterKernel(name, "wasm");
  tf.registerKernel({
    kernelName: name,
    backendName: "wasm",
    setupFunc: original?.setupFunc,
    disposeFunc: original?.disposeFunc,
    kernelFunc: kernelFunc as unknown as TF.KernelFunc,
  });
}

/** Conv2DBackpropFilter for wasm, which lacks it (the device CNN's weight gradient). Direct loops
 * over the heap: the cpu kernel bridged through copies took ~500 ms for a [256, 44] batch; this
 * takes a few ms. NHWC only (what tf.conv1d/conv2d produce). */
export function registerConv2DBackpropFilter(tf: Tf): void {
  if (tf.getKernel("Conv2DBackpropFilter", "wasm")) return;
  tf.registerKernel({
    kernelName: "Conv2DBackpropFilter",
    backendName: "wasm",
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs) => {
      const { x, dy } = inputs;
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as {
        strides: [number, number] | number;
        pad: "valid" | "same" | number;
        dataFormat: "NHWC" | "NCHW";
        dimRoundingMode?: "floor" | "round" | "ceil";
        filterShape: [number, number, number, number];
      };
      if (dataFormat !== "NHWC") {
        throw new Error(`Conv2DBackpropFilter on wasm: ${dataFormat} is not supported`);
      }
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
        false,
        "channelsLast",
      );
      const out = backend.makeOutput(filterShape, "float32");
      // Views after makeOutput: it may grow (and so detach) the heap.
      const xv = backend.typedArrayFromHeap(x) as Float32Array;
      const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
      const dw = backend.typedArrayFromHeap(out) as Float32Array;
      dw.fill(0);
      const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
      const {
        filterHeight,
        filterWidth,
        strideHeight,
        strideWidth,
        dilationHeight,
        dilationWidth,
      } = info;
      const top = info.padInfo.top;
      const left = info.padInfo.left;
      for (let b = 0; b < batchSize; b++) {
        for (let yr = 0; yr < outHeight; yr++) {
          for (let yc = 0; yc < outWidth; yc++) {
            const dyOffset = ((b * outHeight + yr) * outWidth + yc) * outChannels;
            for (let fr = 0; fr < filterHeight; fr++) {
              const xr = yr * strideHeight + fr * dilationHeight - top;
              if (xr < 0 || xr >= inHeight) continue;
              for (let fc = 0; fc < filterWidth; fc++) {
                const xc = yc * strideWidth + fc * dilationWidth - left;
                if (xc < 0 || xc >= inWidth) continue;
                const xOffset = ((b * inHeight + xr) * inWidth + xc) * inChannels;
                const wOffset = (fr * filterWidth + fc) * inChannels * outChannels;
                for (let d1 = 0; d1 < inChannels; d1++) {
                  const xval = xv[xOffset + d1];
                  if (xval === 0) continue;
                  const w = wOffset + d1 * outChannels;
                  for (let d2 = 0; d2 < outChannels; d2++) dw[w + d2] += xval * dyv[dyOffset + d2];
                }
              }
            }
          }
        }
      }
      return out;
    }) as unknown as TF.KernelFunc,
  });
}

/** wasm BatchMatMul/_FusedMatMul leave XNNPACK when transposeA/B is set (20x slower), and every
 * matMul gradient sets one: transpose explicitly with the fast Transpose kernel first. */
export function patchMatMulTranspose(tf: Tf): void {
  const transpose = kernelFuncOf(tf, "Transpose", "wasm");
  for (const name of ["BatchMatMul", "_FusedMatMul"]) {
    const original = kernelFuncOf(tf, name, "wasm");
    replaceKernel(tf, name, (args) => {
      const { inputs, backend, attrs } = args;
      if (!attrs.transposeA && !attrs.transposeB) return original(args);
      const temporaries: TensorInfo[] = [];
      const swapLastTwo = (info: TensorInfo): TensorInfo => {
        const rank = info.shape.length;
        const perm = [...Array(rank).keys()];
        perm[rank - 1] = rank - 2;
        perm[rank - 2] = rank - 1;
        const out = transpose({ inputs: { x: info }, backend, attrs: { perm } }) as TensorInfo;
        temporaries.push(out);
        return out;
      };
      try {
        return original({
          inputs: {
            ...inputs,
            a: attrs.transposeA ? swapLastTwo(inputs.a) : inputs.a,
            b: attrs.transposeB ? swapLastTwo(inputs.b) : inputs.b,
          },
          backend,
          attrs: { ...attrs, transposeA: false, transposeB: false },
        });
      } finally {
        for (const t of temporaries) backend.disposeData(t.dataId);
      }
    });
  }
}

// Copies the block [begin, begin + size) of x into a new output through heap views. The stock
// wasm Slice starts with readSync(x), a copy of the WHOLE input per slice (O(T * size) per LSTM).
function sliceThroughHeap(
  tf: Tf,
  backend: WasmBackendLike,
  x: TensorInfo,
  begin: number[],
  size: number[],
  outShape: number[],
): TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  // makeOutput may grow the wasm heap, which detaches older views: take views after it.
  const source = backend.typedArrayFromHeap(x);
  const target = backend.typedArrayFromHeap(out);
  const rank = size.length;
  const count = tf.util.sizeFromShape(size);
  if (count === 0) return out;
  const strides = tf.util.computeStrides(x.shape);
  const rowLength = rank > 0 ? size[rank - 1] : 1;
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let row = 0, o = 0; o < count; row++, o += rowLength) {
    let offset = rank > 0 ? begin[rank - 1] : 0;
    for (let d = 0; d < rank - 1; d++) offset += (begin[d] + index[d]) * strides[d];
    target.set(source.subarray(offset, offset + rowLength), o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Zero-copy Slice and Unpack for the wasm backend (numeric dtypes). */
export function patchSlice(tf: Tf): void {
  const originalSlice = kernelFuncOf(tf, "Slice", "wasm");
  const originalUnpack = kernelFuncOf(tf, "Unpack", "wasm");
  replaceKernel(tf, "Slice", (args) => {
    const x = args.inputs.x;
    if (x.dtype === "string") return originalSlice(args);
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as unknown as TF.TensorInfo,
      args.attrs.begin as number[],
      args.attrs.size as number[],
    );
    return sliceThroughHeap(tf, args.backend, x, begin, size, size);
  });
  replaceKernel(tf, "Unpack", (args) => {
    const x = args.inputs.value;
    if (x.dtype === "string") return originalUnpack(args);
    const rank = x.shape.length;
    const axis = (args.attrs.axis as number) < 0
      ? (args.attrs.axis as number) + rank
      : (args.attrs.axis as number);
    const size = [...x.shape];
    size[axis] = 1;
    const outShape = x.shape.filter((_, i) => i !== axis);
    const outs: TensorInfo[] = [];
    for (let i = 0; i < x.shape[axis]; i++) {
      const begin = new Array<number>(rank).fill(0);
      begin[axis] = i;
      outs.push(sliceThroughHeap(tf, args.backend, x, begin, size, outShape));
    }
    return outs;
  });
}

/** MaxPoolGrad for wasm over heap views: each window's first maximum (scan order, as the cpu
 * kernel) receives the window's dy. maxPool forward + gradient of the device's [256, 44, 1, 32]
 * took 15-16 CPU ms with the stock wasm kernel, 9-10 with this (docs/benchmarks.md). NHWC,
 * dilation 1 (what tf.maxPool runs). */
export function replaceMaxPoolGrad(tf: Tf): void {
  replaceKernel(tf, "MaxPoolGrad", ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs;
    const { filterSize, strides, pad, dimRoundingMode } = attrs as {
      filterSize: [number, number] | number;
      strides: [number, number] | number;
      pad: "valid" | "same" | number;
      dimRoundingMode?: "floor" | "round" | "ceil";
    };
    if (input.shape.length !== 4 || dy.shape.length !== 4 || input.dtype !== "float32") {
      throw new Error(
        `MaxPoolGrad on wasm: input [${input.shape}] ${input.dtype}, dy [${dy.shape}]`,
      );
    }
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    if (
      dy.shape[0] !== batchSize || dy.shape[1] !== outHeight || dy.shape[2] !== outWidth ||
      dy.shape[3] !== inChannels
    ) {
      throw new Error(
        `MaxPoolGrad on wasm: dy [${dy.shape}] for pool output ${outHeight}x${outWidth}`,
      );
    }
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const out = backend.makeOutput(input.shape, "float32");
    // Views after makeOutput: it may grow (and so detach) the heap.
    const xv = backend.typedArrayFromHeap(input) as Float32Array;
    const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
    const dx = backend.typedArrayFromHeap(out) as Float32Array;
    dx.fill(0);
    const C = inChannels;
    for (let b = 0; b < batchSize; b++) {
      for (let yr = 0; yr < outHeight; yr++) {
        const r0 = Math.max(yr * strideHeight - top, 0);
        const r1 = Math.min(yr * strideHeight - top + filterHeight, inHeight);
        for (let yc = 0; yc < outWidth; yc++) {
          const c0 = Math.max(yc * strideWidth - left, 0);
          const c1 = Math.min(yc * strideWidth - left + filterWidth, inWidth);
          const dyOffset = ((b * outHeight + yr) * outWidth + yc) * C;
          for (let ch = 0; ch < C; ch++) {
            let best = -Infinity;
            let at = -1;
            for (let r = r0; r < r1; r++) {
              for (let c = c0; c < c1; c++) {
                const k = ((b * inHeight + r) * inWidth + c) * C + ch;
                const v = xv[k];
                if (v > best || at < 0) {
                  best = v;
                  at = k;
                }
              }
            }
            if (at >= 0) dx[at] += dyv[dyOffset + ch];
          }
        }
      }
    }
    return out;
  });
}
