// The new primary's choice of what to re-propose (§4.4), as a pure function that backups rerun
// to check the primary's new-view message.
//
// Castro & Liskov fill a gap in (min-s, max-s] with a null request. Blocks here are hash-chained,
// so a block cannot be re-proposed without its parent. Replicas prepare height n only after they
// have prepared n-1 themselves in the same view (or executed it), so a committed height has
// certificates for all heights below it in every quorum of view-change messages. Hence anything
// after the first gap is uncommitted everywhere and is safely dropped instead of null-filled.
import type { PreparedCertificate, Reproposal, StableCheckpoint, ViewChange } from "./types.ts";

export interface NewViewPlan {
  /** min-s: the highest stable checkpoint proven in the view-change set. */
  readonly stable: StableCheckpoint;
  /** Chosen certificates for heights stable+1 .. stable+k, contiguous. */
  readonly certificates: readonly PreparedCertificate[];
  readonly reproposals: readonly Reproposal[];
  /** First height the new primary proposes fresh requests at. */
  readonly nextFreshHeight: number;
}

export function planNewView(viewChanges: readonly ViewChange[]): NewViewPlan {
  let best = viewChanges[0];
  for (const viewChange of viewChanges) {
    if (viewChange.stableHeight > best.stableHeight) best = viewChange;
  }
  const stable: StableCheckpoint = {
    height: best.stableHeight,
    blockHash: best.stableBlockHash,
    proof: best.checkpointProof,
  };
  // Highest-view certificate per height; same-view certificates agree on the digest (§4.2).
  const chosen = new Map<number, PreparedCertificate>();
  for (const viewChange of viewChanges) {
    for (const certificate of viewChange.prepared) {
      const { height, view } = certificate.prePrepare;
      if (height <= stable.height) continue;
      const current = chosen.get(height);
      if (!current || view > current.prePrepare.view) chosen.set(height, certificate);
    }
  }
  // Stop at the first gap or at a certificate that does not extend the previous one: neither it
  // nor anything above it can have committed.
  const certificates: PreparedCertificate[] = [];
  let parentBlockHash = stable.blockHash;
  for (let height = stable.height + 1; chosen.has(height); height++) {
    const certificate = chosen.get(height)!;
    if (certificate.prePrepare.parentBlockHash !== parentBlockHash) break;
    certificates.push(certificate);
    parentBlockHash = certificate.prePrepare.blockHash;
  }
  return {
    stable,
    certificates,
    reproposals: certificates.map(({ prePrepare }) => ({
      height: prePrepare.height,
      blockHash: prePrepare.blockHash,
    })),
    nextFreshHeight: stable.height + certificates.length + 1,
  };
}

export function sameReproposals(a: readonly Reproposal[], b: readonly Reproposal[]): boolean {
  return a.length === b.length &&
    a.every((entry, i) => entry.height === b[i].height && entry.blockHash === b[i].blockHash);
}
