// Quorum arithmetic for n = 3f+1 validators, written once (Castro & Liskov §4.1: a quorum of 2f+1
// intersects any other quorum in at least one correct replica; f+1 contains at least one).
import { invariant } from "./assert.ts";

export interface Quorum {
  /** Number of validators n. */
  readonly replicaCount: number;
  /** Byzantine validators tolerated: floor((n-1)/3). */
  readonly faultsTolerated: number;
  /** 2f+1: prepared/committed certificates, stable checkpoints, view-change sets. */
  readonly quorumSize: number;
  /** f+1: at least one correct replica vouches (joining a view change). */
  readonly weakQuorumSize: number;
}

/** n = 1 (f = 0) is a single-validator development chain; the ledger format allows up to 100. */
export const REPLICA_COUNT_MIN = 1;
export const REPLICA_COUNT_MAX = 100;

export function quorumOf(replicaCount: number): Quorum {
  invariant(Number.isInteger(replicaCount), `replica count must be an integer: ${replicaCount}`);
  invariant(
    replicaCount >= REPLICA_COUNT_MIN && replicaCount <= REPLICA_COUNT_MAX,
    `replica count ${replicaCount} outside [${REPLICA_COUNT_MIN}, ${REPLICA_COUNT_MAX}]`,
  );
  const faultsTolerated = Math.floor((replicaCount - 1) / 3);
  // With n > 3f+1, 2f+1 quorums need not intersect (n=6: two disjoint sets of 3); extra
  // validators add no fault tolerance, so validator sets are exactly 3f+1.
  invariant(
    replicaCount === 3 * faultsTolerated + 1,
    `replica count ${replicaCount} is not 3f+1 (use 4, 7, 10, ...)`,
  );
  const quorum = {
    replicaCount,
    faultsTolerated,
    quorumSize: 2 * faultsTolerated + 1,
    weakQuorumSize: faultsTolerated + 1,
  };
  assertQuorumSound(quorum);
  return quorum;
}

/** The two properties PBFT's safety and liveness proofs rely on. */
export function assertQuorumSound(quorum: Quorum): void {
  const { replicaCount: n, faultsTolerated: f, quorumSize: q } = quorum;
  invariant(n >= 3 * f + 1, `n=${n} cannot tolerate f=${f}`);
  // Two quorums share more than f replicas, so at least one correct replica.
  invariant(
    2 * q - n >= f + 1,
    `quorums of ${q} out of ${n} do not intersect in a correct replica`,
  );
  // Correct replicas alone can form a quorum.
  invariant(n - f >= q, `n-f=${n - f} correct replicas cannot form a quorum of ${q}`);
}

/** Deliberately unsound quorum, only for proving that the simulator's checker finds forks. */
export function unsoundQuorumForTesting(replicaCount: number, quorumSize: number): Quorum {
  const sound = quorumOf(replicaCount);
  return { ...sound, quorumSize };
}

/** Primary of a view: round-robin (§4.1). */
export function primaryOf(view: number, replicaCount: number): number {
  return view % replicaCount;
}
