// Builds the ledger test vectors from fixed seeds. `generate.ts` writes them to *.json beside
// this file; vectors.test.ts rebuilds them and requires byte-identical results, so a change to
// the format cannot slip in without the vectors (and docs/ledger-format.md) changing with it.
import { toBase64, toHex } from "../../../ledger/crypto/bytes.ts";
import { seedToPkcs8 } from "../../../ledger/crypto/ed25519.ts";
import { keyFromSeedHex } from "../../../ledger/crypto/keyfile.ts";
import { sha256Hex } from "../../../ledger/crypto/sha256.ts";
import { blockHash, buildBlock, encodeBlock } from "../../../ledger/chain/block.ts";
import { canonicalize } from "../../../ledger/chain/canonical.ts";
import {
  commitSigningBytes,
  makeCertificate,
  signCommit,
} from "../../../ledger/chain/certificate.ts";
import { chainContext, createGenesis, genesisHash } from "../../../ledger/chain/genesis.ts";
import { merkleLeafHash, merkleNodeHash, merkleRoot } from "../../../ledger/chain/merkle.ts";
import { signTx, txHash, txSigningBytes } from "../../../ledger/chain/tx.ts";

const enc = new TextEncoder();
const hexOf = (text: string) => toHex(enc.encode(text));

const CANONICAL_INPUTS: { name: string; input: unknown }[] = [
  { name: "key order and nesting", input: { b: 2, a: { d: [3, 2, 1], c: null }, A: true } },
  {
    name: "integers: zero, negative, max safe",
    input: { zero: 0, neg: -42, max: 9007199254740991, min: -9007199254740991 },
  },
  {
    name: "string escapes",
    input: { s: 'quote" backslash\\ nl\n tab\t cr\r bs\b ff\f nul\u0000 us\u001f del\u007f' },
  },
  { name: "non-ASCII stays literal UTF-8", input: { s: "é € 漢 \u2028 😀" } },
  {
    name: "keys sorted by UTF-16 code units, not code points",
    input: { "\uFFFD": 1, "😀": 2, "a": 3, "\u00e9": 4 },
  },
  { name: "empty containers", input: { o: {}, a: [], s: "" } },
  { name: "fraction as a scaled integer (*_e6)", input: { threshold_e6: 750000, loss_e6: -1250 } },
];

const NON_CANONICAL: { name: string; text: string }[] = [
  { name: "whitespace", text: '{"a": 1}' },
  { name: "unsorted keys", text: '{"b":1,"a":2}' },
  { name: "duplicate key", text: '{"a":1,"a":1}' },
  { name: "float", text: '{"a":0.5}' },
  { name: "integer written as float", text: '{"a":1.0}' },
  { name: "exponent", text: '{"a":1e3}' },
  { name: "unsafe integer", text: '{"a":9007199254740993}' },
  { name: "needless escape", text: '{"a":"\\u0041"}' },
  { name: "escaped solidus", text: '{"a":"\\/"}' },
  { name: "uppercase unicode escape", text: '{"a":"\\u001F"}' },
  { name: "lone surrogate escape", text: '{"a":"\\ud800"}' },
];

