// Public API of the chain format: what the validator shell and verifiers import.
export * from "./types.ts";
export * from "./errors.ts";
export {
  canonicalBytes,
  CanonicalError,
  canonicalHash,
  canonicalize,
  type CanonicalValue,
  parseCanonical,
} from "./canonical.ts";
export { merkleLeafHash, merkleNodeHash, merkleRoot } from "./merkle.ts";
export {
  type ChainContext,
  chainContext,
  createGenesis,
  type CreateGenesisInput,
  DEFAULT_PARAMS,
  encodeGenesis,
  faultsTolerated,
  genesisHash,
  parseGenesis,
  primaryOf,
  quorumSize,
  validateGenesis,
} from "./genesis.ts";
export {
  encodeTx,
  signTx,
  TX_SENDER_ROLES,
  txHash,
  type TxSigner,
  txSigningBytes,
  unsignedTx,
  validateTxShape,
  verifyTxAuth,
} from "./tx.ts";
export {
  blockHash,
  buildBlock,
  type BuildBlockInput,
  decodeBlock,
  encodeBlock,
  txRoot,
  validateBlockShape,
  validateHeaderShape,
} from "./block.ts";
export {
  commitSigningBytes,
  commitStatement,
  type CommitTarget,
  decodeCertificate,
  encodeCertificate,
  makeCertificate,
  signCommit,
  verifyCertificate,
} from "./certificate.ts";
export { applyBlock, type ChainState, cloneState, genesisState } from "./rules.ts";
