// Library API of iomt-sfl: the pieces a researcher or another program can use without the CLI.
// Each concern is a namespace, mirroring the source folders.
export { buildProgram, VERSION } from "./cli/program.ts";
export {
  assertLabeledMatrix,
  binaryLabels,
  type LabeledMatrix,
  type LabelMode,
} from "./ml/data/types.ts";

/** Flow data: loaders, features, leak guard, splits, device partitions, synthetic IoMT traffic. */
export * as data from "./ml/data/mod.ts";
/** Split learning: models, the split step over the wire, SplitFed/FedAvg round loop, metrics. */
export * as train from "./ml/train/loop.ts";
export * as splitStep from "./ml/train/split_step.ts";
export * as model from "./ml/model/split_model.ts";
export * as metrics from "./ml/metrics/classification.ts";
export * as wire from "./ml/wire/frame.ts";
export * as tensorflow from "./ml/tf/backend.ts";
/** Privacy of the smashed data: distance correlation, protections, (ε, δ) accountant, audit. */
export * as privacy from "./ml/privacy/audit.ts";
export * as privacyAccountant from "./ml/privacy/rdp.ts";
/** Ledger: PBFT core, chain format, storage, crypto, update consensus (scoring, aggregation). */
export * as pbft from "./ledger/pbft/mod.ts";
export * as chain from "./ledger/chain/mod.ts";
export * as store from "./ledger/store/mod.ts";
export * as crypto from "./ledger/crypto/mod.ts";
export * as updateConsensus from "./ledger/app/mod.ts";
export { verifyLedger } from "./ledger/verify.ts";
/** HTTP API and UI as a value (`createApp(view).fetch`), the in-memory view, metrics. */
export * as web from "./web/mod.ts";
