import assert from "node:assert/strict";
import {
  attackRound,
  canonicalHash,
  canonicalJson,
  checkModelBlob,
  createRng,
  decodeWeights,
  encodeWeights,
  firstDifference,
  freeRider,
  gaussian,
  initialState,
  isUpdateLevel,
  modelHash,
  mulDiv,
  paramsWith,
  pickMalicious,
  reputationMicro,
  scale,
  signFlip,
  splitRewards,
  stateRoot,
  sybil,
} from "../../../ledger/app/mod.ts";

Deno.test("canonical JSON: sorted keys, integers only, refuses what would not hash the same everywhere", () => {
  assert.equal(
    canonicalJson({ b: 1, a: [true, null, "x"], c: { z: -2, y: "é" } }),
    '{"a":[true,null,"x"],"b":1,"c":{"y":"é","z":-2}}',
  );
  for (const bad of [0.5, -0, NaN, 2 ** 53, undefined, new Float32Array(1), 1n, new Date(0)]) {
    assert.throws(() => canonicalJson({ x: bad }), /canonical: \$\.x/);
  }
  assert.equal(canonicalHash({ a: 1, b: 2 }), canonicalHash({ b: 2, a: 1 }));
  assert.equal(firstDifference({ a: [1, 2] }, { a: [1, 3] }), "$.a[1]");
  assert.equal(firstDifference({ a: 1 }, { a: 1 }), null);
  assert.equal(firstDifference({ a: 1 }, { a: 1, b: 2 }), "$.b");
});

Deno.test("state root is stable, changes with any field, and covers the params", () => {
  const genesis = {
    params: paramsWith({ parameterCount: 4 }),
    devices: ["b", "a"],
    initialModelHash: "0".repeat(64),
  };
  const s = initialState(genesis);
  assert.deepEqual(Object.keys(s.devices), ["a", "b"]);
  const root = stateRoot(s);
  assert.match(root, /^[0-9a-f]{64}$/);
  assert.equal(stateRoot(structuredClone(s)), root);
  assert.notEqual(
    stateRoot({ ...s, devices: { ...s.devices, a: { ...s.devices.a, credits: 1 } } }),
    root,
  );
  assert.notEqual(
    stateRoot(initialState({ ...genesis, params: paramsWith({ parameterCount: 5 }) })),
    root,
  );
});

Deno.test("beta reputation and exact integer ratios", () => {
  assert.equal(reputationMicro(0, 0), 500_000);
  assert.equal(reputationMicro(1_000_000, 0), 666_666);
  assert.equal(reputationMicro(0, 1_900_000), 256_410);
  assert.equal(mulDiv(2 ** 52, 1_000_000, 2 ** 52), 1_000_000); // the product exceeds 2^53
  assert.throws(() => mulDiv(1, 1, 0), /division by zero/);
});

Deno.test("rewards: proportional to samples x quality, largest remainder, pool paid exactly", () => {
  // Weights 1 : 1 : 1 of a pool of 10 -> 3, 3, 3 and one credit of remainder to the smallest id.
  const three = splitRewards([
    { deviceId: "c", sampleCount: 1, qualityMicro: 1 },
    { deviceId: "a", sampleCount: 1, qualityMicro: 1 },
    { deviceId: "b", sampleCount: 1, qualityMicro: 1 },
  ], 10);
  assert.deepEqual([...three.entries()].sort(), [["a", 4], ["b", 3], ["c", 3]]);
  // 100 x 0.5 vs 300 x 1.0 -> 50 : 300 of 700 = 100 and 600.
  const two = splitRewards([{ deviceId: "x", sampleCount: 100, qualityMicro: 500_000 }, {
    deviceId: "y",
    sampleCount: 300,
    qualityMicro: 1_000_000,
  }], 700);
  assert.deepEqual([two.get("x"), two.get("y")], [100, 600]);
  assert.deepEqual([
    ...splitRewards([{ deviceId: "z", sampleCount: 5, qualityMicro: 0 }], 100).values(),
  ], [0]);
});

