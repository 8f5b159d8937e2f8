// Replica configuration: identity, timing and every limit the core enforces.
import { invariant } from "./assert.ts";
import { quorumOf } from "./quorum.ts";

export interface ReplicaConfig {
  readonly chainId: string;
  readonly replicaCount: number;
  readonly self: number;
  /** Hash of block 0; the first proposal builds on it. */
  readonly genesisBlockHash: string;
  /** K: a checkpoint every K heights (§4.3). */
  readonly checkpointIntervalHeights: number;
  /** L: heights accepted above the stable checkpoint (high water mark = low + L), a multiple of K. */
  readonly watermarkWindowHeights: number;
  /** Heights the primary may propose beyond its last executed height (1 = wait for each commit). */
  readonly proposalPipelineDepthMax: number;
  readonly batchSizeMax: number;
  readonly batchTimeoutMs: number;
  readonly pendingRequestsMax: number;
  readonly requestBytesMax: number;
  readonly clientIdLengthMax: number;
  /** Clients whose last executed nonce is remembered (deduplication table). */
  readonly clientsTrackedMax: number;
  readonly payloadBytesMax: number;
  /** Estimated bytes of a view-change message's proofs (payloads + 256 per embedded message). */
  readonly viewChangeProofBytesMax: number;
  readonly futureMessagesPerPeerMax: number;
  /** Views above the current one for which messages are buffered or view-changes kept. */
  readonly viewLookaheadMax: number;
  readonly viewChangeTimeoutMs: number;
  /** Cap on the exponential back-off of consecutive view changes (timeout * 2^k). */
  readonly viewChangeBackoffExponentMax: number;
  readonly statusIntervalMs: number;
  /** Committed entries kept in memory to serve state transfer to lagging peers. */
  readonly retainedCommitsMax: number;
  /** Entries sent in answer to one status message. */
  readonly transferBatchHeightsMax: number;
  /** Outstanding application validations (bounds the pending-validation table). */
  readonly validationsInFlightMax: number;
}

export const VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES = 256;

export function defaultConfig(
  overrides: Partial<ReplicaConfig> & Pick<ReplicaConfig, "replicaCount" | "self">,
): ReplicaConfig {
  return validateConfig({
    chainId: "iomt-sfl",
    genesisBlockHash: "0".repeat(64),
    checkpointIntervalHeights: 4,
    watermarkWindowHeights: 8,
    proposalPipelineDepthMax: 2,
    batchSizeMax: 4,
    batchTimeoutMs: 5,
    pendingRequestsMax: 256,
    requestBytesMax: 64 * 1024,
    clientIdLengthMax: 128,
    clientsTrackedMax: 4096,
    payloadBytesMax: 1024 * 1024,
    viewChangeProofBytesMax: 16 * 1024 * 1024,
    futureMessagesPerPeerMax: 64,
    viewLookaheadMax: 8,
    viewChangeTimeoutMs: 100,
    viewChangeBackoffExponentMax: 3,
    statusIntervalMs: 40,
    retainedCommitsMax: 32,
    transferBatchHeightsMax: 8,
    validationsInFlightMax: 64,
    ...overrides,
  });
}

export function validateConfig(config: ReplicaConfig): ReplicaConfig {
  quorumOf(config.replicaCount);
  const positive = (name: keyof ReplicaConfig) => {
    const value = config[name];
    invariant(
      typeof value === "number" && Number.isInteger(value) && value > 0,
      `config.${name} must be a positive integer, got ${value}`,
    );
  };
  for (
    const name of [
      "checkpointIntervalHeights",
      "watermarkWindowHeights",
      "proposalPipelineDepthMax",
      "batchSizeMax",
      "batchTimeoutMs",
      "pendingRequestsMax",
      "requestBytesMax",
      "clientIdLengthMax",
      "clientsTrackedMax",
      "payloadBytesMax",
      "viewChangeProofBytesMax",
      "futureMessagesPerPeerMax",
      "viewLookaheadMax",
      "viewChangeTimeoutMs",
      "statusIntervalMs",
      "retainedCommitsMax",
      "transferBatchHeightsMax",
      "validationsInFlightMax",
    ] as const
  ) positive(name);
  invariant(
    Number.isInteger(config.self) && config.self >= 0 && config.self < config.replicaCount,
    `config.self ${config.self} is not a replica index`,
  );
  invariant(config.chainId.length > 0, "config.chainId is empty");
  invariant(/^[0-9a-f]{64}$/.test(config.genesisBlockHash), "genesis hash must be 64 hex chars");
  invariant(
    config.watermarkWindowHeights % config.checkpointIntervalHeights === 0,
    "watermark window must be a multiple of the checkpoint interval",
  );
  invariant(
    config.watermarkWindowHeights >= 2 * config.checkpointIntervalHeights,
    "watermark window must hold two checkpoint intervals so progress continues while one settles",
  );
  invariant(
    config.proposalPipelineDepthMax <= config.watermarkWindowHeights,
    "pipeline deeper than the watermark window",
  );
  invariant(
    config.retainedCommitsMax >= config.watermarkWindowHeights + config.checkpointIntervalHeights,
    "retained commits must cover the window so parents of every slot stay known",
  );
  invariant(
    config.viewChangeBackoffExponentMax >= 0 && config.viewChangeBackoffExponentMax <= 16,
    "view-change back-off exponent outside [0, 16]",
  );
  const ownViewChangeBytesMax = VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES * (config.replicaCount + 1) +
    config.watermarkWindowHeights *
      (config.payloadBytesMax + VIEW_CHANGE_MESSAGE_OVERHEAD_BYTES * (config.replicaCount + 1));
  invariant(
    config.viewChangeProofBytesMax >= ownViewChangeBytesMax,
    `viewChangeProofBytesMax must hold a full window of certificates (${ownViewChangeBytesMax})`,
  );
  return config;
}
