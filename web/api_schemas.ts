// The shapes the API speaks. Each is a schema (validation + OpenAPI component) and, through
// `Infer`, the TypeScript type that `NodeView` uses, so the view, the validator and the document
// share one definition.
import {
  array,
  boolean,
  type Infer,
  integer,
  literal,
  named,
  nullable,
  number,
  object,
  optional,
  record,
  string,
  unknownValue,
} from "./schema.ts";

const id = (description: string) =>
  string({ minLength: 1, maxLength: 128, pattern: /^[A-Za-z0-9._:-]+$/, description });
const isoTime = (description: string) =>
  string({ maxLength: 40, format: "date-time", description });
const ratio = (description: string) => number({ minimum: 0, maximum: 1, description });
const hex = (description: string) =>
  string({ maxLength: 128, pattern: /^[0-9a-f]*$/, description });

export const ROLES = ["run", "device", "edge", "validator"] as const;
export const MODES = ["splitfed", "fedavg"] as const;

export const ErrorBody = named(
  "Error",
  object({
    error: object({
      code: string({
        maxLength: 64,
        description: "Stable machine-readable code, e.g. `invalid_body`.",
      }),
      message: string({ maxLength: 1000, description: "One sentence for a person." }),
      details: unknownValue("Structured context, e.g. `{issues: [{path, message}]}`; may be null."),
    }),
  }),
);

export const Peer = named(
  "Peer",
  object({
    id: id("Peer node id."),
    role: literal(ROLES),
    address: optional(string({ maxLength: 256 })),
    connected: boolean(),
    lastSeen: optional(isoTime("Last message from this peer.")),
  }),
);

export const Status = named(
  "Status",
  object({
    nodeId: id("This node's id."),
    role: literal(ROLES),
    version: string({ maxLength: 64 }),
    startedAt: isoTime("When this process started."),
    uptimeSeconds: number({ minimum: 0 }),
    peers: array(Peer, { maxItems: 1024 }),
    round: optional(integer({ minimum: 0, description: "Latest round this node knows of." })),
    roundState: optional(literal(["idle", "running", "stopping", "paused"])),
    ledgerHeight: optional(integer({ minimum: 0 })),
    mode: optional(literal(MODES)),
    compare: optional(boolean("True when the run also trains the FedAvg baseline (`--compare`).")),
  }),
);

export const Metrics = named(
  "RoundMetrics",
  object({
    accuracy: ratio("Share of flows classified correctly."),
    f1: ratio("Macro F1 over classes."),
    precision: optional(ratio("Macro precision.")),
    recall: optional(ratio("Macro recall.")),
    fpr: ratio("False positive rate: benign flows flagged as attacks."),
    loss: number({ minimum: 0, description: "Mean validation loss." }),
  }),
);

export const Confusion = named(
  "ConfusionMatrix",
  object({
    labels: array(string({ maxLength: 64 }), { minItems: 1, maxItems: 64 }),
    matrix: array(array(integer({ minimum: 0 }), { maxItems: 64 }), {
      maxItems: 64,
      description: "matrix[actual][predicted] counts, in `labels` order.",
    }),
  }),
);

export const RoundSummary = named(
  "RoundSummary",
  object({
    round: integer({ minimum: 0 }),
    mode: literal(MODES),
    startedAt: isoTime("Round start."),
    finishedAt: optional(isoTime("Round end; absent while running.")),
    metrics: Metrics,
    participants: integer({ minimum: 0, description: "Devices whose update was aggregated." }),
    rejectedUpdates: integer({ minimum: 0, description: "Updates the validators rejected." }),
    commitLatencyMs: optional(number({ minimum: 0 })),
    blockHeight: optional(integer({ minimum: 0, description: "Block that certified this round." })),
  }),
);

export const RoundDetail = named(
  "RoundDetail",
  object({ ...RoundSummary.shape, confusion: optional(Confusion) }),
);

export const DEVICE_STATES = ["active", "quarantined", "offline"] as const;
export const Device = named(
  "Device",
  object({
    id: id("Device id."),
    edge: optional(id("Edge this device trains with.")),
    status: literal(DEVICE_STATES),
    reputation: ratio("Validator-maintained reputation, 0 (untrusted) to 1."),
    rewards: number({
      minimum: 0,
      description: "Accumulated reward points (each ledger round pays out one point in total).",
    }),
    flags: array(string({ maxLength: 64 }), {
      maxItems: 32,
      description: "E.g. `outlier`, `stale`, `quarantined`, `label_flip_suspect`.",
    }),
    lastSeen: isoTime("Last update or heartbeat."),
    updatesAccepted: integer({ minimum: 0 }),
    updatesRejected: integer({ minimum: 0 }),
  }),
);

export const Verification = named(
  "Verification",
  object({
    ok: boolean("True when every check passed."),
    checks: array(
      object({
        name: string({ maxLength: 64 }),
        ok: boolean(),
        detail: optional(string({ maxLength: 500 })),
      }),
      { maxItems: 32 },
    ),
  }),
);

export const BlockSummary = named(
  "BlockSummary",
  object({
    height: integer({ minimum: 0 }),
    hash: hex("Block hash, hex."),
    prevHash: hex("Previous block hash, hex."),
    timestamp: isoTime("Commit time."),
    proposer: id("Primary that proposed the block."),
    view: integer({ minimum: 0 }),
    txCount: integer({ minimum: 0 }),
    verified: boolean("Result of re-verifying hash chain, signatures and quorum certificate."),
  }),
);

