// The protection inside the real split step (ml/train): what leaves the device is clipped and
// noised, the device's gradient is the reference's (ml/privacy/train.ts: vjp through the clipping
// plus NoPeek), and the round loop reports the ε the accountant gives for rounds × epochs.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../../assert.ts";
import { defaultModelConfig, validateModelConfig } from "../../../ml/model/config.ts";
import { deriveSeed } from "../../../ml/model/random.ts";
import {
  deviceForward,
  deviceLayout,
  edgeLayout,
  initParams,
  ParamSet,
} from "../../../ml/model/split_model.ts";
import { createProtection, protectionForRound } from "../../../ml/privacy/protection.ts";
import { epsilonOf } from "../../../ml/privacy/rdp.ts";
import {
  epsilonSpent,
  ProtectionSettingsError,
  resolveProtection,
} from "../../../ml/privacy/settings.ts";
import { checkMatrixForModel, shuffledBatches } from "../../../ml/train/batches.ts";
import { trainRounds } from "../../../ml/train/loop.ts";
import { DeviceSide, EdgeSide, type Release } from "../../../ml/train/split_step.ts";
import { decodeMessage } from "../../../ml/wire/frame.ts";
import { flatten, makeFixture, maxAbsDiff, partition, sliceRows, tfForTests } from "../fixtures.ts";

await tfForTests();

const config = defaultModelConfig(12);
const data = makeFixture({ rows: 48, features: 12, seed: 21 });
const labels = checkMatrixForModel(config, data, "fixture");
const batch = shuffledBatches(data, labels, 32, 3).next().value!;
const device0 = initParams(deviceLayout(config), deriveSeed(5, 1));
const edge0 = initParams(edgeLayout(config), deriveSeed(5, 2));

function rowNorms(values: Float32Array, rows: number): number[] {
  const width = values.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let s = 0;
    for (let i = r * width; i < (r + 1) * width; i++) s += values[i] * values[i];
    return Math.sqrt(s);
  });
}

