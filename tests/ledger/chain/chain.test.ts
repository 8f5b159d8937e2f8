import assert from "node:assert/strict";
import { blockHash, buildBlock, decodeBlock, encodeBlock } from "../../../ledger/chain/block.ts";
import { canonicalize } from "../../../ledger/chain/canonical.ts";
import {
  makeCertificate,
  signCommit,
  verifyCertificate,
} from "../../../ledger/chain/certificate.ts";
import {
  createGenesis,
  primaryOf,
  quorumSize,
  validateGenesis,
} from "../../../ledger/chain/genesis.ts";
import {
  applyBlock,
  type ChainState,
  cloneState,
  genesisState,
} from "../../../ledger/chain/rules.ts";
import { signTx, txSigningBytes } from "../../../ledger/chain/tx.ts";
import type { Block, Certificate, Tx } from "../../../ledger/chain/types.ts";
import { ChainBuilder, STATE_ROOT } from "./fixtures.ts";
import { rejectsWith } from "./helpers.ts";

async function stateAfter(b: ChainBuilder, count: number): Promise<ChainState> {
  const state = genesisState(b.ctx);
  for (const c of b.blocks.slice(0, count)) await applyBlock(b.ctx, state, c.block);
  return state;
}

/** A block at the builder's next height with these txs (no certificate, builder not advanced). */
function nextBlock(b: ChainBuilder, txs: Tx[], patch: Partial<Block["header"]> = {}): Block {
  const view = patch.view ?? 0;
  const block = buildBlock({
    chainId: b.genesis.chain_id,
    height: b.height + 1,
    prevHash: b.prevHash,
    view,
    proposer: primaryOf(b.ctx, view).address,
    timeMs: b.timeMs + 1000,
    stateRoot: STATE_ROOT,
    txs,
  });
  return { header: { ...block.header, ...patch }, txs };
}

Deno.test("a valid chain applies block by block and every block hash links", async () => {
  const b = await ChainBuilder.create();
  await b.standardChain();
  const state = genesisState(b.ctx);
  let prev = b.ctx.genesisHash;
  for (const c of b.blocks) {
    assert.equal(c.block.header.prev_hash, prev);
    assert.equal(await applyBlock(b.ctx, state, c.block), c.hash);
    await verifyCertificate(b.ctx, c.certificate, {
      height: c.block.header.height,
      blockHash: c.hash,
      headerView: c.block.header.view,
    });
    prev = c.hash;
  }
  assert.equal(state.height, 5);
  assert.equal(state.roundOpened, 1);
  assert.equal(state.roundClosed, 1);
});

Deno.test("genesis needs n = 3f+1 validators with matching addresses and unique keys", async () => {
  const b = await ChainBuilder.create();
  assert.equal(quorumSize(4), 3);
  assert.equal(quorumSize(7), 5);
  assert.equal(quorumSize(1), 1);
  const keys = b.keys.validators.map((k) => ({ id: k.id, publicKey: k.publicKey }));
  for (
    const validators of [keys.slice(0, 2), keys.slice(0, 3), [...keys, { ...keys[0], id: "dup" }]]
  ) {
    await rejectsWith(
      () => createGenesis({ chainId: "c", genesisTimeMs: 0, validators }),
      "malformed",
    );
  }
  const tampered = structuredClone(b.genesis);
  tampered.validators[1].address = tampered.validators[2].address;
  await rejectsWith(() => validateGenesis(tampered), "malformed");
  const withFloat = structuredClone(b.genesis) as unknown as {
    params: { update_consensus: Record<string, unknown> };
  };
  withFloat.params.update_consensus.min_cosine = 0.1;
  const { parseGenesis } = await import("../../../ledger/chain/genesis.ts");
  await rejectsWith(() => parseGenesis(JSON.stringify(withFloat)), "malformed");
});

