// The round result does not depend on one validator: the primary crashes right after the round
// closes, the other three elect a new primary and commit a round_result (every validator submits
// one and resubmits until one is committed); the crashed validator restarts, replays its blocks,
// catches up by state transfer and reaches the same state; the next round runs with all four.
import { assert, assertEquals } from "../../assert.ts";
import { encodeWeights, modelHash } from "../../../ledger/app/blob.ts";
import { createRng } from "../../../ledger/app/prng.ts";
import { signFlip } from "../../../ledger/app/attacks.ts";
import { verifyLedger } from "../../../ledger/verify.ts";
import { fetchModelBytes, waitForRoundResult } from "../../../roles/ledger_link/certified.ts";
import { UpdateSubmitter } from "../../../roles/ledger_link/update_submitter.ts";
import { UpdateCluster } from "./update_cluster.ts";

const P = 32;

Deno.test("a crashed primary after round_close: the others commit the result; it restarts and agrees", async () => {
  const rng = createRng(3);
  let global = Float32Array.from({ length: P }, () => rng.normal() * 0.1);
  const step = Float32Array.from({ length: P }, () => rng.normal() * 0.05);
  const cluster = await UpdateCluster.start({ devices: 6, initialModelSha256: modelHash(global) });
  try {
    const edge = cluster.client(cluster.edgeKey);
    const submitters = cluster.deviceKeys.map((k) =>
      new UpdateSubmitter({ client: cluster.client(k) })
    );
    const round = async (r: number, beforeClose?: () => Promise<void>) => {
      await edge.putBlob(encodeWeights(global));
      await edge.waitForTx(
        (await edge.submit("round_open", { round: r, global_model_sha256: modelHash(global) })).id,
      );
      const honest = submitters.map(() =>
        global.map((g, j) => g + (0.8 + 0.4 * rng.next()) * step[j] + 0.003 * rng.normal())
      );
      await Promise.all(submitters.map((s, d) =>
        s.submit({
          round: r - 1,
          weights: d === 5 ? signFlip(global, honest[0]) : honest[d],
          samples: 40,
        })
      ));
      const { height } = await edge.waitForTx((await edge.submit("round_close", { round: r })).id);
      await beforeClose?.();
      const result = await waitForRoundResult(edge, r, height + 1, {
        timeoutMs: 45_000,
        fetch: cluster.fetch,
      });
      // fetchModelBytes waits (bounded) for the validators to store the aggregate they commit.
      global = Float32Array.from(await fetchModelBytes(edge, result.modelSha256, global.length));
      assertEquals(modelHash(global), result.modelSha256);
      return result;
    };

    const primary = cluster.nodes[0]!.status().primary.index;
    const first = await round(1, () => cluster.crash(primary));
    assertEquals(
      first.record.updates.filter((u) => !u.accepted).map((u) => u.deviceId),
      ["dev-5"],
    );
    await cluster.waitForRound(1, 45_000);

    await cluster.startNode(primary);
    await cluster.waitFor(
      "the restarted validator applies round 1",
      () => cluster.apps[primary]!.state?.lastClosedRound === 1,
      45_000,
    );
    assertEquals(cluster.apps[primary]!.stateRoot(), first.record.stateRoot);

    const second = await round(2);
    await cluster.waitForRound(2, 45_000);
    await Promise.all(cluster.liveApps().map((a) => a.idle()));
    assertEquals(new Set(cluster.liveApps().map((a) => a.stateRoot())).size, 1);
    assertEquals(cluster.apps[primary]!.stateRoot(), second.record.stateRoot);
    await cluster.halt();
    for (const store of cluster.stores) {
      const report = await verifyLedger(store!, cluster.genesis);
      assert(report.ok, JSON.stringify(report));
    }
  } finally {
    await cluster.stop();
  }
});
