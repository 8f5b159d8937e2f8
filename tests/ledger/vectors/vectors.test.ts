// The committed vectors must be exactly what the code produces, and must check out with nothing
// but the spec's recipes (SHA-256, Ed25519, the canonical text), as another language would.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fromHex } from "../../../ledger/crypto/bytes.ts";
import { verify } from "../../../ledger/crypto/ed25519.ts";
import { sha256Hex } from "../../../ledger/crypto/sha256.ts";
import { canonicalize, parseCanonical } from "../../../ledger/chain/canonical.ts";
import { buildVectors, vectorText } from "./build.ts";

const dir = new URL(".", import.meta.url).pathname;
const enc = new TextEncoder();
const read = (name: string) => JSON.parse(readFileSync(dir + name, "utf8"));

Deno.test("vector files are exactly what the code generates (rerun generate.ts after a format change)", async () => {
  for (const [name, value] of Object.entries(await buildVectors())) {
    assert.equal(readFileSync(dir + name, "utf8"), vectorText(value), `${name} is stale`);
  }
});

Deno.test("canonical vectors: recomputed from the inputs; non-canonical texts are rejected", () => {
  const { valid, rejected } = read("canonical.json");
  for (const v of valid) {
    assert.equal(canonicalize(v.input), v.canonical, v.name);
    assert.equal(sha256Hex(fromHex(v.canonical_utf8_hex)), v.sha256, v.name);
    assert.deepEqual(parseCanonical(v.canonical, 1 << 20), v.input, v.name);
  }
  for (const r of rejected) assert.throws(() => parseCanonical(r.text, 1 << 20), Error, r.name);
});

Deno.test("chain vectors check out from the spec alone: hashes, links, signatures, quorum", async () => {
  const chain = read("chain.json");
  const sha = (text: string) => sha256Hex(enc.encode(text));
  const keyOf = new Map<string, string>(
    chain.keys.map((
      k: { address: string; public_key_hex: string },
    ) => [k.address, k.public_key_hex]),
  );
  for (const k of chain.keys) {
    assert.equal(sha256Hex(fromHex(k.public_key_hex)).slice(0, 40), k.address);
  }
  assert.equal(sha(chain.genesis.canonical), chain.genesis.hash);
  for (const t of chain.txs) {
    assert.equal(sha(t.canonical), t.tx_hash);
    assert.ok(
      await verify(
        fromHex(keyOf.get(t.value.from)!),
        fromHex(t.signature),
        enc.encode(t.signing_bytes),
      ),
    );
  }
  assert.equal(sha(chain.block.header_canonical), chain.block.block_hash);
  assert.equal(chain.block.header.prev_hash, chain.genesis.hash);
  const statement = JSON.parse(chain.certificate.commit_statement_canonical);
  assert.equal(statement.block_hash, chain.block.block_hash);
  let valid = 0;
  for (const s of chain.certificate.value.signatures) {
    if (
      await verify(
        fromHex(keyOf.get(s.validator)!),
        fromHex(s.sig),
        enc.encode(chain.certificate.commit_statement_canonical),
      )
    ) valid++;
  }
  assert.ok(valid >= chain.genesis.quorum);
});
