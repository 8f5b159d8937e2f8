import assert from "node:assert/strict";
import {
  decodeMessage,
  DEFAULT_FRAME_LIMITS,
  encodeMessage,
  expectFrame,
  type Frame,
  FrameError,
} from "../../../ml/wire/frame.ts";

const activations: Frame = {
  kind: "activations",
  round: 3,
  step: 17,
  shape: [2, 3, 2],
  dtype: "float32",
  data: Float32Array.from({ length: 12 }, (_, i) => i * 0.25 - 1.5),
};
const labels: Frame = {
  kind: "labels",
  round: 3,
  step: 17,
  shape: [2],
  dtype: "int32",
  data: Int32Array.of(0, 4),
};

Deno.test("frames round-trip bit-exactly", () => {
  const bytes = encodeMessage([activations, labels]);
  assert.equal(bytes.length, 16 + 12 + 48 + 16 + 4 + 8);
  const frames = decodeMessage(bytes, "test");
  assert.deepEqual(frames, [activations, labels]);
  // From an unaligned offset inside a larger buffer, too.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(decodeMessage(shifted.subarray(1), "test"), [activations, labels]);
  assert.equal(
    expectFrame(frames, "labels", { round: 3, step: 17, rank: 1, dtype: "int32" }, "t").data[1],
    4,
  );
});

Deno.test("decoder rejects malformed and hostile messages", () => {
  const good = encodeMessage([activations]);
  const mutate = (at: number, value: number) => {
    const b = good.slice();
    b[at] = value;
    return b;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /empty message/],
    ["magic", mutate(0, 0), /bad magic/],
    ["version", mutate(4, 9), /unsupported version/],
    ["kind", mutate(5, 99), /unknown kind/],
    ["dtype", mutate(6, 7), /unknown dtype/],
    ["rank", mutate(7, 9), /rank 9/],
    ["truncated", good.subarray(0, good.length - 1), /payload has/],
    ["trailing", Uint8Array.of(...good, 1, 2), /truncated header/],
    ["zero dim", mutate(16, 0), /zero dimension/],
  ];
  for (const [name, bytes, pattern] of cases) {
    assert.throws(
      () => decodeMessage(bytes, "edge 1"),
      (e: Error) => e instanceof FrameError && pattern.test(e.message),
      name,
    );
  }
  // Huge declared shape is refused before any allocation.
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(16, 0xffffffff, true);
  assert.throws(() => decodeMessage(huge, "edge 1"), /more than/);
});

Deno.test("NaN or Inf in a payload is refused on both sides, naming where", () => {
  const bad = { ...activations, data: activations.data.slice() } as Frame;
  bad.data[5] = NaN;
  assert.throws(() => encodeMessage([bad]), /non-finite value NaN at element 5/);
  const bytes = encodeMessage([activations]);
  new DataView(bytes.buffer).setFloat32(28 + 4 * 7, Infinity, true);
  assert.throws(
    () => decodeMessage(bytes, "device 4 gradients"),
    /device 4 gradients.*non-finite value Infinity at element 7/,
  );
});

Deno.test("expectFrame checks round, step and rank", () => {
  const frames = decodeMessage(encodeMessage([activations]), "t");
  assert.throws(
    () =>
      expectFrame(frames, "activations", { round: 3, step: 18, rank: 3, dtype: "float32" }, "edge"),
    /expected round 3 step 18/,
  );
  assert.throws(
    () =>
      expectFrame(frames, "activations", { round: 3, step: 17, rank: 2, dtype: "float32" }, "edge"),
    /expected rank 2/,
  );
  assert.throws(
    () =>
      expectFrame(frames, "gradients", { round: 3, step: 17, rank: 3, dtype: "float32" }, "edge"),
    /expected one gradients/,
  );
});

Deno.test("decoding with views: aligned payloads share the message's memory, with every check kept", () => {
  const views = { views: true };
  const bytes = encodeMessage([activations, labels]);
  const frames = decodeMessage(bytes, "test", DEFAULT_FRAME_LIMITS, views);
  assert.deepEqual(frames, [activations, labels]);
  for (const frame of frames) assert.equal(frame.data.buffer, bytes.buffer);
  // Without the option, and from an unaligned offset even with it, payloads are copies.
  for (const frame of decodeMessage(bytes, "test")) {
    assert.notEqual(frame.data.buffer, bytes.buffer);
  }
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const unaligned = decodeMessage(shifted.subarray(1), "test", DEFAULT_FRAME_LIMITS, views);
  assert.deepEqual(unaligned, [activations, labels]);
  for (const frame of unaligned) assert.notEqual(frame.data.buffer, shifted.buffer);
  // A view into a larger buffer at an aligned offset reads only its own bytes.
  const padded = new Uint8Array(bytes.length + 8);
  padded.set(bytes, 4);
  assert.deepEqual(
    decodeMessage(padded.subarray(4, 4 + bytes.length), "test", DEFAULT_FRAME_LIMITS, views),
    [activations, labels],
  );
  assert.throws(
    () => decodeMessage(bytes.subarray(0, bytes.length - 1), "edge 2", DEFAULT_FRAME_LIMITS, views),
    /payload has \d+ bytes/,
  );
  new DataView(bytes.buffer).setFloat32(28 + 4 * 3, NaN, true);
  assert.throws(
    () => decodeMessage(bytes, "edge 2", DEFAULT_FRAME_LIMITS, views),
    /edge 2.*non-finite value NaN at element 3/,
  );
});
