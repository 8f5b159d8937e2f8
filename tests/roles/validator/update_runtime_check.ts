// Cross-runtime check of update consensus: one round on 4 in-process validators (real crypto,
// libSQL files), 6 honest devices, a sign-flipper and a booster; prints the decisions and the
// state root, which must be identical on Deno and Bun (pure JS arithmetic is bit-exact).
//   bun run tests/roles/validator/update_runtime_check.ts
//   deno run --allow-all tests/roles/validator/update_runtime_check.ts
import { encodeWeights, modelHash } from "../../../ledger/app/blob.ts";
import { scale, signFlip } from "../../../ledger/app/attacks.ts";
import { createRng } from "../../../ledger/app/prng.ts";
import { waitForRoundResult } from "../../../roles/ledger_link/certified.ts";
import { UpdateSubmitter } from "../../../roles/ledger_link/update_submitter.ts";
import { configureLogging } from "../../../util/log.ts";
import { UpdateCluster } from "./update_cluster.ts";

configureLogging({ level: "warn" });
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const P = 256;
const rng = createRng(5);
const global = Float32Array.from({ length: P }, () => rng.normal() * 0.1);
const step = Float32Array.from({ length: P }, () => rng.normal() * 0.05);
const cluster = await UpdateCluster.start({ devices: 8, initialModelSha256: modelHash(global) });
try {
  const edge = cluster.client(cluster.edgeKey);
  await edge.putBlob(encodeWeights(global));
  await edge.waitForTx((await edge.submit("round_open", { round: 1 })).id);
  const honest = cluster.deviceKeys.map(() =>
    global.map((g, j) => g + (0.8 + 0.4 * rng.next()) * step[j] + 0.003 * rng.normal())
  );
  await Promise.all(cluster.deviceKeys.map((key, d) => {
    const weights = d === 6
      ? signFlip(global, honest[0])
      : d === 7
      ? scale(global, honest[1], 10)
      : honest[d];
    return new UpdateSubmitter({ client: cluster.client(key) }).submit({
      round: 0,
      weights,
      samples: 50 + d,
    });
  }));
  const { height } = await edge.waitForTx((await edge.submit("round_close", { round: 1 })).id);
  const result = await waitForRoundResult(edge, 1, height + 1, {
    timeoutMs: 30_000,
    fetch: cluster.fetch,
  });
  await cluster.waitForRound(1);
  const roots = new Set(cluster.liveApps().map((a) => a.stateRoot()));
  if (roots.size !== 1) throw new Error(`validators disagree: ${[...roots]}`);
  const decisions = result.record.updates.map((u) =>
    `${u.deviceId}:${u.accepted ? "accept" : u.reasons.join("+")}`
  );
  console.log(`${runtime}: update consensus ok`);
  console.log(
    JSON.stringify({ stateRoot: result.record.stateRoot, model: result.modelSha256, decisions }),
  );
} finally {
  await cluster.halt();
  await cluster.stop();
}
