// The split step over the wire computes exactly the gradients of the unsplit model.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { defaultModelConfig, type ModelConfig } from "../../../ml/model/config.ts";
import { deriveSeed, prng } from "../../../ml/model/random.ts";
import {
  deviceForward,
  deviceLayout,
  edgeLayout,
  initParams,
} from "../../../ml/model/split_model.ts";
import { type ActivationProtection, createProtection } from "../../../ml/privacy/protection.ts";
import { checkMatrixForModel, shuffledBatches } from "../../../ml/train/batches.ts";
import { FullModelTrainer } from "../../../ml/train/local.ts";
import { DeviceSide, EdgeSide } from "../../../ml/train/split_step.ts";
import { decodeMessage, encodeMessage } from "../../../ml/wire/frame.ts";
import { flatten, makeFixture, maxAbsDiff, tfForTests } from "../fixtures.ts";

await tfForTests();

const cases: [string, ModelConfig][] = [
  ["default BiLSTM, binary", defaultModelConfig(12)],
  ["2 conv layers, LSTM, 4 classes, no dense", {
    ...defaultModelConfig(16, 4),
    convLayers: 2,
    convFilters: 8,
    lstmUnits: 6,
    bidirectional: false,
    denseUnits: 0,
  }],
];

for (const [name, config] of cases) {
  Deno.test(`split step gradients equal unsplit gradients (${name})`, () => {
    const data = makeFixture({
      rows: 40,
      features: config.features,
      classes: config.classes,
      seed: 11,
    });
    const labels = checkMatrixForModel(config, data, "fixture");
    const batch = shuffledBatches(data, labels, 32, 5).next().value!;
    const device0 = initParams(deviceLayout(config), deriveSeed(3, 1));
    const edge0 = initParams(edgeLayout(config), deriveSeed(3, 2));
    const before = tf.memory().numTensors;

    const device = new DeviceSide(config, device0, { learningRate: 1e-3, name: "device 0" });
    const edge = new EdgeSide(config, edge0, { learningRate: 1e-3, name: "edge" });
    const message = device.forward(batch, 0, 0);
    const stepped = edge.gradients(message, "edge");
    assert.equal(decodeMessage(stepped.reply, "t")[0].kind, "gradients");
    const deviceGrads = device.gradients(stepped.reply);
    const split = {
      device: flatten(deviceGrads),
      edge: flatten(stepped.grads),
      loss: stepped.loss,
    };
    tf.dispose([...deviceGrads, ...stepped.grads]);

    const full = new FullModelTrainer(config, device0, edge0, 1e-3, "unsplit");
    const g = full.gradients(batch);
    const unsplit = { device: flatten(g.device), edge: flatten(g.edge), loss: g.loss };
    tf.dispose([...g.device, ...g.edge]);

    assert.ok(Math.abs(split.loss - unsplit.loss) <= 1e-6, `loss ${split.loss} vs ${unsplit.loss}`);
    const dDevice = maxAbsDiff(split.device, unsplit.device);
    const dEdge = maxAbsDiff(split.edge, unsplit.edge);
    assert.ok(dDevice <= 1e-5, `device gradients differ by ${dDevice}`);
    assert.ok(dEdge <= 1e-5, `edge gradients differ by ${dEdge}`);
    assert.ok(split.device.some((v) => v !== 0), "device gradient is all zero");

    device.dispose();
    edge.dispose();
    full.dispose();
    assert.equal(tf.memory().numTensors, before, "split step leaks tensors");
  });
}

