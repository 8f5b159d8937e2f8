// The edge and device roles over HTTP (app.fetch, no port) must train exactly what the in-process
// engine trains: same batches, same steps, same weights. And the bytes a device sends must never
// contain its raw feature rows.
import { assert, assertEquals } from "../assert.ts";
import { makeFixture, maxAbsDiff, partition, tfForTests } from "../ml/fixtures.ts";
import { defaultModelConfig } from "../../ml/model/config.ts";
import { type TrainingOptions, trainRounds } from "../../ml/train/loop.ts";
import { addressOf, generateKeyPair } from "../../ledger/crypto/ed25519.ts";
import { RequestVerifier } from "../../net/signed_request.ts";
import { EdgeNode } from "../../roles/edge/edge_node.ts";
import { createEdgeApp } from "../../roles/edge/edge_app.ts";
import { DeviceNode } from "../../roles/device/device_node.ts";
import type { LabeledMatrix } from "../../ml/data/types.ts";
import { deriveSeed, permutation } from "../../ml/model/random.ts";

const CHAIN = "test-chain";

async function networkedSetup(
  partitions: LabeledMatrix[],
  options: TrainingOptions,
  sent: Map<string, Uint8Array[]>,
  /** Devices (by index) that never ask for work, and the edge's round policy. */
  faults: { silent?: number[]; roundTimeoutMs?: number; minDevices?: number } = {},
) {
  const keys = await Promise.all(partitions.map(() => generateKeyPair()));
  const ids = partitions.map((_, k) => `device-${k}`);
  const byAddress = new Map(keys.map((key, k) => [addressOf(key.publicKey), { key, id: ids[k] }]));
  const verifier = new RequestVerifier(CHAIN, (address) => {
    const entry = byAddress.get(address);
    return entry ? { publicKey: entry.key.publicKey, role: "device" } : undefined;
  });
  const edge = new EdgeNode(options.model, ids, {
    epochs: options.localEpochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    seed: options.seed,
  }, {
    roundTimeoutMs: faults.roundTimeoutMs ?? 20_000,
    minDevices: faults.minDevices ?? ids.length,
  });
  const app = createEdgeApp({ node: edge, verifier, deviceIdOf: (a) => byAddress.get(a)?.id });
  const controller = new AbortController();
  const devices = partitions.map((data, k) =>
    new DeviceNode({
      id: ids[k],
      chainId: CHAIN,
      signer: { address: addressOf(keys[k].publicKey), privateKey: keys[k].privateKey },
      edgeUrl: "http://edge.invalid",
      fetcher: async (request) => await app.fetch(request),
      config: options.model,
      data,
      onSend: (_path, body) => sent.get(ids[k])!.push(body.slice()),
    })
  );
  ids.forEach((id) => sent.set(id, []));
  const loops = devices.filter((_, k) => !faults.silent?.includes(k)).map((d) =>
    d.loop(controller.signal)
  );
  return {
    edge,
    stop: async () => {
      controller.abort();
      await Promise.allSettled(loops);
    },
  };
}

for (const mode of ["splitfed-v1", "splitfed-v2", "fedavg"] as const) {
  Deno.test(`roles over HTTP train the same model as the in-process engine (${mode})`, async () => {
    await tfForTests();
    const data = makeFixture({ rows: 360, features: 12, seed: 7 });
    const parts = partition(data, 3);
    const validation = makeFixture({ rows: 120, features: 12, seed: 8 });
    const test = makeFixture({ rows: 120, features: 12, seed: 9 });
    const options: TrainingOptions = {
      mode,
      rounds: 2,
      localEpochs: 1,
      batchSize: 32,
      learningRate: 0.01,
      seed: 3,
      model: { ...defaultModelConfig(12), lstmUnits: 8, convFilters: 8, denseUnits: 8 },
    };
    const reference = await trainRounds({ options, partitions: parts, validation, test });

    const sent = new Map<string, Uint8Array[]>();
    const { edge, stop } = await networkedSetup(parts, options, sent);
    try {
      const networked = await trainRounds({
        options,
        partitions: parts,
        validation,
        test,
        executor: edge,
      });
      assertEquals(maxAbsDiff(networked.model.device, reference.model.device), 0, "device weights");
      assertEquals(maxAbsDiff(networked.model.edge, reference.model.edge), 0, "edge weights");
      assertEquals(
        networked.rounds.map((r) => r.test.binary.f1),
        reference.rounds.map((r) => r.test.binary.f1),
      );
    } finally {
      await stop();
      await edge.close();
    }

    // No request body of a device contains any of its raw feature rows (as float32 bytes).
    for (const [k, part] of parts.entries()) {
      const bodies = sent.get(`device-${k}`)!;
      assert(bodies.length > 0);
      const width = part.featureNames.length;
      for (let r = 0; r < part.rows; r += 17) {
        const row = new Uint8Array(part.features.slice(r * width, (r + 1) * width).buffer);
        for (const body of bodies) {
          assert(!containsBytes(body, row), `device-${k} sent raw row ${r}`);
        }
      }
    }
  });
}

function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

Deno.test("splitfed-v2 over HTTP: a device that never takes its turn is skipped after its share of the round", async () => {
  await tfForTests();
  const data = makeFixture({ rows: 240, features: 12, seed: 11 });
  const parts = partition(data, 3);
  const options: TrainingOptions = {
    mode: "splitfed-v2",
    rounds: 1,
    localEpochs: 1,
    batchSize: 32,
    learningRate: 0.01,
    seed: 5,
    model: { ...defaultModelConfig(12), lstmUnits: 8, convFilters: 8, denseUnits: 8 },
  };
  const sent = new Map<string, Uint8Array[]>();
  // The device whose turn comes first stays silent: it may take only its share (a third) of the
  // round, so the two devices after it still get their turns.
  const silent = permutation(3, deriveSeed(options.seed, 0, 0x5f2))[0];
  const { edge, stop } = await networkedSetup(parts, options, sent, {
    silent: [silent],
    roundTimeoutMs: 30_000,
    minDevices: 2,
  });
  try {
    const validation = makeFixture({ rows: 60, features: 12, seed: 12 });
    const result = await trainRounds({
      options,
      partitions: parts,
      validation,
      test: validation,
      executor: edge,
    });
    const trained = parts.reduce((sum, p, k) => sum + (k === silent ? 0 : p.rows), 0);
    assertEquals(result.rounds[0].samples, trained, "only the two working devices' rows");
    assertEquals(sent.get(`device-${silent}`)!.length, 0);
  } finally {
    await stop();
    await edge.close();
  }
});
