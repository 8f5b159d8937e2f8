export {
  type CheckpointRecord,
  type CommittedBlock,
  databaseUrl,
  isRemoteUrl,
  LedgerStore,
  type OpenOptions,
  type ProtocolBatch,
  type ProtocolLogEntry,
} from "./store.ts";
export { MIGRATIONS, SCHEMA_VERSION } from "./migrations.ts";
