// Raw rows never leave the device: in split modes the device's message holds only activation and
// label frames, and no raw feature vector appears in its bytes; in the FedAvg baseline what leaves
// is the weight vectors and counts. (The networked roles' end-to-end wire test covers the same
// property over HTTP for every mode, including detection.)
import { Buffer } from "node:buffer";
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "../../assert.ts";
import { defaultModelConfig } from "../../../ml/model/config.ts";
import { deriveSeed } from "../../../ml/model/random.ts";
import { deviceLayout, edgeLayout, initParams } from "../../../ml/model/split_model.ts";
import { checkMatrixForModel, shuffledBatches } from "../../../ml/train/batches.ts";
import { runLocalTask } from "../../../ml/train/local.ts";
import { DeviceSide } from "../../../ml/train/split_step.ts";
import { decodeMessage } from "../../../ml/wire/frame.ts";
import { makeFixture, tfForTests } from "../fixtures.ts";

await tfForTests();

const config = defaultModelConfig(12);
const data = makeFixture({ rows: 40, features: 12, seed: 5 });
const labels = checkMatrixForModel(config, data, "fixture");

/** True if any 3 consecutive raw values of any row (12 bytes as float32) occur in `bytes`. */
function containsRawRun(bytes: Uint8Array, features: Float32Array): boolean {
  const raw = new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
  const haystack = Buffer.from(bytes);
  for (let i = 0; i + 3 <= features.length; i += 3) {
    if (haystack.indexOf(Buffer.from(raw.subarray(i * 4, (i + 3) * 4))) >= 0) return true;
  }
  return false;
}

Deno.test("no raw rows: a split-learning device sends activations and labels only", () => {
  const device = new DeviceSide(config, initParams(deviceLayout(config), deriveSeed(1, 1)), {
    learningRate: 1e-3,
    name: "device 0",
  });
  try {
    const batch = shuffledBatches(data, labels, 16, 3).next().value!;
    const message = device.forward(batch, 0, 0);
    const frames = decodeMessage(message, "test");
    assertEquals(frames.map((f) => f.kind), ["activations", "labels"]);
    assertEquals(frames[0].shape, [16, 6, 32]);
    assert(
      !containsRawRun(message, batch.features),
      "raw feature values appear in the device's message",
    );
    // The check itself can find a raw run when one is there.
    const planted = new Uint8Array(message.length + 12);
    planted.set(message);
    planted.set(new Uint8Array(batch.features.buffer, 0, 12), message.length);
    assert(containsRawRun(planted, batch.features));
  } finally {
    device.dispose();
  }
});

Deno.test("no raw rows: the FedAvg baseline device returns weights and counts only", () => {
  const before = tf.memory().numTensors;
  const result = runLocalTask(config, data, labels, {
    deviceIndex: 0,
    round: 0,
    mode: "fedavg",
    device: initParams(deviceLayout(config), 1),
    edge: initParams(edgeLayout(config), 2),
  }, { epochs: 1, batchSize: 20, learningRate: 1e-3, seed: 0 });
  assertEquals(Object.keys(result).sort(), [
    "device",
    "deviceIndex",
    "edge",
    "lossMean",
    "round",
    "samples",
    "steps",
  ]);
  assertEquals(result.device.length, deviceLayout(config).totalLength);
  assertEquals(result.edge.length, edgeLayout(config).totalLength);
  const weights = new Uint8Array(result.device.byteLength + result.edge.byteLength);
  weights.set(
    new Uint8Array(result.device.buffer, result.device.byteOffset, result.device.byteLength),
  );
  weights.set(
    new Uint8Array(result.edge.buffer, result.edge.byteOffset, result.edge.byteLength),
    result.device.byteLength,
  );
  assert(!containsRawRun(weights, data.features), "raw feature values appear in the FedAvg update");
  assertEquals(tf.memory().numTensors, before);
});
