// The fused device CNN block (ml/model/conv_block.ts) against the tfjs composition it replaced:
// values and the gradients of kernel, bias and input within 1e-5, over batch, length (odd too),
// filters, kernel size (even too: tf's "same" padding) and layers; no leaked tensors; NaN
// propagates to the activations, which the device then refuses to send.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import {
  convBlock,
  convBlockBackward,
  convBlockForward,
  referenceConvBlock,
} from "../../../ml/model/conv_block.ts";
import { defaultModelConfig, type ModelConfig } from "../../../ml/model/config.ts";
import {
  deviceForward,
  deviceLayout,
  initParams,
  ParamSet,
} from "../../../ml/model/split_model.ts";
import { prng } from "../../../ml/model/random.ts";
import { DeviceSide } from "../../../ml/train/split_step.ts";
import { assertSameBits, maxAbsDiff, tfForTests } from "../fixtures.ts";
import { convBlockFingerprint } from "./bun_conv_block_check.ts";
import { convBlockBackwardLoops, convBlockForwardLoops } from "./conv_reference.ts";

await tfForTests();

function randomArray(n: number, seed: number, scale = 1) {
  const random = prng(seed);
  return Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
}

type Block = typeof convBlock;

/** The device CNN (blocks chained) and tf.grads of sum(out * dy) w.r.t. input and parameters. */
function run(block: Block, x: tf.Tensor3D, params: tf.Tensor[], dy: tf.Tensor) {
  return tf.tidy(() => {
    const f = (...inputs: tf.Tensor[]) => {
      let h = inputs[0] as tf.Tensor3D;
      for (let l = 0; l < params.length / 2; l++) {
        h = block(h, inputs[1 + 2 * l] as tf.Tensor3D, inputs[2 + 2 * l] as tf.Tensor1D);
      }
      return h;
    };
    const value = f(x, ...params);
    const grads = tf.grads(f)([x, ...params], dy);
    return [value, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

// [batch, features, filters, layers, kernel]
const CASES: [number, number, number, number, number][] = [
  [1, 10, 3, 1, 3],
  [7, 33, 8, 1, 3],
  [64, 51, 32, 1, 3],
  [7, 51, 8, 2, 5],
  [1, 33, 32, 2, 3],
  [64, 10, 3, 2, 5],
  [64, 33, 32, 1, 5],
  [7, 10, 8, 1, 1],
  [7, 33, 8, 2, 2],
  [7, 51, 3, 1, 4],
  [1, 51, 32, 2, 5],
];

for (const [batch, features, filters, layers, kernel] of CASES) {
  Deno.test(`convBlock = conv1d same + bias + relu + maxPool2: batch ${batch}, features ${features}, filters ${filters}, ${layers} layer(s), kernel ${kernel}`, () => {
    const before = tf.memory().numTensors;
    let seed = batch * 1000 + features * 10 + filters + layers + kernel;
    const x = tf.tensor3d(randomArray(batch * features, seed++), [batch, features, 1]);
    const params: tf.Tensor[] = [];
    let length = features;
    for (let l = 0; l < layers; l++) {
      const inC = l === 0 ? 1 : filters;
      params.push(tf.tensor3d(randomArray(kernel * inC * filters, seed++, 0.7), [
        kernel,
        inC,
        filters,
      ]));
      params.push(tf.tensor1d(randomArray(filters, seed++, 0.3)));
      length = Math.floor(length / 2);
    }
    // dy as the mean loss sends it (~1/batch per row): absolute 1e-5. With unit dy the sums over
    // batch x length reach ~100, where float32 rounding alone is ~1e-5 (the fused op accumulates
    // in float64, tf in float32): there the bound is 1e-5 relative to the largest value.
    for (const dyScale of [1 / batch, 1]) {
      const dy = tf.tensor3d(randomArray(batch * length * filters, seed++, dyScale), [
        batch,
        length,
        filters,
      ]);
      const fused = run(convBlock, x, params, dy);
      const reference = run(referenceConvBlock, x, params, dy);
      dy.dispose();
      const names = ["value", "d input", ...params.map((_, i) => i % 2 ? "d bias" : "d kernel")];
      for (let i = 0; i < fused.length; i++) {
        assert.equal(fused[i].length, reference[i].length, names[i]);
        const d = maxAbsDiff(fused[i], reference[i]);
        const scale = dyScale === 1 ? Math.max(1, ...reference[i].map(Math.abs)) : 1;
        assert.ok(d <= 1e-5 * scale, `dy scale ${dyScale}: ${names[i]} differs by ${d}`);
      }
      assert.ok(fused[0].some((v) => v > 0), "all outputs are zero");
      assert.ok(fused[2].some((v) => v !== 0), "kernel gradient is all zero");
    }
    tf.dispose([x, ...params]);
    assert.equal(tf.memory().numTensors, before, "leaked tensors");
  });
}

Deno.test("deviceForward with the fused block equals the tfjs composition, with clipping too", () => {
  for (const clip of [undefined, 0.5]) {
    const config: ModelConfig = { ...defaultModelConfig(51), activationClipNorm: clip };
    const params = new ParamSet(deviceLayout(config), initParams(deviceLayout(config), 3));
    const x = tf.tensor2d(randomArray(9 * 51, 4), [9, 51]);
    const before = tf.memory().numTensors;
    const [a, b] = tf.tidy(() => {
      const fused = deviceForward(config, params.tensors, x).dataSync() as Float32Array;
      let h = referenceConvBlock(
        x.reshape([9, 51, 1]),
        params.tensors[0] as tf.Tensor3D,
        params.tensors[1] as tf.Tensor1D,
      );
      if (clip !== undefined) {
        const flat = h.reshape([9, -1]);
        const norms = flat.square().sum(1, true).add(1e-24).sqrt();
        h = flat.mul(tf.minimum(tf.scalar(1), tf.scalar(clip).div(norms))).reshape(h.shape);
      }
      return [fused, h.dataSync() as Float32Array];
    });
    assert.equal(tf.memory().numTensors, before, "leaked tensors");
    const d = maxAbsDiff(a, b);
    assert.ok(d <= 1e-5, `clip ${clip}: differs by ${d}`);
    x.dispose();
    params.dispose();
  }
});

Deno.test("convBlock refuses inconsistent shapes", () => {
  tf.tidy(() => {
    assert.throws(
      () => convBlock(tf.zeros([2, 8, 2]), tf.zeros([3, 1, 4]), tf.zeros([4])),
      /convBlock: shapes x=\[2,8,2\] kernel=\[3,1,4\] bias=\[4\] are inconsistent/,
    );
    assert.throws(
      () => convBlock(tf.zeros([2, 1, 1]), tf.zeros([3, 1, 4]), tf.zeros([4])),
      /length 1 cannot be pooled/,
    );
  });
});

Deno.test("a NaN input propagates to the activations, and the device refuses to send them", () => {
  const config = defaultModelConfig(10);
  const params = new ParamSet(deviceLayout(config), initParams(deviceLayout(config), 1));
  const values = randomArray(2 * 10, 5);
  values[3] = NaN;
  const x = tf.tensor2d(values, [2, 10]);
  const out = tf.tidy(() => deviceForward(config, params.tensors, x).dataSync() as Float32Array);
  // Row 0 around feature 3 (pooled step 1) is NaN in every filter; row 1 is clean.
  for (let f = 0; f < 32; f++) assert.ok(Number.isNaN(out[1 * 32 + f]), `filter ${f}`);
  assert.ok(out.slice(5 * 32).every(Number.isFinite), "NaN leaked into row 1");
  x.dispose();
  params.dispose();

  const device = new DeviceSide(config, initParams(deviceLayout(config), 1), {
    learningRate: 1e-3,
    name: "device 3",
  });
  const before = device.read();
  assert.throws(
    () => device.forward({ features: values, labels: Int32Array.of(0, 1), rows: 2 }, 0, 0),
    /device 3: device forward produced bad activations.*NaN/,
  );
  assert.deepEqual(device.read(), before);
  device.dispose();
});

Deno.test("the wasm conv kernel equals the plain float64 loops bit for bit", () => {
  // [batch, length, channels, kernel, filters]: the default block, odd filter counts (the kernel's
  // 8-filter blocks and its scalar tail), even kernels (asymmetric padding), several channels.
  const shapes = [
    [7, 44, 1, 3, 32],
    [5, 33, 8, 4, 8],
    [3, 10, 3, 1, 5],
    [4, 17, 2, 5, 13],
    [1, 2, 1, 2, 1],
    [6, 21, 3, 3, 33],
  ];
  for (const [B, L, C, K, F] of shapes) {
    for (const special of [false, true]) {
      const xs = randomArray(B * L * C, B + L, 3);
      for (let i = 0; i < xs.length; i += 6) xs[i] = 0; // pool ties and ReLU cuts
      for (let i = 3; i < xs.length; i += 11) xs[i] = -0;
      if (special) {
        // NaN and infinities propagate the same way (the device then refuses to send them).
        xs[1] = NaN;
        xs[Math.min(5, xs.length - 1)] = Infinity;
        xs[xs.length - 1] = -Infinity;
      }
      const ws = randomArray(K * C * F, K, 0.6);
      const bs = randomArray(F, F, 0.2);
      const dys = randomArray(B * Math.floor(L / 2) * F, C, 0.1);
      for (let i = 0; i < dys.length; i += 5) dys[i] = 0; // windows with no gradient at all
      const dims = { batch: B, length: L, channels: C, size: K, filters: F };
      const at = `[${B}, ${L}, ${C}] kernel ${K} filters ${F}${special ? " NaN/Inf" : ""}`;
      const kernel = convBlockForward(dims, xs, ws, bs);
      const loops = convBlockForwardLoops(dims, xs, ws, bs);
      assertSameBits(kernel.out, loops.out, `${at}: value`, { anyNaN: true });
      assert.deepEqual(kernel.trace.winner, loops.trace.winner, `${at}: pool winners`);
      assert.deepEqual(kernel.trace.xp, loops.trace.xp, `${at}: padded input`);
      for (const withInput of [true, false]) {
        const g = convBlockBackward(kernel.trace, dys, withInput);
        const r = convBlockBackwardLoops(loops.trace, dys, withInput);
        assertSameBits(g.dx, r.dx, `${at}: d input (withInput ${withInput})`, { anyNaN: true });
        assertSameBits(g.dKernel, r.dKernel, `${at}: d kernel (withInput ${withInput})`, {
          anyNaN: true,
        });
        assertSameBits(g.dBias, r.dBias, `${at}: d bias (withInput ${withInput})`, {
          anyNaN: true,
        });
      }
      if (!special) assert.ok(kernel.out.some((v) => v > 0), `${at}: all outputs cut`);
    }
  }
});

Deno.test("convBlockForward/convBlockBackward on arrays equal the tfjs op bit for bit", () => {
  for (const [B, L, C, K, F] of [[7, 51, 1, 3, 32], [5, 33, 8, 4, 8], [3, 10, 3, 1, 5]]) {
    const xs = randomArray(B * L * C, B + L);
    for (let i = 0; i < xs.length; i += 6) xs[i] = 0; // pool ties and ReLU cuts
    const ws = randomArray(K * C * F, K, 0.6);
    const bs = randomArray(F, F, 0.2);
    const dys = randomArray(B * Math.floor(L / 2) * F, C, 0.1);
    const dims = { batch: B, length: L, channels: C, size: K, filters: F };
    const { out, trace } = convBlockForward(dims, xs, ws, bs);
    const withInput = convBlockBackward(trace, dys, true);
    const withoutInput = convBlockBackward(trace, dys, false);
    const x = tf.tensor3d(xs, [B, L, C]);
    const params = [tf.tensor3d(ws, [K, C, F]), tf.tensor1d(bs)];
    const dy = tf.tensor3d(dys, [B, Math.floor(L / 2), F]);
    const [value, dx, dKernel, dBias] = run(convBlock, x, params, dy);
    tf.dispose([x, ...params, dy]);
    const at = `[${B}, ${L}, ${C}] kernel ${K} filters ${F}`;
    assert.deepEqual(out, value, `${at}: value`);
    assert.deepEqual(withInput.dx, dx, `${at}: d input`);
    assert.equal(withoutInput.dx, null);
    for (const g of [withInput, withoutInput]) {
      assert.deepEqual(g.dKernel, dKernel, `${at}: d kernel`);
      assert.deepEqual(g.dBias, dBias, `${at}: d bias`);
    }
  }
  const dims = { batch: 2, length: 8, channels: 1, size: 3, filters: 4 };
  const [x, w, b] = [new Float32Array(16), new Float32Array(12), new Float32Array(4)];
  assert.throws(
    () => convBlockForward(dims, new Float32Array(15), w, b),
    /convBlock: 15 \/ 12 \/ 4 values for x \[2, 8, 1\], kernel \[3, 1, 4\], bias \[4\]/,
  );
  assert.throws(() => convBlockForward({ ...dims, length: 1 }, x, w, b), /cannot be pooled/);
  assert.throws(() => convBlockForward({ ...dims, filters: 0 }, x, w, b), /positive integers/);
  const { trace } = convBlockForward(dims, x, w, b);
  assert.throws(
    () => convBlockBackward(trace, new Float32Array(7), false),
    /convBlock: 7 gradient values for output \[2, 4, 4\]/,
  );
});

const BUN = new URL("../../../tools/toolchain/node_modules/.bin/bun", import.meta.url).pathname;

Deno.test({
  name: "bun: the fused block's values and gradients are identical to Deno's",
  ignore: !existsSync(BUN) && Deno.env.get("CI") !== "true",
}, async () => {
  const onDeno = await convBlockFingerprint();
  assert.equal(JSON.parse(onDeno).maxDiffBelow1e5, true, "Deno: fused block off the reference");
  const script = new URL("./bun_conv_block_check.ts", import.meta.url).pathname;
  const onBun = execFileSync(BUN, ["run", script], { encoding: "utf8" }).trim().split("\n").pop();
  assert.equal(onBun, onDeno, `rerun: ${BUN} run ${script}`);
});
