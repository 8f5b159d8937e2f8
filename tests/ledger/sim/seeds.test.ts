// The CI run of the deterministic simulator: 2,000 seeds, each a random mix of 4 or 7 replicas,
// f Byzantine replicas, message loss, duplication, reordering, delay, partitions and
// crash-restarts. Safety is checked after every commit; liveness after the faults heal
// (Castro & Liskov §4.5.1 safety, §4.5.2 liveness).
import { assert, assertEquals } from "../../assert.ts";
import { formatFailure } from "../../../ledger/sim/cli.ts";
import { runSimulation } from "../../../ledger/sim/simulator.ts";

const FIRST_SEED = 1;
const SEED_COUNT = 2000;

Deno.test(`§4.5 simulation: ${SEED_COUNT} seeds keep safety and liveness under faults`, () => {
  const failures: string[] = [];
  const replicaCounts = new Map<number, number>();
  let viewChanges = 0, forgedRejected = 0, restarts = 0, transfers = 0;
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEED_COUNT; seed++) {
    const result = runSimulation({ seed });
    const n = result.scenario.replicaCount;
    replicaCounts.set(n, (replicaCounts.get(n) ?? 0) + 1);
    viewChanges += result.stats.viewChanges;
    forgedRejected += result.stats.forgedRejected;
    restarts += result.stats.restarts;
    transfers += result.stats.transfers;
    if (result.failure) failures.push(formatFailure(result));
    if (failures.length >= 3) break;
  }
  assertEquals(failures.length, 0, `\n${failures.join("\n\n")}\n`);
  // The run really exercised the fault model.
  assert((replicaCounts.get(4) ?? 0) > SEED_COUNT / 3, "too few 4-replica seeds");
  assert((replicaCounts.get(7) ?? 0) > SEED_COUNT / 3, "too few 7-replica seeds");
  assert(viewChanges > SEED_COUNT, `only ${viewChanges} view changes`);
  assert(forgedRejected > 0 && restarts > 0 && transfers > 0, "a fault kind never happened");
});

Deno.test("simulation: one seed replays identically", () => {
  const first = runSimulation({ seed: 4242 });
  const second = runSimulation({ seed: 4242 });
  assertEquals(second.stats, first.stats);
  assertEquals(second.trace, first.trace);
  assertEquals(second.description, first.description);
});