export async function buildVectors(): Promise<Record<string, unknown>> {
  const canonical = {
    description:
      "RFC 8785 canonical JSON restricted to integers. canonical_utf8_hex = UTF-8 of canonical; sha256 over those bytes.",
    valid: CANONICAL_INPUTS.map(({ name, input }) => {
      const text = canonicalize(input);
      return {
        name,
        input,
        canonical: text,
        canonical_utf8_hex: hexOf(text),
        sha256: sha256Hex(enc.encode(text)),
      };
    }),
    rejected: NON_CANONICAL.map(({ name, text }) => ({ name, text })),
  };

  const leaves = Array.from({ length: 7 }, (_, i) => enc.encode(`leaf-${i}`));
  const merkle = {
    description:
      "RFC 6962 Merkle Tree Hash. leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), " +
      'split at the largest power of two < n, empty tree = SHA-256("").',
    leaf_hashes: leaves.map((data) => ({
      data_hex: toHex(data),
      leaf_hash: toHex(merkleLeafHash(data)),
    })),
    node_example: {
      left: toHex(merkleLeafHash(leaves[0])),
      right: toHex(merkleLeafHash(leaves[1])),
      node_hash: toHex(merkleNodeHash(merkleLeafHash(leaves[0]), merkleLeafHash(leaves[1]))),
    },
    roots: Array.from(
      { length: 8 },
      (_, n) => ({ leaf_count: n, root: merkleRoot(leaves.slice(0, n)) }),
    ),
  };

  // ---------------------------------------------------------------- chain
  const seeds = {
    v0: "10".repeat(32),
    v1: "11".repeat(32),
    v2: "12".repeat(32),
    v3: "13".repeat(32),
    "dev-01": "20".repeat(32),
  };
  const validators = await Promise.all(
    ["v0", "v1", "v2", "v3"].map((id) => keyFromSeedHex(seeds[id as "v0"], "validator", id)),
  );
  const device = await keyFromSeedHex(seeds["dev-01"], "device", "dev-01");
  const keys = [...validators, device].map((k) => ({
    id: k.id,
    role: k.role,
    seed_hex: toHex(k.seed),
    private_key_pkcs8_base64: toBase64(seedToPkcs8(k.seed)),
    public_key_hex: toHex(k.publicKey),
    address: k.address,
  }));
  const genesis = createGenesis({
    chainId: "iomt-sfl-vectors",
    genesisTimeMs: 1_764_400_000_000,
    validators: validators.map((k) => ({ id: k.id, publicKey: k.publicKey })),
    participants: [{ id: device.id, publicKey: device.publicKey, role: "device" }],
  });
  const ctx = chainContext(genesis);
  const roundOpen = await signTx(validators[0], genesis.chain_id, "round_open", 1, { round: 1 });
  const update = await signTx(device, genesis.chain_id, "model_update", 1, {
    round: 1,
    sample_count: 128,
    blob_sha256: sha256Hex(enc.encode("weights")),
    blob_size_bytes: 7,
    metrics: { train_loss_e6: 412_345 },
  });
  const txs = [roundOpen, update];
  const block = buildBlock({
    chainId: genesis.chain_id,
    height: 1,
    prevHash: ctx.genesisHash,
    view: 0,
    proposer: validators[0].address,
    timeMs: 1_764_400_001_000,
    stateRoot: sha256Hex(enc.encode("state after block 1")),
    txs,
  });
  const hash = blockHash(block);
  const target = { chainId: genesis.chain_id, height: 1, view: 0, blockHash: hash };
  const certificate = await makeCertificate(
    ctx,
    target,
    await Promise.all(validators.slice(0, 3).map((k) => signCommit(k, target))),
  );
  const chain = {
    description:
      "Keys from fixed seeds, a genesis, two signed txs, block 1 and its commit certificate (3 of 4 validators).",
    keys,
    genesis: {
      value: genesis,
      canonical: canonicalize(genesis),
      hash: genesisHash(genesis),
      quorum: ctx.quorum,
    },
    txs: txs.map((tx) => {
      const signing = new TextDecoder().decode(txSigningBytes(tx));
      return {
        value: tx,
        signing_bytes: signing,
        signature: tx.sig,
        canonical: canonicalize(tx),
        tx_hash: txHash(tx),
      };
    }),
    block: {
      header: block.header,
      header_canonical: canonicalize(block.header),
      block_hash: hash,
      tx_root: block.header.tx_root,
      payload_canonical: new TextDecoder().decode(encodeBlock(block)),
    },
    certificate: {
      commit_statement_canonical: new TextDecoder().decode(commitSigningBytes(target)),
      value: certificate,
      canonical: canonicalize(certificate),
    },
  };
  return { "canonical.json": canonical, "merkle.json": merkle, "chain.json": chain };
}

/** The exact text written to each vector file. */
export function vectorText(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}
