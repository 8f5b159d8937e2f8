// Public surface of the PBFT core.
export * from "./types.ts";
export {
  createReplica,
  type Replica,
  type ReplicaInspection,
  type ReplicaOptions,
} from "./replica.ts";
export { defaultConfig, type ReplicaConfig, validateConfig } from "./config.ts";
export {
  assertQuorumSound,
  primaryOf,
  type Quorum,
  quorumOf,
  unsoundQuorumForTesting,
} from "./quorum.ts";
export { canonicalJson, embeddedSignedMessages, signedContentOf } from "./signing.ts";
export {
  checkpointProofReason,
  commitCertificateReason,
  committedEntryReason,
  preparedCertificateReason,
  viewChangeReason,
} from "./certificates.ts";
export { planNewView } from "./new_view.ts";
export { InvariantViolation } from "./assert.ts";
