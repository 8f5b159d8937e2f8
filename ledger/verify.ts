// Full-chain verification of a stored ledger against a trusted genesis: every hash link, Merkle
// root, tx signature and replay rule, and every certificate's signatures and quorum. Stops at the
// first bad block and says why; a verifier in another language can follow docs/ledger-format.md.
import { verifyCertificate } from "./chain/certificate.ts";
import { fail, LedgerError, type LedgerErrorCode } from "./chain/errors.ts";
import { type ChainContext, chainContext, genesisHash } from "./chain/genesis.ts";
import { applyBlock, genesisState } from "./chain/rules.ts";
import type { Genesis } from "./chain/types.ts";
import type { LedgerStore } from "./store/store.ts";

export interface VerifyProblem {
  /** First bad height (absent for problems outside blocks, e.g. a genesis mismatch or a blob). */
  height?: number;
  code: LedgerErrorCode | "error";
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  chain_id: string;
  genesis_hash: string;
  /** Height of the last block that verified (0 = none). */
  verified_height: number;
  /** Last stored height. */
  stored_height: number;
  blocks_checked: number;
  txs_checked: number;
  signatures_checked: number;
  blobs_checked: number;
  problem?: VerifyProblem;
}

export interface VerifyOptions {
  /** Also re-hash every stored blob (model weights). Default true. */
  blobs?: boolean;
  /** Called after each verified block (progress). */
  onBlock?: (height: number) => void;
}

export async function verifyLedger(
  store: LedgerStore,
  genesis: Genesis,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const ctx: ChainContext = chainContext(genesis);
  const report: VerifyReport = {
    ok: false,
    chain_id: ctx.chainId,
    genesis_hash: ctx.genesisHash,
    verified_height: 0,
    stored_height: await store.height(),
    blocks_checked: 0,
    txs_checked: 0,
    signatures_checked: 0,
    blobs_checked: 0,
  };
  try {
    const stored = store.context;
    if (stored && stored.genesisHash !== ctx.genesisHash) {
      fail(
        "wrong_chain",
        `database genesis ${stored.genesisHash} (${stored.chainId}) is not the given genesis ${
          genesisHash(genesis)
        }`,
      );
    }
    const state = genesisState(ctx);
    for await (const committed of store.readCommitted(1)) {
      const { block, certificate } = committed;
      const hash = await applyBlock(ctx, state, block);
      if (hash !== committed.hash) {
        fail(
          "bad_hash",
          `block hashes to ${hash}, stored hash is ${committed.hash}`,
          committed.height,
        );
      }
      if (!certificate) fail("missing", "no commit certificate stored", committed.height);
      await verifyCertificate(ctx, certificate, {
        height: committed.height,
        blockHash: hash,
        headerView: block.header.view,
      });
      report.blocks_checked += 1;
      report.txs_checked += block.txs.length;
      report.signatures_checked += block.txs.length + certificate.signatures.length;
      report.verified_height = committed.height;
      options.onBlock?.(committed.height);
    }
    if (report.verified_height !== report.stored_height) {
      fail(
        "missing",
        `verified up to ${report.verified_height} but ${report.stored_height} blocks are stored`,
        report.verified_height + 1,
      );
    }
    if (options.blobs ?? true) {
      for (const sha of await store.blobIds()) {
        await store.getBlob(sha); // throws blob_mismatch
        report.blobs_checked += 1;
      }
    }
    report.ok = true;
  } catch (error) {
    report.problem = error instanceof LedgerError
      ? { height: error.height, code: error.code, message: error.message }
      : { code: "error", message: error instanceof Error ? error.message : String(error) };
  }
  return report;
}
