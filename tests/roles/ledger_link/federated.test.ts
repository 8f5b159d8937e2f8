// SplitFed v1 over HTTP (edge and devices via app.fetch) with the validators deciding which
// device updates count: 4 in-process validators with a real tfjs evaluator, 10 devices of which
// 30 % send sign-flipped or boosted updates. The poisoned updates are rejected with reasons on the
// ledger, the attackers' reputation drops, the aggregated model's F1 stays close to a clean run,
// and every device trains only from certified global models.
import { assert, assertEquals } from "../../assert.ts";
import { makeFixture, partition, tfForTests } from "../../ml/fixtures.ts";
import { defaultModelConfig } from "../../../ml/model/config.ts";
import {
  type Aggregator,
  fedAvgAggregator,
  initialModel,
  type TrainingOptions,
  trainRounds,
} from "../../../ml/train/loop.ts";
import { modelHash } from "../../../ledger/app/blob.ts";
import { scale, signFlip } from "../../../ledger/app/attacks.ts";
import { verifyLedger } from "../../../ledger/verify.ts";
import { RequestVerifier } from "../../../net/signed_request.ts";
import { EdgeNode } from "../../../roles/edge/edge_node.ts";
import { createEdgeApp } from "../../../roles/edge/edge_app.ts";
import { DeviceNode } from "../../../roles/device/device_node.ts";
import { LedgerAggregator } from "../../../roles/ledger_link/ledger_aggregator.ts";
import { UpdateSubmitter } from "../../../roles/ledger_link/update_submitter.ts";
import { splitModelEvaluator } from "../../../roles/validator/update_evaluator.ts";
import { UpdateCluster } from "../validator/update_cluster.ts";

const DEVICES = 10;
const ATTACK: Record<number, "sign-flip" | "scale"> = {
  7: "sign-flip",
  8: "sign-flip",
  9: "scale",
};

