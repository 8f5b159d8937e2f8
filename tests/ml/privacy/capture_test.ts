// The curious edge of `run --experiment privacy`: the capture keeps a bounded uniform sample of one
// round's releases, exactly as sent; the audit on them separates leaky from noised releases.
import { assert, assertEquals, assertThrows } from "../../assert.ts";
import { defaultModelConfig } from "../../../ml/model/config.ts";
import { deviceLayout, initParams } from "../../../ml/model/split_model.ts";
import { auditCapturedReleases, ReleaseCapture } from "../../../ml/privacy/capture.ts";
import type { Release } from "../../../ml/train/split_step.ts";
import { checkMatrixForModel, shuffledBatches } from "../../../ml/train/batches.ts";
import { DeviceSide } from "../../../ml/train/split_step.ts";
import { createProtection } from "../../../ml/privacy/protection.ts";
import { makeFixture, sliceRows, tfForTests } from "../fixtures.ts";

await tfForTests();

function release(round: number, rows: number, start: number): Release {
  const features = Float32Array.from({ length: rows * 4 }, (_, i) => start * 4 + i);
  return {
    round,
    step: 0,
    features,
    labels: Int32Array.from({ length: rows }, (_, r) => (start + r) % 2),
    rows,
    activations: Float32Array.from({ length: rows * 6 }, (_, i) => -(start * 6 + i)),
    shape: [rows, 3, 2],
  };
}

Deno.test("release capture: only the chosen round, at most rowsMax rows, rows kept whole", () => {
  const capture = new ReleaseCapture(2, 4, 50, 1);
  capture.observe(0, release(1, 40, 0)); // another round: ignored
  for (let b = 0; b < 10; b++) capture.observe(b % 3, release(2, 30, 1000 + 30 * b));
  assertEquals(capture.rowsSeen, 300);
  const s = capture.sample();
  assertEquals([s.raw.rows, s.raw.columns, s.acts.rows, s.acts.columns], [50, 4, 50, 6]);
  const firsts = new Set<number>();
  for (let r = 0; r < 50; r++) {
    const row = s.raw.data[r * 4] / 4; // the original row number
    firsts.add(row);
    assert(row >= 1000 && row < 1300, `row ${row} is not from round 2`);
    // Raw row, activations and label stay together.
    assertEquals(s.acts.data[r * 6], -(row * 6));
    assertEquals(s.isAttack[r], row % 2);
  }
  assertEquals(firsts.size, 50);
  // Uniform over the round, not the first 50 rows.
  assert([...firsts].some((row) => row >= 1150), "reservoir kept only early rows");
  assertThrows(() => new ReleaseCapture(0, 4, 1, 1), RangeError);
  assertThrows(() => new ReleaseCapture(0, 4, 20_001, 1), RangeError);
  assertThrows(() => new ReleaseCapture(0, 4, 10, 1).sample(), Error, "0 rows released");
});

Deno.test("audit of captured releases: plain activations leak, heavily noised ones do not", () => {
  const config = defaultModelConfig(12);
  const data = makeFixture({ rows: 900, features: 12, seed: 8 });
  const train = sliceRows(data, 0, 600), validation = sliceRows(data, 600, 900);
  const device0 = initParams(deviceLayout(config), 3);
  const privacyData = { name: "fixture", train, validation, test: validation, scales: [] };
  // One batch is too few for a decoder; capture the whole partition by forwarding every batch.
  const run = (noise: number) => {
    const protection = noise > 0 ? { clipNorm: 1, noiseMultiplier: noise, delta: 1e-5 } : undefined;
    const capture = new ReleaseCapture(0, 12, 600, 2);
    const labels = checkMatrixForModel(config, train, "fixture");
    let step = 0;
    for (const batch of shuffledBatches(train, labels, 64, 1)) {
      const device = new DeviceSide(config, device0, {
        learningRate: 1e-3,
        name: "device 0",
        protection: protection ? createProtection({ ...protection, seed: 40 + step }) : undefined,
        onRelease: (r) => capture.observe(0, r),
      });
      device.forward(batch, 0, step++);
      device.dispose();
    }
    return auditCapturedReleases({
      data: privacyData,
      config,
      deviceModel: device0,
      protection,
      capture,
      auxRows: 300,
      dcorRows: 200,
      seed: 1,
    });
  };
  const plain = run(0);
  const noised = run(20);
  assertEquals([plain.targetRows, plain.auxRows, plain.round], [600, 300, 0]);
  assert(plain.nmseMean < 0.5, `plain activations: nMSE ${plain.nmseMean}`);
  assert(plain.dcor > 0.8, `plain activations: dCor ${plain.dcor}`);
  assert(noised.nmseMean > 0.9, `σ = 20: nMSE ${noised.nmseMean}`);
  assert(noised.dcor2BiasCorrected < 0.1, `σ = 20: dCor² ${noised.dcor2BiasCorrected}`);
});
