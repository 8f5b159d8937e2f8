// Sealed txs carry their canonical bytes, hash, Merkle leaf hash and signature verdict from the
// point a validator admits or decodes them; these tests pin that the memo always equals the
// recomputed value and can never describe a changed object.
import assert from "node:assert/strict";
import { decodeBlock, encodeBlock } from "../../../ledger/chain/block.ts";
import { canonicalBytes, canonicalHash } from "../../../ledger/chain/canonical.ts";
import { merkleLeafHash } from "../../../ledger/chain/merkle.ts";
import {
  encodeTx,
  isSealedTx,
  sealTx,
  txHash,
  txLeafHash,
  txSigningBytes,
  verifyTxAuth,
} from "../../../ledger/chain/tx.ts";
import type { Tx } from "../../../ledger/chain/types.ts";
import { fromHex, toHex } from "../../../ledger/crypto/bytes.ts";
import { ChainBuilder } from "./fixtures.ts";
import { rejectsWith } from "./helpers.ts";

Deno.test("a sealed tx's memoized bytes, hash, leaf and signing bytes equal the recomputed ones", async () => {
  const b = await ChainBuilder.create();
  await b.standardChain();
  for (const { block } of b.blocks) {
    for (const original of block.txs) {
      const copy = structuredClone(original) as Tx;
      const sealed = sealTx(copy, 64 * 1024);
      assert.equal(sealed, copy);
      assert.ok(isSealedTx(sealed));
      assert.deepEqual(encodeTx(sealed), canonicalBytes(original));
      assert.equal(txHash(sealed), canonicalHash(original));
      assert.deepEqual(txLeafHash(sealed), merkleLeafHash(canonicalBytes(original)));
      const { sig: _sig, ...unsigned } = original;
      assert.deepEqual(txSigningBytes(sealed), canonicalBytes(unsigned));
      await verifyTxAuth(b.ctx, sealed);
      await verifyTxAuth(b.ctx, sealed); // memo hit: same verdict
    }
  }
});

Deno.test("a sealed tx is frozen, so a tampered copy must be a new object and is checked afresh", async () => {
  const b = await ChainBuilder.create();
  const [device] = b.keys.devices;
  const tx = sealTx(structuredClone(await b.tx(device, "x.test", { n: 1 })), 64 * 1024);
  await verifyTxAuth(b.ctx, tx);
  assert.throws(() => {
    (tx as { nonce: number }).nonce = 99;
  }, TypeError);
  assert.throws(() => {
    (tx.body as Record<string, unknown>).n = 2;
  }, TypeError);
  const tampered = sealTx({ ...tx, body: { n: 2 } }, 64 * 1024);
  assert.notEqual(txHash(tampered), txHash(tx));
  await rejectsWith(() => verifyTxAuth(b.ctx, tampered), "bad_signature");
  // The size limit applies to a sealed tx as to any other.
  assert.throws(() => sealTx(tx, 10), /bytes, limit 10/);
});

Deno.test("encodeBlock assembles exactly the canonical bytes; decodeBlock can seal the txs", async () => {
  const b = await ChainBuilder.create();
  await b.standardChain();
  for (const { block, hash } of b.blocks) {
    const bytes = encodeBlock(block);
    assert.deepEqual(bytes, canonicalBytes(block));
    const decoded = decodeBlock(bytes, {
      maxTxs: 1000,
      maxTxBytes: 64 * 1024,
      maxBlockBytes: 1 << 22,
      sealTxs: true,
    });
    assert.ok(decoded.txs.every(isSealedTx));
    assert.deepEqual(encodeBlock(decoded), bytes);
    assert.equal(canonicalHash(decoded.header), hash);
  }
  const empty = { ...b.blocks[0].block, txs: [] };
  assert.deepEqual(encodeBlock(empty), canonicalBytes(empty));
});

Deno.test("hex: round trip, and only lowercase hex of even length is accepted", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.equal(fromHex(toHex(bytes)).length, 256);
  assert.deepEqual(fromHex(toHex(bytes)), bytes);
  assert.equal(toHex(new Uint8Array([0, 15, 16, 255])), "000f10ff");
  for (const bad of ["0", "0A", "zz", "0g", " 00", "-1", "0x00"]) {
    assert.throws(() => fromHex(bad), /lowercase hex/, bad);
  }
  assert.throws(() => fromHex("00", 2), /expected 2 bytes/);
});