Deno.test("a NaN in received activations or gradients never reaches the weights", () => {
  const config = defaultModelConfig(8);
  const data = makeFixture({ rows: 16, features: 8, seed: 2 });
  const batch = shuffledBatches(data, checkMatrixForModel(config, data, "f"), 16, 1).next().value!;
  const device = new DeviceSide(config, initParams(deviceLayout(config), 1), {
    learningRate: 1e-3,
    name: "device 7",
  });
  const edge = new EdgeSide(config, initParams(edgeLayout(config), 2), {
    learningRate: 1e-3,
    name: "edge",
  });
  const edgeBefore = edge.read();
  const deviceBefore = device.read();

  const message = device.forward(batch, 4, 9);
  const poisoned = message.slice();
  new DataView(poisoned.buffer).setFloat32(16 + 12 + 4 * 3, NaN, true);
  assert.throws(
    () => edge.step(poisoned, "edge for device 7"),
    /edge for device 7: frame 0.*non-finite value NaN at element 3/,
  );
  assert.deepEqual(edge.read(), edgeBefore);

  const { reply } = edge.step(message);
  const badReply = reply.slice();
  new DataView(badReply.buffer).setFloat32(16 + 12 + 4 * 10, -Infinity, true);
  assert.throws(
    () => device.backward(badReply),
    /device 7: gradient reply.*non-finite value -Infinity at element 10/,
  );
  assert.deepEqual(device.read(), deviceBefore);

  // A reply for another step is refused too.
  device.forward(batch, 4, 10);
  assert.throws(() => device.backward(reply), /expected round 4 step 10/);
  device.dispose();
  edge.dispose();
});

Deno.test("edge refuses activations whose shape does not fit its model", () => {
  const config = defaultModelConfig(8);
  const other = defaultModelConfig(12);
  const data = makeFixture({ rows: 4, features: 12, seed: 2 });
  const batch = shuffledBatches(data, checkMatrixForModel(other, data, "f"), 4, 1).next().value!;
  const device = new DeviceSide(other, initParams(deviceLayout(other), 1), {
    learningRate: 1e-3,
    name: "device 1",
  });
  const edge = new EdgeSide(config, initParams(edgeLayout(config), 2), {
    learningRate: 1e-3,
    name: "edge",
  });
  assert.throws(
    () => edge.step(device.forward(batch, 0, 0), "edge for device 1"),
    /edge for device 1: activations \[4,6,32\], edge model expects \[batch, 4, 32\]/,
  );
  device.dispose();
  edge.dispose();
});

Deno.test("prediction refuses NaN input, naming row and column", async () => {
  const { Predictor } = await import("../../../ml/train/evaluate.ts");
  const config = defaultModelConfig(4);
  const predictor = new Predictor(
    config,
    initParams(deviceLayout(config), 1),
    initParams(edgeLayout(config), 2),
  );
  const features = new Float32Array(8);
  features[6] = Infinity;
  assert.throws(
    () => predictor.probabilities(features, 2),
    /non-finite value Infinity at row 1, column 2/,
  );
  predictor.dispose();
});

function gradientReply(round: number, step: number, shape: number[], data: Float32Array) {
  return encodeMessage([{ kind: "gradients", round, step, shape, dtype: "float32", data }]);
}

/** The device backward as it was before the forward's traces were kept: the whole device
 * function recomputed under one tfjs tape, from the weights to the (surrogate) loss. */
function recomputedDeviceGradients(
  config: ModelConfig,
  params: tf.Tensor[],
  x: tf.Tensor2D,
  dy: tf.Tensor3D,
  protection: ActivationProtection | undefined,
): Float32Array[] {
  const { value, grads } = protection
    ? tf.engine().gradients(() => {
      const acts = deviceForward(config, params, x);
      const surrogate = protection.differentiable(acts).mul(dy).sum() as tf.Scalar;
      const extra = x.shape[0] >= 2 ? protection.extraDeviceLoss?.(x, acts) : undefined;
      return extra ? surrogate.add(extra) as tf.Scalar : surrogate;
    }, params)
    : tf.engine().gradients(() => deviceForward(config, params, x), params, dy);
  value.dispose();
  const arrays = grads.map((g) => g.dataSync().slice() as Float32Array);
  tf.dispose(grads);
  return arrays;
}

const deviceCases: [string, ModelConfig, (() => ActivationProtection) | undefined][] = [
  ["default", defaultModelConfig(44), undefined],
  ["3 layers, kernel 4", {
    ...defaultModelConfig(51, 3),
    convLayers: 3,
    convFilters: 5,
    convKernelSize: 4,
  }, undefined],
  ["clip norm in the model", { ...defaultModelConfig(20), activationClipNorm: 0.5 }, undefined],
  ["identity protection", defaultModelConfig(20), () => createProtection({ seed: 1 })],
  [
    "clip + noise + NoPeek, 2 layers",
    { ...defaultModelConfig(33), convLayers: 2, convFilters: 8 },
    () => createProtection({ seed: 2, clipNorm: 1, noiseMultiplier: 0.5, nopeekWeight: 0.2 }),
  ],
  [
    "NoPeek on a model clip norm",
    { ...defaultModelConfig(20), activationClipNorm: 2 },
    () => createProtection({ seed: 3, nopeekWeight: 0.3 }),
  ],
];

