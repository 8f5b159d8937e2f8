// Byzantine scenarios (Castro & Liskov OSDI '99 §4.5: safety with up to f faulty replicas, §4.4:
// a faulty primary is replaced). Each scenario is data: the behaviour forced on the f Byzantine
// replicas, whether the primary of view 0 is one of them, and evidence the run must show.
import { assert } from "../../assert.ts";
import { formatFailure } from "../../../ledger/sim/cli.ts";
import type { ByzantineBehaviour } from "../../../ledger/sim/scenario.ts";
import { runSimulation, type SimulationStats } from "../../../ledger/sim/simulator.ts";

interface ByzantineScenario {
  readonly name: string;
  readonly behaviour: ByzantineBehaviour;
  readonly byzantinePrimary: boolean;
  /** Evidence, summed over the scenario's seeds, that the behaviour really happened. */
  readonly evidence: (total: SimulationStats) => boolean;
}

const SCENARIOS: readonly ByzantineScenario[] = [
  {
    name: "§4.4 equivocating primary (different pre-prepares to different backups) is replaced",
    behaviour: "equivocate",
    byzantinePrimary: true,
    evidence: (total) => total.viewChanges > 0,
  },
  {
    name: "§4.4 silent primary is replaced",
    behaviour: "silent",
    byzantinePrimary: true,
    evidence: (total) => total.viewChanges > 0,
  },
  {
    name: "§4.2 conflicting prepare/commit/checkpoint votes cannot break agreement",
    behaviour: "conflicting-votes",
    byzantinePrimary: false,
    evidence: (total) => total.commits > 0,
  },
  {
    name: "§4.2 forged signatures are rejected at the shell boundary",
    behaviour: "forge-signatures",
    byzantinePrimary: false,
    evidence: (total) => total.forgedRejected > 0,
  },
  {
    name: "§4.2 replays of old, genuinely signed messages change nothing",
    behaviour: "replay",
    byzantinePrimary: false,
    evidence: (total) => total.commits > 0,
  },
];

const SEEDS_PER_SCENARIO = 40;

for (const scenario of SCENARIOS) {
  for (const replicaCount of [4, 7]) {
    Deno.test(`${scenario.name} (n=${replicaCount})`, () => {
      const total: SimulationStats = {
        ticks: 0,
        events: 0,
        messagesSent: 0,
        messagesDropped: 0,
        forgedRejected: 0,
        commits: 0,
        viewChanges: 0,
        restarts: 0,
        transfers: 0,
      };
      for (let seed = 1; seed <= SEEDS_PER_SCENARIO; seed++) {
        const result = runSimulation({
          seed: seed * 7919 + replicaCount,
          overrides: {
            replicaCount,
            byzantine: [scenario.behaviour, scenario.behaviour],
            byzantinePrimary: scenario.byzantinePrimary,
          },
        });
        if (result.failure) throw new Error(formatFailure(result));
        for (const key of Object.keys(total) as (keyof SimulationStats)[]) {
          total[key] += result.stats[key];
        }
      }
      assert(scenario.evidence(total), `no evidence of the behaviour: ${JSON.stringify(total)}`);
    });
  }
}
