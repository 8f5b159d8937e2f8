// A checker that cannot fail is worthless: with a deliberately broken quorum (Castro & Liskov
// §4.5.1's intersection argument no longer holds) the simulator must find the violation.
import { assert } from "../../assert.ts";
import { runSimulation } from "../../../ledger/sim/simulator.ts";

Deno.test("§4.5.1 safety checker: an unsound quorum (2 of 4) lets an equivocating primary fork the chain, and the fork check alone catches it", () => {
  const forks = [];
  for (let seed = 1; seed <= 10; seed++) {
    const result = runSimulation({
      seed,
      unsafeQuorumSize: 2,
      skipCertificateChecks: true,
      overrides: { replicaCount: 4, byzantine: ["equivocate"], byzantinePrimary: true },
    });
    if (result.failure?.kind === "safety" && result.failure.message.includes("FORK")) {
      forks.push(seed);
    }
  }
  assert(forks.length > 0, "no fork found with a broken quorum: the checker is blind");
});

Deno.test("§4.5.1 safety checker: with 7 replicas an unsound quorum of 3 is also caught as a fork", () => {
  let found = false;
  for (let seed = 1; seed <= 10 && !found; seed++) {
    const result = runSimulation({
      seed,
      unsafeQuorumSize: 3,
      skipCertificateChecks: true,
      overrides: {
        replicaCount: 7,
        byzantine: ["equivocate", "equivocate"],
        byzantinePrimary: true,
      },
    });
    found = result.failure?.kind === "safety" && result.failure.message.includes("FORK");
  }
  assert(found, "no fork found with a broken quorum of 3 out of 7");
});

Deno.test("§4.2 safety checker: commit certificates smaller than 2f+1 are flagged on their own", () => {
  const result = runSimulation({ seed: 1, unsafeQuorumSize: 2, overrides: { replicaCount: 4 } });
  assert(result.failure?.kind === "safety", `expected a safety failure, got ${result.failure}`);
  assert(result.failure.message.includes("invalid commit certificate"), result.failure.message);
});