/** The chain's transaction types at the time of writing; the API accepts any, including `x.*` extensions. */
export const KNOWN_TX_TYPES = [
  "model_update",
  "edge_update",
  "round_open",
  "round_close",
  "round_result",
  "quarantine",
  "readmit",
] as const;
export const Transaction = named(
  "Transaction",
  object({
    id: hex("Transaction id (hash), hex."),
    type: string({
      minLength: 1,
      maxLength: 64,
      pattern: /^[a-z][a-z0-9_.]*$/,
      description: `Transaction type, e.g. ${
        KNOWN_TX_TYPES.map((t) => "`" + t + "`").join(", ")
      } or an \`x.*\` extension.`,
    }),
    height: integer({ minimum: 0, description: "Block that holds it." }),
    round: optional(integer({ minimum: 0 })),
    from: id("Submitting node."),
    summary: string({ maxLength: 500, description: "One line for the explorer." }),
    payload: optional(
      unknownValue("Type-specific fields (small; weights are referenced by hash)."),
    ),
  }),
);

export const CommitCertificate = named(
  "CommitCertificate",
  object({
    view: integer({ minimum: 0, description: "View of the commit messages." }),
    blockHash: hex("Hash the validators signed."),
    signers: array(id("Validator that signed the commit."), { maxItems: 256 }),
    quorum: integer({ minimum: 1, description: "Signatures required (2f+1)." }),
  }),
);

export const Certificate = named(
  "ModelCertificate",
  object({
    round: integer({ minimum: 0 }),
    height: integer({ minimum: 0 }),
    modelHash: hex("SHA-256 of the global model bytes."),
    signers: array(id("Validator id."), { maxItems: 256 }),
    quorum: integer({ minimum: 1, description: "Signatures required (2f+1)." }),
    issuedAt: isoTime("Commit time of the certifying block."),
  }, {
    description: "A global model certified by the commit certificate of block `height` " +
      "(the block holding the round's result). Verify `modelHash` against the downloaded bytes.",
  }),
);

export const BlockDetail = named(
  "BlockDetail",
  object({
    ...BlockSummary.shape,
    verification: Verification,
    transactions: array(Transaction, { maxItems: 10_000 }),
    commit: optional(CommitCertificate),
    modelCertificate: optional(Certificate),
  }),
);

export const ValidatorInfo = named(
  "ValidatorInfo",
  object({
    id: id("Validator id."),
    healthy: boolean(),
    isPrimary: boolean(),
    view: integer({ minimum: 0 }),
    height: integer({ minimum: 0 }),
    lastSeen: optional(isoTime("Last message from it.")),
  }),
);

export const Validators = named(
  "ValidatorsState",
  object({
    view: integer({ minimum: 0 }),
    height: integer({ minimum: 0 }),
    f: integer({ minimum: 0, description: "Byzantine faults tolerated." }),
    primary: id("Current primary."),
    checkpoint: object({ height: integer({ minimum: 0 }), digest: hex("Checkpoint digest.") }),
    validators: array(ValidatorInfo, { maxItems: 256 }),
    rejectedMessages: optional(
      record(integer({ minimum: 0 }), { maxProperties: 64, description: "Counts by reason." }),
    ),
  }),
);

export const ModelInfo = named(
  "GlobalModel",
  object({
    round: integer({ minimum: 0 }),
    sha256: hex("SHA-256 of the bytes served at `/api/v1/models/global/weights`."),
    sizeBytes: integer({ minimum: 0 }),
    format: string({ maxLength: 64, description: "E.g. `tfjs-weights-v1`." }),
    certificate: nullable(Certificate),
  }),
);

export const FEATURES_MAX = 256;
export const FLOWS_MAX = 512;
export const Flow = named(
  "Flow",
  object({
    id: optional(string({ maxLength: 128 })),
    features: array(number(), {
      minItems: 1,
      maxItems: FEATURES_MAX,
      description: "Preprocessed feature vector.",
    }),
  }),
);
export const DetectRequest = named(
  "DetectRequest",
  object({ flows: array(Flow, { minItems: 1, maxItems: FLOWS_MAX }) }),
);
export const Detection = named(
  "Detection",
  object({
    id: optional(string({ maxLength: 128 })),
    label: string({ maxLength: 64, description: "Predicted class, e.g. `benign`, `spoofing`." }),
    attack: boolean(),
    score: ratio("Probability of the predicted class."),
  }),
);
export const DetectResponse = named(
  "DetectResponse",
  object({
    modelRound: nullable(integer({ minimum: 0 })),
    results: array(Detection, { maxItems: FLOWS_MAX }),
  }),
);

export const AdminResult = named(
  "AdminResult",
  object({ accepted: boolean(), message: string({ maxLength: 500 }) }),
);

export type Role = (typeof ROLES)[number];
export type Mode = (typeof MODES)[number];
export type Peer = Infer<typeof Peer>;
export type Status = Infer<typeof Status>;
export type RoundMetrics = Infer<typeof Metrics>;
export type ConfusionMatrix = Infer<typeof Confusion>;
export type RoundSummary = Infer<typeof RoundSummary>;
export type RoundDetail = Infer<typeof RoundDetail>;
export type Device = Infer<typeof Device>;
export type Verification = Infer<typeof Verification>;
export type BlockSummary = Infer<typeof BlockSummary>;
export type BlockDetail = Infer<typeof BlockDetail>;
export type Transaction = Infer<typeof Transaction>;
export type Certificate = Infer<typeof Certificate>;
export type CommitCertificate = Infer<typeof CommitCertificate>;
export type ValidatorInfo = Infer<typeof ValidatorInfo>;
export type ValidatorsState = Infer<typeof Validators>;
export type GlobalModelInfo = Infer<typeof ModelInfo>;
export type Flow = Infer<typeof Flow>;
export type Detection = Infer<typeof Detection>;
export type AdminResult = Infer<typeof AdminResult>;