Deno.test("split step with clipping: every released row has L2 norm <= C, on the wire", () => {
  const before = tf.memory().numTensors;
  const releases: Release[] = [];
  const clip = 0.05; // well below the unclipped norms, so clipping is active on every row
  const device = new DeviceSide(config, device0, {
    learningRate: 1e-3,
    name: "device 0",
    protection: createProtection({ clipNorm: clip, seed: 1 }),
    onRelease: (r) => releases.push(r),
  });
  const message = device.forward(batch, 0, 0);
  const frame = decodeMessage(message, "t").find((f) => f.kind === "activations")!;
  const norms = rowNorms(frame.data as Float32Array, batch.rows);
  for (const n of norms) assert(n <= clip * (1 + 1e-5), `row norm ${n} > ${clip}`);
  assert(norms.every((n) => n > clip * 0.99), "clip too large for the test: rows not clipped");
  // The observer sees exactly the bytes on the wire.
  assertEquals(Array.from(releases[0].activations), Array.from(frame.data as Float32Array));
  assertEquals(releases[0].rows, batch.rows);
  device.dispose();
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("split step with noise: the release is the clipped activations plus N(0, (σC)²)", () => {
  const clip = 1, sigma = 0.5;
  const plain = new DeviceSide(config, device0, { learningRate: 1e-3, name: "plain" });
  const clipped = new DeviceSide(config, device0, {
    learningRate: 1e-3,
    name: "clip only",
    protection: createProtection({ clipNorm: clip, seed: 9 }),
  });
  const noised = new DeviceSide(config, device0, {
    learningRate: 1e-3,
    name: "noised",
    protection: createProtection({ clipNorm: clip, noiseMultiplier: sigma, seed: 9 }),
  });
  const acts = (d: DeviceSide) =>
    decodeMessage(d.forward(batch, 0, 0), "t").find((f) => f.kind === "activations")!
      .data as Float32Array;
  const a = acts(plain), c = acts(clipped), n = acts(noised);
  assert(maxAbsDiff(a, c) > 0 || rowNorms(a, batch.rows).every((x) => x <= clip));
  let sum = 0, sum2 = 0;
  for (let i = 0; i < n.length; i++) {
    const e = n[i] - c[i];
    sum += e;
    sum2 += e * e;
  }
  const mean = sum / n.length, std = Math.sqrt(sum2 / n.length - mean * mean);
  // 32 x 6 x 32 = 6144 draws: the sample std is within a few % of σC.
  assertAlmostEquals(std, sigma * clip, 0.03);
  assertAlmostEquals(mean, 0, 0.03);
  for (const d of [plain, clipped, noised]) d.dispose();
});

Deno.test("protected split step: device gradient = vjp through the clipping + NoPeek (reference)", () => {
  const before = tf.memory().numTensors;
  const options = { clipNorm: 0.5, noiseMultiplier: 0.3, nopeekWeight: 0.4, seed: 4 };
  const device = new DeviceSide(config, device0, {
    learningRate: 1e-3,
    name: "device 0",
    protection: createProtection(options),
  });
  const edge = new EdgeSide(config, edge0, { learningRate: 1e-3, name: "edge" });
  const stepped = edge.gradients(device.forward(batch, 2, 7), "edge");
  const dyFrame = decodeMessage(stepped.reply, "t")[0];
  const got = device.gradients(stepped.reply);
  const split = flatten(got);
  tf.dispose([...got, ...stepped.grads]);

  // Reference: ml/privacy/train.ts's device step, written out.
  const params = new ParamSet(deviceLayout(config), device0);
  const reference = createProtection(options);
  const x = tf.tensor2d(batch.features, [batch.rows, config.features]);
  const dy = tf.tensor3d(dyFrame.data as Float32Array, dyFrame.shape as [number, number, number]);
  const g = tf.engine().gradients(() => {
    const acts = deviceForward(config, params.tensors, x);
    return reference.differentiable(acts).mul(dy).sum().add(
      reference.extraDeviceLoss!(x, acts),
    ) as tf.Scalar;
  }, params.tensors);
  const expected = flatten(g.grads);
  tf.dispose([g.value, ...g.grads, x, dy]);
  params.dispose();

  const d = maxAbsDiff(split, expected);
  assert(d <= 1e-6, `device gradient differs from the reference by ${d}`);
  // NoPeek changes the gradient: without it the gradient differs.
  const noNopeek = new DeviceSide(config, device0, {
    learningRate: 1e-3,
    name: "device 0",
    protection: createProtection({ ...options, nopeekWeight: 0 }),
  });
  const s2 = edge.gradients(noNopeek.forward(batch, 2, 7), "edge");
  const g2 = noNopeek.gradients(s2.reply);
  assert(maxAbsDiff(flatten(g2), split) > 1e-6, "NoPeek did not change the device gradient");
  tf.dispose([...g2, ...s2.grads]);
  for (const o of [device, edge, noNopeek]) o.dispose();
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("protectionForRound: nothing to apply → undefined; the noise differs by round and device", () => {
  assertEquals(protectionForRound(undefined, 1, 0, 0), undefined);
  assertEquals(protectionForRound({}, 1, 0, 0), undefined);
  const settings = { clipNorm: 1, noiseMultiplier: 1 };
  const zeros = tf.zeros([4, 6, 32]) as tf.Tensor3D;
  const draw = (round: number, device: number) =>
    tf.tidy(() =>
      Array.from(protectionForRound(settings, 7, round, device)!.transform(zeros, 0).dataSync())
    );
  const a = draw(0, 0);
  assertEquals(draw(0, 0), a); // seeded
  assert(maxAbsDiff(draw(1, 0), a) > 0.1, "same noise in two rounds");
  assert(maxAbsDiff(draw(0, 1), a) > 0.1, "same noise on two devices");
  zeros.dispose();
});

Deno.test("resolveProtection: ranges are usage errors, --epsilon calibrates σ for rounds × epochs", () => {
  const t = { rounds: 3, localEpochs: 2 };
  const bad: [Record<string, number>, RegExp][] = [
    [{ epsilon: 0 }, /--epsilon 0: expected a number greater than 0/],
    [{ epsilon: -1 }, /--epsilon -1/],
    [{ noise: -0.1, clip: 1 }, /--noise -0.1: expected a number from 0/],
    [{ clip: 0 }, /--clip 0: expected a number greater than 0/],
    [{ clip: -2 }, /--clip -2/],
    [{ epsilon: 1, delta: 0 }, /--delta 0: expected a number strictly between 0 and 1/],
    [{ epsilon: 1, delta: 1 }, /--delta 1/],
    [{ noise: 1 }, /--noise needs --clip/],
    [{ noise: 1, clip: 1, epsilon: 2 }, /--noise or --epsilon, not both/],
    [{ delta: 1e-5 }, /--delta needs --noise or --epsilon/],
    [{ nopeek: -1 }, /--nopeek -1/],
    [{ epsilon: 1e-9 }, /--epsilon 1e-9: no noise multiplier/],
  ];
  for (const [request, message] of bad) {
    assertThrows(() => resolveProtection(request, t), ProtectionSettingsError, undefined);
    try {
      resolveProtection(request, t);
    } catch (error) {
      assert(message.test((error as Error).message), `${JSON.stringify(request)}: ${error}`);
    }
  }
  assertEquals(resolveProtection({}, t), null);
  assertEquals(resolveProtection({ nopeek: 0.5 }, t), { delta: 1e-5, nopeekWeight: 0.5 });

  const s = resolveProtection({ epsilon: 8, delta: 1e-5 }, t)!;
  assertEquals(s.clipNorm, 1);
  assertEquals(s.targetEpsilon, 8);
  // 6 releases per row at multiplier σ/2 spend at most the target, and barely less.
  const spent = epsilonSpent(s, 6)!;
  assert(spent.epsilon <= 8 && spent.epsilon > 7.99, `spent ${spent.epsilon}`);
  assertEquals(
    spent.epsilon,
    epsilonOf({ noiseMultiplier: s.noiseMultiplier! / 2, samplingRate: 1, steps: 6 }, 1e-5)
      .epsilon,
  );
  // More rounds need more noise for the same ε.
  const longer = resolveProtection({ epsilon: 8 }, { rounds: 30, localEpochs: 2 })!;
  assert(longer.noiseMultiplier! > s.noiseMultiplier!);
  assertEquals(epsilonSpent(resolveProtection({ clip: 1 }, t), 6), null);
});

Deno.test("trainRounds with noise: per-round ε grows with rounds × epochs; fedavg spends nothing", async () => {
  const cfg = defaultModelConfig(12);
  const train = makeFixture({ rows: 96, features: 12, seed: 3 });
  const protection = { clipNorm: 1, noiseMultiplier: 2, delta: 1e-5 };
  const common = {
    rounds: 2,
    localEpochs: 2,
    batchSize: 32,
    learningRate: 3e-3,
    seed: 1,
    model: cfg,
    protection,
  };
  const input = {
    partitions: partition(sliceRows(train, 0, 64), 2),
    validation: sliceRows(train, 64, 80),
    test: sliceRows(train, 80, 96),
  };
  const released: number[] = [];
  const split = await trainRounds({
    ...input,
    options: { ...common, mode: "splitfed-v1" },
    observeReleases: (deviceIndex, r) => {
      released.push(deviceIndex);
      const norms = rowNorms(r.activations, r.rows);
      // Noise of std 2 per element over 192 elements: the release is far outside the clip ball.
      assert(norms.every((n) => n > 5), "release not noised");
    },
  });
  assertEquals(released.length, 2 * 2 * 2 * 1); // rounds × devices × epochs × 1 batch of 32
  const eps = split.rounds.map((r) => r.privacy!.epsilon);
  assertEquals(split.rounds.map((r) => r.privacy!.releasesPerRow), [2, 4]);
  assertEquals(eps[0], epsilonSpent(protection, 2)!.epsilon);
  assert(eps[1] > eps[0]);
  const fedavg = await trainRounds({ ...input, options: { ...common, mode: "fedavg" } });
  assertEquals(fedavg.rounds.map((r) => r.privacy), [null, null]);
});

Deno.test("activationClipNorm in the model config: deviceForward clips (evaluation and detection see what training saw)", () => {
  const clipped = { ...config, activationClipNorm: 0.05 };
  const params = new ParamSet(deviceLayout(config), device0);
  const x = tf.tensor2d(batch.features, [batch.rows, config.features]);
  const [plain, clip] = [config, clipped].map((c) =>
    tf.tidy(() => deviceForward(c, params.tensors, x).dataSync() as Float32Array)
  );
  const plainNorms = rowNorms(plain, batch.rows);
  const clipNorms = rowNorms(clip, batch.rows);
  assert(plainNorms.every((n) => n > 0.05), "test needs rows above the clip norm");
  for (const n of clipNorms) assertAlmostEquals(n, 0.05, 1e-6);
  // The same as the protection's clipping, so a protected device and its model agree.
  const viaProtection = tf.tidy(() =>
    createProtection({ clipNorm: 0.05, seed: 0 }).differentiable(
      deviceForward(config, params.tensors, x),
    ).dataSync() as Float32Array
  );
  assert(maxAbsDiff(viaProtection, clip) < 1e-7);
  for (const bad of [0, -1, Number.NaN, Infinity]) {
    assertThrows(() => validateModelConfig({ ...config, activationClipNorm: bad }));
  }
  tf.dispose(x);
  params.dispose();
});