Deno.test("model blobs: little-endian round trip and the checks a device runs on a global model", () => {
  const w = Float32Array.of(1.5, -0, 3.4e38, 1e-45);
  const bytes = encodeWeights(w);
  assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 0xc0, 0x3f]); // 1.5f little-endian
  assert.deepEqual(decodeWeights(bytes), w);
  const h = modelHash(w);
  assert.equal(checkModelBlob(bytes, h, 4).ok, true);
  assert.equal(
    (checkModelBlob(bytes, "0".repeat(64), 4) as { reason: string }).reason,
    "hash_mismatch",
  );
  assert.equal((checkModelBlob(bytes, h, 5) as { reason: string }).reason, "wrong_shape");
  const nan = encodeWeights(Float32Array.of(0, NaN));
  assert.equal(
    (checkModelBlob(nan, modelHash(Float32Array.of(0, NaN)), 2) as { reason: string }).reason,
    "non_finite",
  );
  assert.throws(() => decodeWeights(new Uint8Array(3)), /multiple of 4/);
});

Deno.test("attacks are pure functions of their inputs and seed", () => {
  const g = Float32Array.of(1, 1, 1);
  const u = Float32Array.of(2, 0, 1);
  assert.deepEqual([...signFlip(g, u)], [0, 2, 1]);
  assert.deepEqual([...scale(g, u, 10)], [11, -9, 1]);
  assert.deepEqual([...freeRider(g, createRng(1))], [1, 1, 1]);
  assert.deepEqual([...freeRider(g, createRng(1), 0, u)], [2, 0, 1]);
  assert.deepEqual(gaussian(g, 0.1, createRng(3)), gaussian(g, 0.1, createRng(3)));
  const clones = sybil(g, u, 3, 1e-3, createRng(4));
  assert.equal(clones.length, 3);
  for (const c of clones) for (let j = 0; j < 3; j++) assert.ok(Math.abs(c[j] - u[j]) < 0.01);
  assert.deepEqual([...g], [1, 1, 1]); // inputs untouched
  const ids = Array.from({ length: 10 }, (_, i) => `d${i}`);
  assert.equal(pickMalicious(ids, 0.3, createRng(5)).size, 3);
  assert.deepEqual(
    pickMalicious(ids, 0.3, createRng(5)),
    pickMalicious([...ids].reverse(), 0.3, createRng(5)),
  );
  assert.throws(() => pickMalicious(ids, 1.5, createRng(5)), /outside/);
  assert.equal(isUpdateLevel("label-flip"), false);
  assert.equal(isUpdateLevel("sybil"), true);
});

Deno.test("genesis params: limits asserted with the name of the field", () => {
  assert.throws(() => paramsWith({ parameterCount: 0 }), /parameterCount/);
  assert.throws(
    () => paramsWith({ parameterCount: 1_000_000, updatesPerRoundMax: 256 }),
    /parameterCount x updatesPerRoundMax/,
  );
  assert.throws(() => paramsWith({ minCosineMicro: 0.1 }), /minCosineMicro/);
  assert.throws(() => paramsWith({ trimFractionMicro: 500_000 }), /trimFractionMicro/);
  assert.throws(() => paramsWith({ aggregationRule: "mean" as never }), /aggregationRule/);
});

Deno.test("attackRound: replaces only the malicious devices' updates, deterministically", () => {
  const g = Float32Array.of(0, 0, 0, 0);
  const honest = new Map([
    ["a", Float32Array.of(1, 1, 0, 0)],
    ["b", Float32Array.of(1, 0, 1, 0)],
    ["c", Float32Array.of(1, 0, 0, 1)],
  ]);
  const bad = new Set(["b", "c"]);
  const flipped = attackRound("sign-flip", g, honest, bad, createRng(1));
  assert.deepEqual([...flipped.get("a")!], [1, 1, 0, 0]);
  assert.deepEqual([...flipped.get("b")!], [-1, 0, -1, 0]);
  assert.deepEqual([...attackRound("scale", g, honest, bad, createRng(1)).get("c")!], [
    10,
    0,
    0,
    10,
  ]);
  assert.deepEqual([...attackRound("free-rider", g, honest, bad, createRng(1)).get("c")!], [
    0,
    0,
    0,
    0,
  ]);
  assert.equal(attackRound("label-flip", g, honest, bad, createRng(1)).get("b"), honest.get("b"));
  const sybils = attackRound("sybil", g, honest, bad, createRng(2));
  for (const id of ["b", "c"]) {
    for (let j = 0; j < 4; j++) {
      assert.ok(Math.abs(sybils.get(id)![j] - [-1, 0, -0.5, -0.5][j]) < 0.01);
    }
  }
  assert.deepEqual(
    attackRound("gaussian", g, honest, bad, createRng(3)),
    attackRound("gaussian", g, honest, bad, createRng(3)),
  );
});