Deno.test("header rules: height, prev_hash, chain, proposer, time, tx_root, limits", async () => {
  const b = await ChainBuilder.create();
  await b.standardChain();
  const state = await stateAfter(b, 5);
  const cases: [Partial<Block["header"]>, string][] = [
    [{ height: 7 }, "bad_height"],
    [{ prev_hash: "00".repeat(32) }, "bad_prev_hash"],
    [{ chain_id: "other-chain" }, "wrong_chain"],
    [{ proposer: b.keys.validators[1].address }, "bad_proposer"],
    [{ time_ms: b.timeMs - 1 }, "bad_time"],
    [{ tx_root: "11".repeat(32) }, "bad_tx_root"],
    [{ tx_count: 1 }, "malformed"],
  ];
  for (const [patch, code] of cases) {
    const before = canonicalize({
      ...state,
      nonces: [...state.nonces],
      updatesInOpenRound: [...state.updatesInOpenRound],
    });
    await rejectsWith(
      () => applyBlock(b.ctx, cloneState(state), nextBlock(b, [], patch)),
      code as never,
      patch.height ?? 6,
    );
    assert.equal(
      canonicalize({
        ...state,
        nonces: [...state.nonces],
        updatesInOpenRound: [...state.updatesInOpenRound],
      }),
      before,
    );
  }
  // The primary of view 5 is validators[5 mod 4] = v1.
  await applyBlock(
    b.ctx,
    cloneState(state),
    nextBlock(b, [], { view: 5, proposer: b.keys.validators[1].address }),
  );
  // Genesis batch limit: max_txs_per_block.
  const small = structuredClone(b.genesis);
  small.params.batch.max_txs_per_block = 1;
  const { chainContext } = await import("../../../ledger/chain/genesis.ts");
  const [v0] = b.keys.validators;
  const txs = [
    await b.tx(v0, "round_open", { round: 2 }),
    await b.tx(v0, "x.note", { text: "hi" }),
  ];
  await rejectsWith(
    () => applyBlock(chainContext(small), cloneState(state), nextBlock(b, txs)),
    "malformed",
  );
});

