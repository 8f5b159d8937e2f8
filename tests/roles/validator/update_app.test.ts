// Update consensus on 4 in-process validators (no ML: synthetic 64-parameter updates, geometric
// rules only): poisoned and bad updates are rejected with reasons on the ledger and never
// aggregated; reputation drops and quarantine follows; all validators end with identical chains
// that verifyLedger accepts, and a restarted validator rebuilds the same state from its blocks.
import { assert, assertEquals } from "../../assert.ts";
import { encodeWeights, modelHash } from "../../../ledger/app/blob.ts";
import { createRng } from "../../../ledger/app/prng.ts";
import { scale, signFlip } from "../../../ledger/app/attacks.ts";
import type { RoundRecord } from "../../../ledger/app/record.ts";
import { verifyLedger } from "../../../ledger/verify.ts";
import { sha256HexAsync } from "../../../ledger/crypto/sha256.ts";
import type { LoadedKey } from "../../../ledger/crypto/keyfile.ts";
import {
  certifiedRoundModel,
  fetchModelBytes,
  waitForRoundResult,
} from "../../../roles/ledger_link/certified.ts";
import { UpdateSubmitter } from "../../../roles/ledger_link/update_submitter.ts";
import { UpdateCluster } from "./update_cluster.ts";
import { ledgerCommand } from "../../../cli/commands/ledger.ts";
import { join } from "node:path";

const P = 64;
const SEED = 11;

function honestUpdate(global: Float32Array, step: Float32Array, rng: ReturnType<typeof createRng>) {
  const out = new Float32Array(P);
  const factor = 0.8 + 0.4 * rng.next();
  for (let j = 0; j < P; j++) out[j] = global[j] + factor * step[j] + 0.3 * rng.normal() * 0.01;
  return out;
}

