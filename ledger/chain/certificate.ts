// Commit certificates: ≥ 2f+1 distinct genesis validators' Ed25519 signatures over the canonical
// bytes of {kind:"commit", chain_id, height, view, block_hash}. PBFT's commit messages must sign
// exactly these bytes (commitSigningBytes) so that a replica's commits become the certificate.
import { fromHex, isHex, toHex } from "../crypto/bytes.ts";
import { sign, verify } from "../crypto/ed25519.ts";
import { canonicalBytes, parseCanonical } from "./canonical.ts";
import * as check from "./check.ts";
import { fail, LedgerError } from "./errors.ts";
import type { ChainContext } from "./genesis.ts";
import { type Certificate, type CommitSignature, type CommitStatement, LIMITS } from "./types.ts";

export interface CommitTarget {
  chainId: string;
  height: number;
  view: number;
  blockHash: string;
}

export function commitStatement(target: CommitTarget): CommitStatement {
  return {
    kind: "commit",
    chain_id: target.chainId,
    height: target.height,
    view: target.view,
    block_hash: target.blockHash,
  };
}

/** The bytes a validator signs to commit a block. */
export function commitSigningBytes(target: CommitTarget): Uint8Array {
  return canonicalBytes(commitStatement(target));
}

export async function signCommit(
  signer: { address: string; privateKey: CryptoKey },
  target: CommitTarget,
): Promise<CommitSignature> {
  return {
    validator: signer.address,
    sig: toHex(await sign(signer.privateKey, commitSigningBytes(target))),
  };
}

/**
 * Assembles a certificate from commit signatures (e.g. PBFT's commit messages): keeps one per
 * validator, sorts by address, and verifies it. Throws LedgerError if it is not a valid quorum.
 */
export async function makeCertificate(
  ctx: ChainContext,
  target: CommitTarget,
  signatures: readonly CommitSignature[],
): Promise<Certificate> {
  // Drop what cannot count (unknown signer, bad signature, duplicate) before checking the quorum:
  // one faulty commit message must not spoil a certificate that has 2f+1 good ones.
  const message = commitSigningBytes(target);
  const byValidator = new Map<string, CommitSignature>();
  for (const s of signatures) {
    const index = ctx.validatorIndex.get(s.validator);
    if (index === undefined || byValidator.has(s.validator) || !isHex(s.sig, 64)) continue;
    if (!(await verify(fromHex(ctx.validators[index].public_key), fromHex(s.sig), message))) {
      continue;
    }
    byValidator.set(s.validator, { validator: s.validator, sig: s.sig });
  }
  const certificate: Certificate = {
    v: 1,
    chain_id: target.chainId,
    height: target.height,
    view: target.view,
    block_hash: target.blockHash,
    signatures: [...byValidator.values()].sort((a, b) => (a.validator < b.validator ? -1 : 1)),
  };
  await verifyCertificate(ctx, certificate, { height: target.height, blockHash: target.blockHash });
  return certificate;
}

export function encodeCertificate(certificate: Certificate): Uint8Array {
  return canonicalBytes(certificate);
}

export function decodeCertificate(bytes: Uint8Array | string): Certificate {
  let value: unknown;
  try {
    value = parseCanonical(bytes, LIMITS.certificate_bytes_max);
  } catch (error) {
    fail("malformed", `certificate: ${(error as Error).message}`);
  }
  return validateCertificateShape(value);
}

export function validateCertificateShape(value: unknown): Certificate {
  const c = check.object(value, "certificate", [
    "v",
    "chain_id",
    "height",
    "view",
    "block_hash",
    "signatures",
  ]);
  check.literal(c.v, "certificate.v", 1);
  if (typeof c.chain_id !== "string") fail("malformed", "certificate.chain_id: expected a string");
  check.int(c.height, "certificate.height", 1, Number.MAX_SAFE_INTEGER);
  check.int(c.view, "certificate.view", 0, LIMITS.view_max);
  check.hex(c.block_hash, "certificate.block_hash", 32);
  check.array(c.signatures, "certificate.signatures", LIMITS.validators_max).forEach((s, i) => {
    const entry = check.object(s, `certificate.signatures[${i}]`, ["validator", "sig"]);
    check.hex(entry.validator, `certificate.signatures[${i}].validator`, 20);
    check.hex(entry.sig, `certificate.signatures[${i}].sig`, 64);
  });
  return value as Certificate;
}

/**
 * Certificate is for this chain, height and block; view ≥ the header's view when given; signers
 * are distinct genesis validators in ascending address order; every signature verifies; and there
 * are at least 2f+1 of them. Throws LedgerError (bad_certificate | no_quorum | wrong_chain).
 */
export async function verifyCertificate(
  ctx: ChainContext,
  certificate: Certificate,
  expected: { height: number; blockHash: string; headerView?: number },
): Promise<void> {
  const height = expected.height;
  try {
    validateCertificateShape(certificate);
  } catch (error) {
    if (error instanceof LedgerError) fail("bad_certificate", error.message, height);
    throw error;
  }
  if (certificate.chain_id !== ctx.chainId) {
    fail("wrong_chain", `certificate chain_id ${certificate.chain_id}`, height);
  }
  if (certificate.height !== height) {
    fail("bad_certificate", `certificate is for height ${certificate.height}`, height);
  }
  if (certificate.block_hash !== expected.blockHash) {
    fail(
      "bad_certificate",
      `certificate is for block ${certificate.block_hash}, not ${expected.blockHash}`,
      height,
    );
  }
  if (expected.headerView !== undefined && certificate.view < expected.headerView) {
    fail(
      "bad_certificate",
      `certificate view ${certificate.view} is before the block's view ${expected.headerView}`,
      height,
    );
  }
  const message = commitSigningBytes({
    chainId: ctx.chainId,
    height,
    view: certificate.view,
    blockHash: expected.blockHash,
  });
  let previous = "";
  const results = await Promise.all(certificate.signatures.map((s) => {
    const index = ctx.validatorIndex.get(s.validator);
    if (index === undefined) {
      return Promise.resolve(`signer ${s.validator} is not a genesis validator`);
    }
    const publicKey = fromHex(ctx.validators[index].public_key);
    return verify(publicKey, fromHex(s.sig), message).then((ok) =>
      ok ? null : `signature of validator ${ctx.validators[index].id} does not verify`
    );
  }));
  certificate.signatures.forEach((s, i) => {
    if (s.validator <= previous) {
      fail("bad_certificate", "signers must be distinct and sorted by address", height);
    }
    previous = s.validator;
    if (results[i] !== null) fail("bad_certificate", results[i]!, height);
  });
  if (certificate.signatures.length < ctx.quorum) {
    fail(
      "no_quorum",
      `${certificate.signatures.length} commit signatures, need ${ctx.quorum} (2f+1, f=${ctx.f})`,
      height,
    );
  }
}