Deno.test("tx rules: signatures, senders, roles, nonces and rounds", async () => {
  const b = await ChainBuilder.create();
  await b.standardChain();
  const state = await stateAfter(b, 5);
  const [v0] = b.keys.validators;
  const [d0, d1] = b.keys.devices;
  const chain = b.genesis.chain_id;
  const open2 = await b.tx(v0, "round_open", { round: 2 });
  const update = (nonce: number, round = 2) =>
    signTx(d0, chain, "model_update", nonce, {
      round,
      sample_count: 10,
      blob_sha256: "aa".repeat(32),
      blob_size_bytes: 1,
    });
  const d0Nonce = b.nonces.get(d0.address)!;
  const check = async (txs: Tx[], code: string) => {
    await rejectsWith(
      () => applyBlock(b.ctx, cloneState(state), nextBlock(b, txs)),
      code as never,
      6,
    );
  };
  const flipped = { ...open2, sig: open2.sig.slice(0, -1) + (open2.sig.endsWith("0") ? "1" : "0") };
  await check([flipped], "bad_signature");
  await check([{ ...open2, body: { round: 3 } }], "bad_signature"); // body changed after signing
  await check([await signTx(d0, chain, "round_open", d0Nonce + 1, { round: 2 })], "unauthorized");
  await check([
    await signTx(b.keys.edge, chain, "model_update", 1, {
      round: 2,
      sample_count: 1,
      blob_sha256: "aa".repeat(32),
      blob_size_bytes: 1,
    }),
  ], "unauthorized");
  const stranger = { ...open2, from: "99".repeat(20) };
  await check([stranger], "unknown_sender");
  await check([await signTx(v0, "other-chain", "round_open", 99, { round: 2 })], "wrong_chain");
  await check([open2, await update(d0Nonce)], "replay"); // nonce already used in block 2
  await check([open2, await update(d0Nonce + 1), await update(d0Nonce + 2)], "replay"); // second update in a round
  await check([await update(d0Nonce + 1, 2)], "bad_round"); // round 2 not open
  await check([open2, await update(d0Nonce + 1, 1)], "bad_round"); // round 1 closed
  await check([await signTx(v0, chain, "round_open", 50, { round: 3 })], "bad_round");
  await check([await signTx(v0, chain, "round_close", 50, { round: 1 })], "bad_round");
  const tooMany = b.genesis.params.model_update.max_sample_count + 1;
  await check([
    open2,
    await signTx(d1, chain, "model_update", 50, {
      round: 2,
      sample_count: tooMany,
      blob_sha256: "aa".repeat(32),
      blob_size_bytes: 1,
    }),
  ], "malformed");
  await check([
    await signTx(b.keys.admin, chain, "quarantine", 50, { target: v0.address, reason: "x" }),
  ], "malformed");
  // Round results: only for the last closed round, once; only validators send them.
  const result = (sender: typeof v0, nonce: number, round: number) =>
    signTx(sender, chain, "round_result", nonce, { round, record: { ok: true } });
  await check([await result(b.keys.validators[2], 1, 1)], "bad_round"); // round 1 has a result
  await check([open2, await result(b.keys.validators[2], 1, 2)], "bad_round"); // 2 is not closed
  await check([await result(d1, 50, 1)], "unauthorized");
  // The edge coordinates rounds: it may open and close them.
  const edgeOpen = await signTx(b.keys.edge, chain, "round_open", 10, { round: 2 });
  const edgeClose = await signTx(b.keys.edge, chain, "round_close", 11, { round: 2 });
  const rounds = cloneState(state);
  const closing = [edgeOpen, edgeClose, await result(b.keys.validators[2], 1, 2)];
  await applyBlock(b.ctx, rounds, nextBlock(b, closing));
  assert.deepEqual([rounds.roundOpened, rounds.roundClosed, rounds.roundResulted], [2, 2, 2]);
  // Nonces may skip (gaps allowed) but never repeat; the valid block applies.
  const ok = cloneState(state);
  await applyBlock(b.ctx, ok, nextBlock(b, [open2, await update(d0Nonce + 10)]));
  assert.equal(ok.nonces.get(d0.address), d0Nonce + 10);
});

Deno.test("tx signing bytes are the canonical tx without sig", async () => {
  const b = await ChainBuilder.create();
  const tx = await b.tx(b.keys.validators[0], "round_open", { round: 1 });
  const { sig: _sig, ...unsigned } = tx;
  assert.equal(new TextDecoder().decode(txSigningBytes(tx)), canonicalize(unsigned));
  await rejectsWith(
    () => signTx(b.keys.devices[0], "c", "model_update", 1, { round: 1 } as never),
    "malformed",
  );
  await rejectsWith(
    () => signTx(b.keys.devices[0], "c", "nonsense" as never, 1, {} as never),
    "malformed",
  );
});

