// Castro & Liskov (OSDI '99) §4.1/§4.5: n = 3f+1 replicas, quorums of 2f+1 intersect in at least
// one correct replica, f+1 includes at least one correct replica.
import { assert, assertEquals, assertThrows } from "../../assert.ts";
import { assertQuorumSound, primaryOf, quorumOf } from "../../../ledger/pbft/quorum.ts";
import { InvariantViolation } from "../../../ledger/pbft/assert.ts";

Deno.test("§4.1 quorum arithmetic: f = floor((n-1)/3), quorum 2f+1, weak quorum f+1", () => {
  assertEquals(quorumOf(4), {
    replicaCount: 4,
    faultsTolerated: 1,
    quorumSize: 3,
    weakQuorumSize: 2,
  });
  assertEquals(quorumOf(7), {
    replicaCount: 7,
    faultsTolerated: 2,
    quorumSize: 5,
    weakQuorumSize: 3,
  });
  assertEquals(quorumOf(1), {
    replicaCount: 1,
    faultsTolerated: 0,
    quorumSize: 1,
    weakQuorumSize: 1,
  });
  for (let n = 1; n <= 100; n += 3) {
    const quorum = quorumOf(n);
    // Any two quorums share a correct replica: 2q - n >= f + 1.
    assert(2 * quorum.quorumSize - n >= quorum.faultsTolerated + 1, `n=${n}`);
    assert(n - quorum.faultsTolerated >= quorum.quorumSize, `n=${n}: correct replicas suffice`);
  }
});

Deno.test("§4.1 unsound configurations are refused by assertion", () => {
  assertThrows(() => quorumOf(3), InvariantViolation);
  assertThrows(() => quorumOf(103), InvariantViolation);
  // 2f+1 = 3 out of 6 could be two disjoint quorums: only n = 3f+1 is accepted.
  assertThrows(() => quorumOf(6), InvariantViolation, "not 3f+1");
  assertThrows(() => quorumOf(4.5), InvariantViolation);
  assertThrows(
    () =>
      assertQuorumSound({ replicaCount: 4, faultsTolerated: 1, quorumSize: 2, weakQuorumSize: 2 }),
    InvariantViolation,
  );
});

Deno.test("§4.1 the primary of view v is v mod n", () => {
  assertEquals([0, 1, 2, 3, 4, 5].map((view) => primaryOf(view, 4)), [0, 1, 2, 3, 0, 1]);
});
