// The device CNN block's WebAssembly kernel (ml/kernels/conv.c): its own small wasm instance and
// memory, instantiated synchronously from the embedded bytes (works the same under Deno, Bun and
// in the compiled binary). Plain typed arrays in and out; ml/model/conv_block.ts builds the block's
// forward/backward (and its tfjs op) on it. The kernel computes in float64 exactly as the plain
// loops it replaced did, so its results are bit-identical to them (tests/ml/model/conv_block_test.ts
// keeps those loops as the oracle).
import { CONV_WASM_BASE64 } from "./conv_wasm.generated.ts";
import {
  decodeBase64,
  growKernelMemory,
  layout as layoutAligned,
  newKernelMemory,
} from "./wasm_memory.ts";

/** Sizes of one call: xp [batch, paddedLength, channels], kernel [size * channels, filters],
 * pooled outputs [batch, pooled, filters]. */
export interface ConvKernelDims {
  batch: number;
  paddedLength: number;
  channels: number;
  size: number;
  filters: number;
  pooled: number;
}

/** Upper bound of the kernel's wasm memory; callers chunk the batch far below it. */
export const CONV_KERNEL_MEMORY_MAX_BYTES = 512 * 1024 * 1024;

interface Exports {
  __heap_base: WebAssembly.Global;
  conv_forward(...args: number[]): void;
  conv_backward(...args: number[]): void;
}

function expectLength(name: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) throw new Error(`conv kernel: ${name} has ${a.length} values, expected ${n}`);
}

/** Byte offsets, 16-byte aligned, of named buffers laid out one after another. */
function layout(start: number, sizes: Record<string, number>) {
  return layoutAligned(start, sizes, 16);
}

export class ConvKernel {
  readonly #exports: Exports;
  readonly #memory: WebAssembly.Memory;
  readonly #base: number; // bytes

  constructor() {
    const module = new WebAssembly.Module(decodeBase64(CONV_WASM_BASE64) as BufferSource);
    this.#memory = newKernelMemory();
    const instance = new WebAssembly.Instance(module, { env: { memory: this.#memory } });
    this.#exports = instance.exports as unknown as Exports;
    this.#base = Math.ceil((this.#exports.__heap_base.value as number) / 16) * 16;
  }

  #ensure(endBytes: number, what: string): ArrayBufferLike {
    growKernelMemory(this.#memory, endBytes, CONV_KERNEL_MEMORY_MAX_BYTES, "conv kernel", what);
    return this.#memory.buffer;
  }

  /** Forward: returns the pooled outputs and, per output, the pool's winner (0 / 1, -1 when the
   * ReLU cut it). With `outView`, `out` is a view into the kernel's memory, valid only until its
   * next call (copy it at once); `winner` is always a copy. */
  forward(
    d: ConvKernelDims,
    xp: Float32Array,
    kernel: Float32Array,
    bias: Float32Array,
    outView = false,
  ): { out: Float32Array; winner: Int8Array } {
    const { batch: B, paddedLength: Lp, channels: C, size: K, filters: F, pooled: P } = d;
    const KC = K * C;
    expectLength("xp", xp, B * Lp * C);
    expectLength("kernel", kernel, KC * F);
    expectLength("bias", bias, F);
    const m = layout(this.#base, {
      xp: 4 * xp.length,
      kernel: 4 * kernel.length,
      bias: 4 * F,
      out: 4 * B * P * F,
      winner: B * P * F,
      kd: 8 * KC * F,
    });
    const buffer = this.#ensure(m.end, `a forward pass of batch ${B}`);
    new Float32Array(buffer, m.at.xp, xp.length).set(xp);
    new Float32Array(buffer, m.at.kernel, kernel.length).set(kernel);
    new Float32Array(buffer, m.at.bias, F).set(bias);
    this.#exports.conv_forward(
      B,
      Lp,
      C,
      K,
      F,
      P,
      m.at.xp,
      m.at.kernel,
      m.at.bias,
      m.at.out,
      m.at.winner,
      m.at.kd,
    );
    return {
      out: outView
        ? new Float32Array(buffer, m.at.out, B * P * F)
        : new Float32Array(buffer, m.at.out, B * P * F).slice(),
      winner: new Int8Array(buffer, m.at.winner, B * P * F).slice(),
    };
  }

  /** Backward from the forward's winners: gradients of the kernel and bias and, if `withInput`,
   * of the padded input xp. */
  backward(
    d: ConvKernelDims,
    xp: Float32Array,
    kernel: Float32Array,
    winner: Int8Array,
    dy: Float32Array,
    withInput: boolean,
  ): { dxp: Float32Array | null; dKernel: Float32Array; dBias: Float32Array } {
    const { batch: B, paddedLength: Lp, channels: C, size: K, filters: F, pooled: P } = d;
    const KC = K * C;
    expectLength("xp", xp, B * Lp * C);
    expectLength("kernel", kernel, KC * F);
    expectLength("winner", winner, B * P * F);
    expectLength("dy", dy, B * P * F);
    const m = layout(this.#base, {
      xp: 4 * xp.length,
      kernel: 4 * kernel.length,
      winner: B * P * F,
      dy: 4 * dy.length,
      dKernel: 4 * KC * F,
      dBias: 4 * F,
      dxp: withInput ? 4 * xp.length : 0,
      kd: 8 * KC * F,
      dw: 8 * KC * F,
      db: 8 * F,
      g0: 8 * F,
      g1: 8 * F,
    });
    const buffer = this.#ensure(m.end, `a backward pass of batch ${B}`);
    new Float32Array(buffer, m.at.xp, xp.length).set(xp);
    new Float32Array(buffer, m.at.kernel, kernel.length).set(kernel);
    new Int8Array(buffer, m.at.winner, winner.length).set(winner);
    new Float32Array(buffer, m.at.dy, dy.length).set(dy);
    if (withInput) new Float32Array(buffer, m.at.dxp, xp.length).fill(0);
    this.#exports.conv_backward(
      B,
      Lp,
      C,
      K,
      F,
      P,
      m.at.xp,
      m.at.kernel,
      m.at.winner,
      m.at.dy,
      m.at.dKernel,
      m.at.dBias,
      withInput ? m.at.dxp : 0,
      m.at.kd,
      m.at.dw,
      m.at.db,
      m.at.g0,
      m.at.g1,
    );
    return {
      dxp: withInput ? new Float32Array(buffer, m.at.dxp, xp.length).slice() : null,
      dKernel: new Float32Array(buffer, m.at.dKernel, KC * F).slice(),
      dBias: new Float32Array(buffer, m.at.dBias, F).slice(),
    };
  }
}

let shared: ConvKernel | null = null;

/** The conv kernel instance of this thread (each worker gets its own). */
export function convKernel(): ConvKernel {
  shared ??= new ConvKernel();
  return shared;
}
