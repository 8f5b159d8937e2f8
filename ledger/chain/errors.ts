/** Why a ledger object was rejected. `code` is stable (tests and --json output use it). */
export type LedgerErrorCode =
  | "malformed" // shape, type or limit violation; not canonical
  | "wrong_chain" // chain_id differs from genesis
  | "bad_height" // not last height + 1, or a gap
  | "bad_prev_hash" // does not link to the previous block (or genesis)
  | "bad_tx_root" // Merkle root does not match the transactions
  | "bad_hash" // a stored hash does not match its recomputed value
  | "bad_proposer" // proposer is not the primary of the header's view
  | "bad_time" // time went backwards
  | "unknown_sender" // sender not in genesis
  | "unauthorized" // sender's role may not send this tx type
  | "bad_signature" // a tx signature does not verify
  | "replay" // nonce not above the sender's last, or a second update in one round
  | "bad_round" // round rules (open/close order, update outside the open round)
  | "bad_certificate" // certificate does not match the block, bad/duplicate/unknown signer
  | "no_quorum" // fewer than 2f+1 valid distinct validator signatures
  | "conflict" // a different block already stored at this height
  | "blob_mismatch" // blob bytes do not hash to their id
  | "missing"; // a block, transaction or certificate row is absent

export class LedgerError extends Error {
  override name = "LedgerError";
  constructor(readonly code: LedgerErrorCode, message: string, readonly height?: number) {
    super(height === undefined ? message : `block ${height}: ${message}`);
  }
}

export function fail(code: LedgerErrorCode, message: string, height?: number): never {
  throw new LedgerError(code, message, height);
}
