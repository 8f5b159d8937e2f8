// Cross-runtime smoke check of the ledger stack: WebCrypto Ed25519, libSQL file store (WAL +
// synchronous=FULL), append, read-back and full verification. Runs the same on both runtimes:
//   bun run tests/ledger/store/runtime_check.ts
//   deno run --allow-all tests/ledger/store/runtime_check.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fromHex, toHex } from "../../../ledger/crypto/bytes.ts";
import { keyPairFromSeed, sign, verify } from "../../../ledger/crypto/ed25519.ts";
import { canonicalize } from "../../../ledger/chain/canonical.ts";
import { LedgerStore } from "../../../ledger/store/store.ts";
import { verifyLedger } from "../../../ledger/verify.ts";
import { ChainBuilder } from "../chain/fixtures.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
};

// RFC 8032 §7.1 test 1.
const pair = await keyPairFromSeed(
  fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
);
const signature = await sign(pair.privateKey, new Uint8Array(0));
check(
  toHex(pair.publicKey) === "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  "Ed25519 public key",
);
check(
  signature.length === 64 && await verify(pair.publicKey, signature, new Uint8Array(0)),
  "Ed25519 verify",
);
check(
  !(await verify(pair.publicKey, signature, new Uint8Array(1))),
  "Ed25519 rejects a wrong message",
);

const dir = mkdtempSync(join(tmpdir(), "iomt-runtime-check-"));
try {
  const builder = await ChainBuilder.create();
  await builder.standardChain();
  const store = await LedgerStore.open(join(dir, "ledger.db"), { genesis: builder.genesis });
  for (const c of builder.blocks) await store.appendCommittedBlock(c.block, c.certificate);
  const pragmas = await store.pragmas();
  check(
    pragmas.journalMode === "wal" && pragmas.synchronous === 2,
    `pragmas ${JSON.stringify(pragmas)}`,
  );
  const blob = await store.putBlob(new TextEncoder().encode("weights"));
  check((await store.getBlob(blob))?.length === 7, "blob round trip");
  check(
    canonicalize(await store.getBlock(2)) === canonicalize(builder.blocks[1].block),
    "block round trip",
  );
  const report = await verifyLedger(store, builder.genesis);
  check(report.ok && report.verified_height === 5, `verify ${JSON.stringify(report.problem)}`);
  store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.error(`${runtime}: ledger runtime check FAILED: ${failures.join("; ")}`);
  process.exit(1);
}
console.log(
  `${runtime}: ledger runtime check ok (Ed25519 WebCrypto, libSQL WAL+FULL, append, read, verify)`,
);
