// Safety checks run on every commit any honest replica emits, and the liveness predicate.
import { requestKey } from "../pbft/certificates.ts";
import { commitCertificateReason } from "../pbft/certificates.ts";
import { type Quorum, quorumOf } from "../pbft/quorum.ts";
import type { CommitOutput } from "../pbft/types.ts";
import { decodeBlock } from "./app.ts";
import type { FakeSignatureScheme } from "./fake_signatures.ts";

export class SafetyViolation extends Error {
  override name = "SafetyViolation";
}

export class SafetyChecker {
  /** First digest any honest replica committed at each height. */
  private readonly committedAt = new Map<number, { blockHash: string; replica: number }>();
  private readonly tipOf = new Map<number, { height: number; blockHash: string }>();
  readonly executedRequests = new Map<number, Set<string>>();
  commitsChecked = 0;

  constructor(
    private readonly replicaCount: number,
    private readonly chainId: string,
    private readonly genesisBlockHash: string,
    private readonly signatures: FakeSignatureScheme,
    /** Test only: skip certificate checks to prove the fork check works on its own. */
    private readonly checkCertificates = true,
  ) {}

  /** Throws SafetyViolation; the quorum used is always the sound one, whatever replicas use. */
  onCommit(replica: number, commit: CommitOutput): void {
    this.commitsChecked++;
    const quorum = quorumOf(this.replicaCount);
    const where = `replica ${replica} height ${commit.height}`;
    const tip = this.tipOf.get(replica) ?? { height: 0, blockHash: this.genesisBlockHash };
    if (commit.height !== tip.height + 1) {
      throw new SafetyViolation(`${where}: committed out of order after ${tip.height}`);
    }
    const block = decodeBlock(commit.payload);
    if (!block || block.p !== tip.blockHash || block.h !== commit.height) {
      throw new SafetyViolation(`${where}: block does not extend the replica's chain`);
    }
    this.checkFork(replica, commit);
    if (this.checkCertificates) this.checkCertificate(where, commit, quorum);
    this.tipOf.set(replica, { height: commit.height, blockHash: commit.blockHash });
    let executed = this.executedRequests.get(replica);
    if (!executed) {
      executed = new Set();
      this.executedRequests.set(replica, executed);
    }
    for (const id of commit.freshRequestIds) {
      const key = requestKey(id);
      if (executed.has(key)) throw new SafetyViolation(`${where}: request ${key} executed twice`);
      executed.add(key);
    }
  }

  private checkCertificate(where: string, commit: CommitOutput, quorum: Quorum): void {
    const certificateReason = commitCertificateReason(commit.certificate, commit, {
      chainId: this.chainId,
      quorum,
    });
    if (certificateReason) {
      throw new SafetyViolation(`${where}: invalid commit certificate: ${certificateReason}`);
    }
    if (!commit.certificate.every((message) => this.signatures.verify(message))) {
      throw new SafetyViolation(`${where}: commit certificate has a bad signature`);
    }
  }

  private checkFork(replica: number, commit: CommitOutput): void {
    const first = this.committedAt.get(commit.height);
    if (first && first.blockHash !== commit.blockHash) {
      throw new SafetyViolation(
        `FORK at height ${commit.height}: replica ${first.replica} committed ${
          first.blockHash.slice(0, 12)
        }, replica ${replica} committed ${commit.blockHash.slice(0, 12)}`,
      );
    }
    if (!first) this.committedAt.set(commit.height, { blockHash: commit.blockHash, replica });
  }

  executedCount(replica: number, key: string): boolean {
    return this.executedRequests.get(replica)?.has(key) ?? false;
  }

  tipHeight(replica: number): number {
    return this.tipOf.get(replica)?.height ?? 0;
  }
}