Deno.test("certificates need 2f+1 distinct, sorted, valid genesis validator signatures", async () => {
  const b = await ChainBuilder.create();
  await b.standardChain();
  const { block, certificate, hash } = b.blocks[4];
  const height = block.header.height;
  const expected = { height, blockHash: hash, headerView: block.header.view };
  const verifyWith = (patch: Partial<Certificate>) =>
    verifyCertificate(b.ctx, { ...certificate, ...patch }, expected);
  await verifyWith({});
  const sigs = certificate.signatures;
  await rejectsWith(() => verifyWith({ signatures: sigs.slice(0, 2) }), "no_quorum", height);
  await rejectsWith(
    () => verifyWith({ signatures: [sigs[0], sigs[0], sigs[1]] }),
    "bad_certificate",
    height,
  );
  await rejectsWith(
    () => verifyWith({ signatures: [sigs[1], sigs[0], sigs[2]] }),
    "bad_certificate",
    height,
  );
  await rejectsWith(
    () => verifyWith({ signatures: [{ ...sigs[0], sig: sigs[1].sig }, ...sigs.slice(1)] }),
    "bad_certificate",
    height,
  );
  await rejectsWith(
    () =>
      verifyWith({
        signatures: [...sigs.slice(0, 3), { validator: "ff".repeat(20), sig: sigs[3].sig }],
      }),
    "bad_certificate",
    height,
  );
  await rejectsWith(() => verifyWith({ view: 7 }), "bad_certificate", height); // signatures were for view 1
  await rejectsWith(() => verifyWith({ view: 0 }), "bad_certificate", height); // before the header's view
  await rejectsWith(() => verifyWith({ block_hash: "00".repeat(32) }), "bad_certificate", height);
  await rejectsWith(() => verifyWith({ chain_id: "other" }), "wrong_chain", height);
  await rejectsWith(
    () => verifyCertificate(b.ctx, certificate, { ...expected, height: 4 }),
    "bad_certificate",
    4,
  );
  // makeCertificate drops a bad commit message and still reaches quorum with the rest.
  const target = { chainId: b.genesis.chain_id, height, view: 1, blockHash: hash };
  const good = await Promise.all(b.keys.validators.map((k) => signCommit(k, target)));
  const cert = await makeCertificate(b.ctx, target, [
    { ...good[0], sig: good[1].sig },
    ...good.slice(1),
    good[2],
  ]);
  assert.deepEqual(
    cert.signatures.map((s) => s.validator),
    good.slice(1).map((s) => s.validator).sort(),
  );
  await rejectsWith(() => makeCertificate(b.ctx, target, good.slice(0, 2)), "no_quorum");
});

Deno.test("encodeBlock/decodeBlock round-trip; decode rejects non-canonical or inconsistent payloads", async () => {
  const b = await ChainBuilder.create();
  await b.standardChain();
  const { block, hash } = b.blocks[1];
  const bytes = encodeBlock(block);
  const decoded = decodeBlock(bytes);
  assert.deepEqual(decoded, block);
  assert.equal(blockHash(decoded), hash);
  const text = new TextDecoder().decode(bytes);
  const enc = new TextEncoder();
  await rejectsWith(() => decodeBlock(enc.encode(text + " ")), "malformed");
  await rejectsWith(() => decodeBlock(enc.encode(JSON.stringify(block, null, 1))), "malformed");
  const swapped = { header: block.header, txs: [block.txs[1], block.txs[0], block.txs[2]] };
  await rejectsWith(() => decodeBlock(encodeBlock(swapped)), "bad_tx_root", 2);
  await rejectsWith(
    () => decodeBlock(bytes, { maxTxs: 10, maxTxBytes: 64 * 1024, maxBlockBytes: 100 }),
    "malformed",
  );
});

Deno.test("the block size limit counts exactly the canonical bytes of the block", async () => {
  const b = await ChainBuilder.create();
  const [v0] = b.keys.validators;
  const { chainContext } = await import("../../../ledger/chain/genesis.ts");
  const { encodeBlock } = await import("../../../ledger/chain/block.ts");
  const txs = [await b.tx(v0, "x.note", { text: "a" }), await b.tx(v0, "x.note", { text: "b" })];
  // A changed genesis has another hash; keep the block's link to the original one.
  const stateOver = (genesis: typeof b.genesis) => ({
    ...genesisState(chainContext(genesis)),
    lastHash: b.prevHash,
  });
  for (const list of [[], txs.slice(0, 1), txs]) {
    const block = nextBlock(b, list);
    const exact = structuredClone(b.genesis);
    exact.params.batch.max_block_bytes = encodeBlock(block).length;
    exact.params.batch.max_tx_bytes = exact.params.batch.max_block_bytes - 1;
    await applyBlock(chainContext(exact), stateOver(exact), block);
    exact.params.batch.max_block_bytes -= 1;
    await rejectsWith(
      () => applyBlock(chainContext(exact), stateOver(exact), block),
      "malformed",
      1,
    );
  }
});