Deno.test("validators filter poisoned SplitFed updates; F1 stays close to the clean run", async () => {
  await tfForTests();
  const data = makeFixture({ rows: 600, features: 12, seed: 7 });
  const parts = partition(data, DEVICES);
  const validation = makeFixture({ rows: 120, features: 12, seed: 8 });
  const test = makeFixture({ rows: 200, features: 12, seed: 9 });
  const options: TrainingOptions = {
    mode: "splitfed-v1",
    rounds: 3,
    localEpochs: 1,
    batchSize: 32,
    learningRate: 0.01,
    seed: 3,
    model: { ...defaultModelConfig(12), lstmUnits: 8, convFilters: 8, denseUnits: 8 },
  };
  const clean = await trainRounds({ options, partitions: parts, validation, test });
  // The same attack without validators: FedAvg over everything the devices send.
  const unprotected: Aggregator = (updates, round, current) =>
    fedAvgAggregator(
      updates.map((u) => {
        const kind = ATTACK[u.deviceIndex];
        if (!kind) return u;
        const device = kind === "sign-flip"
          ? signFlip(current.device, u.device)
          : scale(current.device, u.device, 10);
        return { ...u, device };
      }),
      round,
      current,
    );
  const attacked = await trainRounds({
    options,
    partitions: parts,
    validation,
    test,
    aggregate: unprotected,
  });

  const initial = initialModel(options.model, options.seed);
  // The validators' own sample (not the trainer's validation split).
  const evaluator = splitModelEvaluator(
    options.model,
    makeFixture({ rows: 120, features: 12, seed: 21 }),
  );
  const firstEvaluated = new Map<number, Float32Array>(); // round -> first weights scored
  const cluster = await UpdateCluster.start({
    devices: DEVICES,
    initialModelSha256: modelHash(initial.device),
    evaluate: (weights, context) => {
      if (!firstEvaluated.has(context.round)) firstEvaluated.set(context.round, weights.slice());
      return evaluator(weights, context);
    },
  });
  const controller = new AbortController();
  const ids = cluster.deviceKeys.map((k) => k.id);
  const edge = new EdgeNode(options.model, ids, {
    epochs: options.localEpochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    seed: options.seed,
  }, { roundTimeoutMs: 60_000, minDevices: ids.length });
  const loops: Promise<void>[] = [];
  try {
    const byAddress = new Map(cluster.deviceKeys.map((k) => [k.address, k]));
    const verifier = new RequestVerifier(cluster.genesis.chain_id, (address) => {
      const key = byAddress.get(address);
      return key ? { publicKey: key.publicKey, role: "device" } : undefined;
    });
    const edgeApp = createEdgeApp({
      node: edge,
      verifier,
      deviceIdOf: (a) => byAddress.get(a)?.id,
    });
    const checked: string[] = [];
    for (const [k, key] of cluster.deviceKeys.entries()) {
      const kind = ATTACK[k];
      const submitter = new UpdateSubmitter({
        client: cluster.client(key),
        transform: kind
          ? (update, global) => {
            if (!global) throw new Error("no certified global to attack from");
            return kind === "sign-flip"
              ? signFlip(global, update.weights)
              : scale(global, update.weights, 10);
          }
          : undefined,
      });
      const device = new DeviceNode({
        id: key.id,
        chainId: cluster.genesis.chain_id,
        signer: key,
        edgeUrl: "http://edge.invalid",
        fetcher: async (request) => await edgeApp.fetch(request),
        config: options.model,
        data: parts[k],
        onUpdate: submitter.onUpdate,
        checkModel: async (work) => {
          await submitter.checkModel(work);
          checked.push(`${key.id}:${work.round}`);
        },
      });
      loops.push(device.loop(controller.signal));
    }
    const aggregator = new LedgerAggregator({
      client: cluster.client(cluster.edgeKey),
      deviceIds: ids,
      fetch: cluster.fetch,
    });
    const run = await trainRounds({
      options,
      partitions: parts,
      validation,
      test,
      executor: aggregator.executor(edge),
      aggregate: aggregator.aggregate,
      initial,
    });

    // Validators score a round's global model when the round opens, before any update arrives.
    assertEquals(firstEvaluated.get(1), initial.device, "round 1 starts by scoring its global");
    // Every device checked the certificate of every round's model before training.
    assertEquals(checked.length, DEVICES * options.rounds);
    // The poisoned updates are rejected with reasons, every round they were admitted.
    const attackers = Object.keys(ATTACK).map((k) => ids[Number(k)]);
    for (const outcome of aggregator.outcomes) {
      for (const u of outcome.record.updates) {
        const bad = attackers.includes(u.deviceId);
        assertEquals(u.accepted, !bad, `round ${outcome.round} ${u.deviceId}: ${u.reasons}`);
        if (bad) assert(u.reasons.length > 0);
      }
      for (const c of outcome.record.aggregation.contributors) assert(!attackers.includes(c));
      assert(outcome.record.globalEvaluation !== null, "the validators evaluated the round");
    }
    // Two rejections quarantine; the third round records the refusal.
    const last = aggregator.outcomes[2].record;
    assertEquals(
      last.admissionRejections.map((r) => `${r.deviceId}:${r.reason}`).sort(),
      attackers.map((id) => `${id}:quarantined`),
    );
    const reputation = new Map(cluster.apps[1]!.devices().map((d) => [d.id, d]));
    for (const id of attackers) {
      assertEquals(reputation.get(id)!.status, "quarantined");
      assert(reputation.get(id)!.reputationMicro < reputation.get(ids[0])!.reputationMicro);
    }

    const f1 = (r: typeof run) => r.rounds[r.rounds.length - 1].test.binary.f1;
    console.log(
      `F1 after ${options.rounds} rounds: clean ${f1(clean).toFixed(3)}, attacked with ` +
        `validators ${f1(run).toFixed(3)}, attacked FedAvg without validators ${
          f1(attacked).toFixed(3)
        }`,
    );
    assert(Math.abs(f1(run) - f1(clean)) <= 0.1, `F1 ${f1(run)} vs clean ${f1(clean)}`);

    // All 4 validators: identical chains that verifyLedger accepts. The trial goes on as soon as
    // one validator answers that the last result committed: wait for the others to commit it too.
    const top = Math.max(...cluster.nodes.map((n) => n!.app.committed.height));
    await cluster.waitFor(
      `every validator at height ${top}`,
      () => cluster.nodes.every((n) => n!.app.committed.height >= top),
    );
    await Promise.all(cluster.liveApps().map((a) => a.idle()));
    assertEquals(new Set(cluster.liveApps().map((a) => a.stateRoot())).size, 1);
    const height = Math.min(...cluster.nodes.map((n) => n!.app.committed.height));
    const tips = await Promise.all(cluster.stores.map((s) => s!.getBlockHash(height)));
    assertEquals(new Set(tips).size, 1);
    await cluster.halt();
    for (const store of cluster.stores) {
      const report = await verifyLedger(store!, cluster.genesis);
      assert(report.ok, JSON.stringify(report));
    }
  } finally {
    controller.abort();
    await Promise.allSettled(loops);
    await edge.close();
    await cluster.stop();
  }
});
