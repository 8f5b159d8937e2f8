// Structural checks of certificates and proofs. Signatures were verified by the shell; these
// check that the signed messages really form the claimed quorum. Each returns a rejection reason
// or null when valid.
import type { Quorum } from "./quorum.ts";
import { primaryOf } from "./quorum.ts";
import type {
  Checkpoint,
  Commit,
  CommittedEntry,
  PreparedCertificate,
  RequestId,
  ViewChange,
} from "./types.ts";
import { VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES } from "./config.ts";

export interface CertificateContext {
  readonly chainId: string;
  readonly quorum: Quorum;
  readonly payloadBytesMax: number;
  readonly batchSizeMax: number;
}

const HEX_64 = /^[0-9a-f]{64}$/;

export function isReplicaIndex(value: unknown, replicaCount: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 &&
    value < replicaCount;
}

export function isHeight(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export function isBlockHash(value: unknown): value is string {
  return typeof value === "string" && HEX_64.test(value);
}

export function requestKey(id: RequestId): string {
  return `${id.clientId.length}:${id.clientId}:${id.nonce}`;
}

export function requestIdsReason(
  ids: readonly RequestId[],
  batchSizeMax: number,
): string | null {
  if (!Array.isArray(ids)) return "request ids are not a list";
  if (ids.length > batchSizeMax) return `batch of ${ids.length} exceeds ${batchSizeMax}`;
  const seen = new Set<string>();
  for (const id of ids) {
    if (typeof id?.clientId !== "string" || !Number.isSafeInteger(id.nonce) || id.nonce < 0) {
      return "malformed request id";
    }
    const key = requestKey(id);
    if (seen.has(key)) return "request repeated within a batch";
    seen.add(key);
  }
  return null;
}

/** §4.2: pre-prepare from the view's primary and 2f prepares from distinct backups, all for the
 * same view, height and digest. */
export function preparedCertificateReason(
  certificate: PreparedCertificate,
  context: CertificateContext,
): string | null {
  const { prePrepare, prepares } = certificate;
  const { quorum, chainId } = context;
  if (prePrepare?.kind !== "pre-prepare") return "certificate lacks a pre-prepare";
  if (prePrepare.chainId !== chainId) return "certificate for another chain";
  if (!isHeight(prePrepare.height) || prePrepare.height === 0) return "bad certificate height";
  if (!isHeight(prePrepare.view)) return "bad certificate view";
  if (!isBlockHash(prePrepare.blockHash)) return "bad certificate block hash";
  if (!isBlockHash(prePrepare.parentBlockHash)) return "bad certificate parent hash";
  if (!(prePrepare.payload instanceof Uint8Array)) return "certificate payload is not bytes";
  if (prePrepare.payload.length > context.payloadBytesMax) return "certificate payload too large";
  const idsReason = requestIdsReason(prePrepare.requestIds, context.batchSizeMax);
  if (idsReason) return `certificate: ${idsReason}`;
  const primary = primaryOf(prePrepare.view, quorum.replicaCount);
  if (prePrepare.replica !== primary) return "certificate pre-prepare not from the view's primary";
  if (!Array.isArray(prepares)) return "certificate prepares are not a list";
  if (prepares.length > quorum.replicaCount) return "too many prepares in certificate";
  const signers = new Set<number>();
  for (const prepare of prepares) {
    if (prepare?.kind !== "prepare") return "certificate holds a non-prepare";
    if (
      prepare.chainId !== chainId || prepare.view !== prePrepare.view ||
      prepare.height !== prePrepare.height || prepare.blockHash !== prePrepare.blockHash
    ) return "certificate prepare does not match its pre-prepare";
    if (!isReplicaIndex(prepare.replica, quorum.replicaCount)) return "bad prepare signer";
    if (prepare.replica === primary) return "primary cannot prepare its own pre-prepare";
    signers.add(prepare.replica);
  }
  if (signers.size < quorum.quorumSize - 1) {
    return `certificate has ${signers.size} distinct prepares, needs ${quorum.quorumSize - 1}`;
  }
  return null;
}

/** 2f+1 commits from distinct replicas for one view, height and digest (§4.2 "committed"). */
export function commitCertificateReason(
  certificate: readonly Commit[],
  expected: { height: number; view: number; blockHash: string },
  context: Pick<CertificateContext, "chainId" | "quorum">,
): string | null {
  if (!Array.isArray(certificate)) return "commit certificate is not a list";
  if (certificate.length > context.quorum.replicaCount) return "too many commits in certificate";
  const signers = new Set<number>();
  for (const commit of certificate) {
    if (commit?.kind !== "commit") return "commit certificate holds a non-commit";
    if (
      commit.chainId !== context.chainId || commit.height !== expected.height ||
      commit.view !== expected.view || commit.blockHash !== expected.blockHash
    ) return "commit does not match the certified entry";
    if (!isReplicaIndex(commit.replica, context.quorum.replicaCount)) return "bad commit signer";
    signers.add(commit.replica);
  }
  if (signers.size < context.quorum.quorumSize) {
    return `commit certificate has ${signers.size} distinct signers, needs ${context.quorum.quorumSize}`;
  }
  return null;
}

export function committedEntryReason(
  entry: CommittedEntry,
  context: CertificateContext,
): string | null {
  if (!isHeight(entry?.height) || entry.height === 0) return "bad entry height";
  if (!isHeight(entry.view)) return "bad entry view";
  if (!isBlockHash(entry.blockHash)) return "bad entry block hash";
  if (!(entry.payload instanceof Uint8Array)) return "entry payload is not bytes";
  if (entry.payload.length > context.payloadBytesMax) return "entry payload too large";
  const idsReason = requestIdsReason(entry.requestIds, context.batchSizeMax);
  if (idsReason) return `entry: ${idsReason}`;
  return commitCertificateReason(entry.certificate, entry, context);
}

/** §4.3: 2f+1 checkpoint messages from distinct replicas with the same height and digest. */
export function checkpointProofReason(
  proof: readonly Checkpoint[],
  height: number,
  blockHash: string,
  context: Pick<CertificateContext, "chainId" | "quorum">,
): string | null {
  if (!Array.isArray(proof)) return "checkpoint proof is not a list";
  if (height === 0) return proof.length === 0 ? null : "genesis needs no checkpoint proof";
  if (proof.length > context.quorum.replicaCount) return "too many checkpoint messages";
  const signers = new Set<number>();
  for (const checkpoint of proof) {
    if (checkpoint?.kind !== "checkpoint") return "checkpoint proof holds a non-checkpoint";
    if (
      checkpoint.chainId !== context.chainId || checkpoint.height !== height ||
      checkpoint.blockHash !== blockHash
    ) return "checkpoint does not match the claimed stable checkpoint";
    if (!isReplicaIndex(checkpoint.replica, context.quorum.replicaCount)) {
      return "bad checkpoint signer";
    }
    signers.add(checkpoint.replica);
  }
  if (signers.size < context.quorum.quorumSize) {
    return `checkpoint proof has ${signers.size} distinct signers, needs ${context.quorum.quorumSize}`;
  }
  return null;
}

export function viewChangeProofBytes(viewChange: ViewChange): number {
  let bytes = VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES * (1 + viewChange.checkpointProof.length);
  for (const certificate of viewChange.prepared) {
    bytes += certificate.prePrepare.payload.length;
    bytes += VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES * (1 + certificate.prepares.length);
  }
  return bytes;
}

/** §4.4: a view-change message is valid when its checkpoint proof holds and every prepared
 * certificate is valid, lies in (stable, stable + L], predates the new view, one per height. */
export function viewChangeReason(
  viewChange: ViewChange,
  context: CertificateContext & {
    watermarkWindowHeights: number;
    checkpointIntervalHeights: number;
    viewChangeProofBytesMax: number;
  },
): string | null {
  if (viewChange?.kind !== "view-change") return "not a view-change";
  if (viewChange.chainId !== context.chainId) return "view-change for another chain";
  if (!isHeight(viewChange.newView) || viewChange.newView === 0) return "bad new view";
  if (!isReplicaIndex(viewChange.replica, context.quorum.replicaCount)) return "bad signer";
  if (!isHeight(viewChange.stableHeight)) return "bad stable height";
  if (viewChange.stableHeight % context.checkpointIntervalHeights !== 0) {
    return "stable height is not a checkpoint height";
  }
  if (!isBlockHash(viewChange.stableBlockHash)) return "bad stable block hash";
  if (!Array.isArray(viewChange.prepared) || !Array.isArray(viewChange.checkpointProof)) {
    return "view-change proofs are not lists";
  }
  if (viewChange.prepared.length > context.watermarkWindowHeights) {
    return "more prepared certificates than the watermark window";
  }
  if (viewChangeProofBytes(viewChange) > context.viewChangeProofBytesMax) {
    return "view-change proof too large";
  }
  const proofReason = checkpointProofReason(
    viewChange.checkpointProof,
    viewChange.stableHeight,
    viewChange.stableBlockHash,
    context,
  );
  if (proofReason) return proofReason;
  const heights = new Set<number>();
  for (const certificate of viewChange.prepared) {
    const reason = preparedCertificateReason(certificate, context);
    if (reason) return reason;
    const { height, view } = certificate.prePrepare;
    if (view >= viewChange.newView) return "prepared certificate not from an earlier view";
    if (
      height <= viewChange.stableHeight ||
      height > viewChange.stableHeight + context.watermarkWindowHeights
    ) return "prepared certificate outside the water marks";
    if (heights.has(height)) return "two prepared certificates for one height";
    heights.add(height);
  }
  return null;
}
