import assert from "node:assert/strict";
import { LedgerError, type LedgerErrorCode } from "../../../ledger/chain/errors.ts";

/** Asserts that `work` throws/rejects a LedgerError with `code` (and, if given, at `height`). */
export async function rejectsWith(
  work: () => unknown,
  code: LedgerErrorCode,
  height?: number,
): Promise<LedgerError> {
  try {
    await work();
  } catch (error) {
    if (!(error instanceof LedgerError)) throw error;
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    if (height !== undefined) assert.equal(error.height, height, error.message);
    return error;
  }
  assert.fail(`expected a LedgerError ${code}, nothing was thrown`);
}