for (const [name, config, protection] of deviceCases) {
  Deno.test(`the device backward from the forward's traces equals the recomputed tape bit for bit (${name})`, () => {
    const device0 = initParams(deviceLayout(config), deriveSeed(5, config.features));
    const random = prng(config.features);
    const before = tf.memory().numTensors;
    const device = new DeviceSide(config, device0, {
      learningRate: 1e-3,
      name: "device 2",
      protection: protection?.(),
    });
    const reference = new DeviceSide(config, device0, { learningRate: 1e-3, name: "reference" });
    // 1 row: NoPeek needs pairs, the device trains on the edge's gradient alone.
    for (const rows of [37, 1]) {
      const features = Float32Array.from(
        { length: rows * config.features },
        () => random() * 4 - 2,
      );
      for (let i = 0; i < features.length; i += 5) features[i] = 0; // pool ties, ReLU cuts
      const labels = new Int32Array(rows);
      const message = device.forward({ features, labels, rows }, 3, rows);
      const activations = decodeMessage(message, "t")[0];
      const dyValues = Float32Array.from(activations.data, () => (random() * 2 - 1) / rows);
      const reply = gradientReply(3, rows, activations.shape, dyValues);
      const grads = device.gradients(reply);
      const cached = grads.map((g) => g.dataSync().slice() as Float32Array);
      tf.dispose(grads);

      const x = tf.tensor2d(features, [rows, config.features]);
      const dy = tf.tensor3d(dyValues, activations.shape as [number, number, number]);
      const recomputed = recomputedDeviceGradients(
        config,
        device.params.tensors,
        x,
        dy,
        protection?.(),
      );
      if (!protection) {
        // Without noise the release is deviceForward's value, bit for bit.
        const value = tf.tidy(() => deviceForward(config, device.params.tensors, x).dataSync());
        assert.deepEqual(activations.data, value, `rows ${rows}: activations`);
        // And the same for a twin whose forward took the tfjs op path.
        assert.deepEqual(
          decodeMessage(reference.forward({ features, labels, rows }, 3, 0), "t")[0].data,
          value,
        );
        tf.dispose(
          reference.gradients(
            gradientReply(3, 0, activations.shape, dyValues),
          ),
        );
      }
      tf.dispose([x, dy]);
      assert.equal(cached.length, recomputed.length);
      cached.forEach((g, k) => assert.deepEqual(g, recomputed[k], `rows ${rows}: gradient ${k}`));
      assert.ok(cached[0].some((v) => v !== 0), `rows ${rows}: kernel gradient is all zero`);
    }
    device.dispose();
    reference.dispose();
    assert.equal(tf.memory().numTensors, before, "leaked tensors");
  });
}

Deno.test("a device forward that fails leaves nothing pending and leaks no tensors", () => {
  const config = { ...defaultModelConfig(8), activationClipNorm: 1 };
  const before = tf.memory().numTensors;
  const failing: ActivationProtection = {
    ...createProtection({ seed: 1 }),
    transform: () => {
      throw new Error("noise source failed");
    },
    differentiable: (acts) => acts,
  };
  const device = new DeviceSide(config, initParams(deviceLayout(config), 1), {
    learningRate: 1e-3,
    name: "device 5",
    protection: failing,
  });
  const batch = { features: new Float32Array(16).fill(0.5), labels: Int32Array.of(0, 1), rows: 2 };
  assert.throws(() => device.forward(batch, 0, 0), /noise source failed/);
  assert.throws(() => device.backward(new Uint8Array(0)), /device 5: backward without a pending/);
  device.dispose();
  assert.equal(tf.memory().numTensors, before, "leaked tensors");
});