Deno.test("validators reject poisoned and bad updates with reasons, agree on the chain, and restore", async () => {
  const rng = createRng(SEED);
  const g0 = Float32Array.from({ length: P }, () => rng.normal() * 0.1);
  const cluster = await UpdateCluster.start({
    devices: 10,
    initialModelSha256: modelHash(g0),
  });
  try {
    const edge = cluster.client(cluster.edgeKey);
    const devices = cluster.deviceKeys.map((k) => cluster.client(k));
    const submitters = devices.map((client) => new UpdateSubmitter({ client }));
    let global: Float32Array = g0;
    const records: RoundRecord[] = [];

    const openRound = async (round: number) => {
      await edge.putBlob(encodeWeights(global));
      const { id } = await edge.submit("round_open", {
        round,
        global_model_sha256: modelHash(global),
      });
      await edge.waitForTx(id);
    };
    const closeRound = async (round: number) => {
      const { id } = await edge.submit("round_close", { round });
      const { height } = await edge.waitForTx(id);
      const result = await waitForRoundResult(edge, round, height + 1, {
        timeoutMs: 30_000,
        fetch: cluster.fetch,
      });
      records.push(result.record);
      await cluster.waitForRound(round);
      // fetchModelBytes waits (bounded) for the validators to store the aggregate they commit.
      global = await fetchModelBytes(edge, result.modelSha256, global.length);
      assertEquals(modelHash(global), result.modelSha256);
      return { height, result };
    };
    /** Rejected by the chain (never ordered): waitForTx names the rule. */
    const leftOut = async (client: typeof edge, promise: Promise<{ id: string }>) => {
      const { id } = await promise;
      try {
        await client.waitForTx(id, 15_000);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error(`tx ${id} was committed`);
    };
    const step = Float32Array.from({ length: P }, () => rng.normal() * 0.05);
    const honestMeans: Float32Array[] = [];

    for (let round = 1; round <= 3; round++) {
      await openRound(round);
      // A device accepts the round's model only with a certificate (round 1: genesis or round_open).
      const certified = await certifiedRoundModel(devices[0], round, modelHash(global));
      assertEquals(certified.sha256, modelHash(global));

      const honest = new Map<number, Float32Array>();
      for (let d = 0; d <= 6; d++) honest.set(d, honestUpdate(global, step, rng));
      const mean = new Float32Array(P);
      for (const u of honest.values()) for (let j = 0; j < P; j++) mean[j] += u[j] / honest.size;
      honestMeans.push(mean);

      const jobs: Promise<unknown>[] = [];
      for (const [d, u] of honest) {
        if (round === 2 && d === 6) continue; // dev-6 sends a bad hash in round 2 (below)
        jobs.push(submitters[d].submit({ round: round - 1, weights: u, samples: 100 }));
      }
      if (round <= 2) {
        // 30 %: a sign-flipper, a booster, and one device sending malformed blobs.
        jobs.push(
          submitters[7].submit({
            round: round - 1,
            weights: signFlip(global, honest.get(0)!),
            samples: 100,
          }),
        );
        jobs.push(
          submitters[8].submit({
            round: round - 1,
            weights: scale(global, honest.get(1)!, 10),
            samples: 100,
          }),
        );
        const bad = round === 1
          ? new Float32Array(P - 1) // wrong shape
          : Float32Array.from(honest.get(2)!, (v, j) => (j === 5 ? NaN : v));
        jobs.push(submitters[9].submit({ round: round - 1, weights: bad, samples: 100 }));
      }
      if (round === 2) {
        // A tx naming a hash whose bytes were never uploaded: the stored blob does not match it.
        const uploaded = encodeWeights(honest.get(6)!);
        await devices[6].putBlob(uploaded);
        const named = await sha256HexAsync(encodeWeights(honest.get(5)!.map((v) => v + 1)));
        jobs.push(
          devices[6].submit("model_update", {
            round,
            sample_count: 100,
            blob_sha256: named,
            blob_size_bytes: uploaded.length,
          }).then(({ id }) => devices[6].waitForTx(id)),
        );
      }
      if (round === 3) {
        // dev-7 is quarantined by now: its (honest) update is refused and recorded.
        jobs.push(
          submitters[7].submit({
            round: round - 1,
            weights: honestUpdate(global, step, rng),
            samples: 100,
          }),
        );
      }
      await Promise.all(jobs);

      if (round === 2) {
        // A second update in the same round: the chain leaves it out, nothing is aggregated.
        const reason = await leftOut(
          devices[0],
          devices[0].submit("model_update", {
            round,
            sample_count: 100,
            blob_sha256: (await devices[0].putBlob(encodeWeights(honest.get(3)!))).sha256,
            blob_size_bytes: P * 4,
          }),
        );
        assert(/second model_update/.test(reason), reason);
      }
      // A device not in genesis is refused at submission.
      const outsider = cluster.client(cluster.outsiderKey as LoadedKey);
      let refused = "";
      try {
        await outsider.submit("model_update", {
          round,
          sample_count: 1,
          blob_sha256: modelHash(global),
          blob_size_bytes: P * 4,
        });
      } catch (error) {
        refused = (error as Error).message;
      }
      assert(/unknown_sender|403/.test(refused), refused);

      await closeRound(round);

      if (round === 3) {
        // Late: round 3 is over.
        const reason = await leftOut(
          devices[9],
          devices[9].submit("model_update", {
            round,
            sample_count: 100,
            blob_sha256: (await devices[9].putBlob(encodeWeights(honest.get(4)!))).sha256,
            blob_size_bytes: P * 4,
          }),
        );
        assert(/bad_round|not open|open round/.test(reason), reason);
      }
    }

    const [r1, r2, r3] = records;
    const byId = (r: RoundRecord, id: string) => r.updates.find((u) => u.deviceId === id);
    // Round 1: sign-flip and boost rejected by cosine / norm; wrong shape at admission.
    assertEquals(byId(r1, "dev-7")?.accepted, false);
    assert(
      byId(r1, "dev-7")!.reasons.includes("cosine_too_low"),
      JSON.stringify(byId(r1, "dev-7")),
    );
    assertEquals(byId(r1, "dev-8")?.accepted, false);
    assert(
      byId(r1, "dev-8")!.reasons.includes("norm_too_large"),
      JSON.stringify(byId(r1, "dev-8")),
    );
    assertEquals(
      r1.admissionRejections.map((r) => `${r.deviceId}:${r.reason}`),
      ["dev-9:wrong_shape"],
    );
    for (let d = 0; d <= 6; d++) assertEquals(byId(r1, `dev-${d}`)?.accepted, true, `dev-${d} r1`);
    // Round 2: NaN recorded; the bad-hash update is not recorded (not attributable) and absent.
    assertEquals(
      r2.admissionRejections.map((r) => `${r.deviceId}:${r.reason}`),
      ["dev-9:non_finite"],
    );
    assertEquals(byId(r2, "dev-6"), undefined);
    assertEquals(r2.updates.filter((u) => u.deviceId === "dev-0").length, 1);
    // Quarantine after two rejections; round 3 refuses dev-7 and records why.
    const quarantined = r2.events.map((e) => JSON.stringify(e)).join(" ");
    for (const id of ["dev-7", "dev-8", "dev-9"]) {
      assert(quarantined.includes(id), `${id} quarantined in round 2: ${quarantined}`);
    }
    assertEquals(
      r3.admissionRejections.map((r) => `${r.deviceId}:${r.reason}`),
      ["dev-7:quarantined"],
    );
    // Never aggregated: the contributors are the honest devices only.
    for (const r of records) {
      for (const c of r.aggregation.contributors) {
        assert(!["dev-7", "dev-8", "dev-9"].includes(c), `round ${r.round} aggregated ${c}`);
      }
    }
    // Reputation: honest devices above the attackers.
    const summary = cluster.apps[0]!.devices();
    const rep = (id: string) => summary.find((d) => d.id === id)!;
    for (const id of ["dev-7", "dev-8", "dev-9"]) {
      assertEquals(rep(id).status, "quarantined");
      assert(rep(id).reputationMicro < 300_000, `${id}: ${rep(id).reputationMicro}`);
      assertEquals(rep(id).credits, 0);
    }
    assert(rep("dev-0").reputationMicro > 700_000, `dev-0: ${rep("dev-0").reputationMicro}`);
    assert(rep("dev-0").credits > 0);

    // The robust aggregate stays near the honest mean.
    const finalDelta = global.map((v, j) => v - g0[j]);
    let honestDelta = new Float32Array(P);
    let g: Float32Array = g0;
    for (const mean of honestMeans) {
      honestDelta = honestDelta.map((v, j) => v + mean[j] - g[j]);
      g = mean;
    }
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const error = norm(finalDelta.map((v, j) => v - honestDelta[j])) / norm(honestDelta);
    assert(error < 0.5, `aggregate off the honest path by ${error.toFixed(3)}`);

    // The web API lists the devices with the ledger's reputation and status.
    const listed = await (await cluster.fetch("http://v1.test/api/v1/devices")).json();
    const items = (Array.isArray(listed) ? listed : listed.items ?? listed.devices) as {
      id: string;
      status: string;
      reputation: number;
    }[];
    assertEquals(
      items.find((d) => d.id === "dev-8")?.status,
      "quarantined",
      JSON.stringify(listed),
    );
    assert(items.find((d) => d.id === "dev-1")!.reputation > 0.7, JSON.stringify(listed));

    // Identical chains, identical application state, verifyLedger on every store (once every
    // validator committed what the first one did: clients go on after the first).
    const top = Math.max(...cluster.nodes.map((n) => n!.app.committed.height));
    await cluster.waitFor(
      `every validator at height ${top}`,
      () => cluster.nodes.every((n) => n!.app.committed.height >= top),
    );
    await Promise.all(cluster.liveApps().map((a) => a.idle()));
    const roots = cluster.liveApps().map((a) => a.stateRoot());
    assertEquals(new Set(roots).size, 1, `state roots ${roots}`);
    assertEquals(roots[0], r3.stateRoot);
    const height = Math.min(
      ...cluster.stores.map((_, i) => cluster.nodes[i]!.app.committed.height),
    );
    for (let h = 1; h <= height; h++) {
      const hashes = await Promise.all(cluster.stores.map((s) => s!.getBlockHash(h)));
      assertEquals(new Set(hashes).size, 1, `block ${h}`);
    }
    // One round_result per round reaches the ledger: backups hold theirs back while the
    // primary's commits, so no empty block (duplicates ordered and dropped) follows a result.
    const kinds: string[][] = [];
    for (let h = 1; h <= height; h++) {
      kinds.push((await cluster.stores[0]!.getBlock(h))!.txs.map((tx) => tx.type));
    }
    kinds.forEach((txs, i) => {
      const opensLater = kinds.slice(i).some((k) => k.includes("round_open"));
      if (i > 0 && kinds[i - 1].includes("round_result") && opensLater) {
        assert(
          txs.length > 0,
          `empty block ${i + 1} after a round_result: ${JSON.stringify(kinds)}`,
        );
      }
    });
    await cluster.halt();
    for (const store of cluster.stores) {
      const report = await verifyLedger(store!, cluster.genesis);
      assert(report.ok, JSON.stringify(report));
    }

    // `ledger show` prints each round's decisions and the devices' reputation and credits.
    const lines: string[] = [];
    const log = console.log;
    console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
    try {
      await ledgerCommand().parseAsync(
        ["show", "--db", join(cluster.dir, "v0.db"), "--limit", "100"],
        { from: "user" },
      );
    } finally {
      console.log = log;
    }
    const shown = lines.join("\n");
    assert(/REJECT dev-7 .*reasons: cosine_too_low/.test(shown), shown.slice(-3000));
    assert(/REFUSE dev-9 +wrong_shape/.test(shown), shown.slice(-3000));
    assert(/^ +dev-7 +quarantined +0\.\d+ +0 /m.test(shown), shown.slice(-1500));
    assert(/devices after 3 committed round result/.test(shown), shown.slice(-1500));

    // A restarted validator rebuilds the same state by replaying its committed blocks.
    await cluster.crash(2);
    await cluster.startNode(2);
    assertEquals(cluster.apps[2]!.stateRoot(), r3.stateRoot);
    assertEquals(cluster.apps[2]!.devices(), summary);
  } finally {
    await cluster.stop();
  }
});
