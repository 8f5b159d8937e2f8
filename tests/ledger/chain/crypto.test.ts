import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBase64, fromHex, toBase64, toHex } from "../../../ledger/crypto/bytes.ts";
import {
  addressOf,
  generateKeyPair,
  keyPairFromSeed,
  pkcs8ToSeed,
  seedToPkcs8,
  sign,
  verify,
} from "../../../ledger/crypto/ed25519.ts";
import {
  keyFileFor,
  parseKeyFile,
  readKeyFile,
  writeKeyFile,
} from "../../../ledger/crypto/keyfile.ts";
import { sha256Hex, sha256HexAsync } from "../../../ledger/crypto/sha256.ts";

const enc = new TextEncoder();

Deno.test("RFC 8032 test 1: seed, public key and signature of the empty message", async () => {
  const pair = await keyPairFromSeed(
    fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
  );
  assert.equal(
    toHex(pair.publicKey),
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  );
  const signature = await sign(pair.privateKey, new Uint8Array(0));
  assert.equal(
    toHex(signature),
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  );
  assert.equal(await verify(pair.publicKey, signature, new Uint8Array(0)), true);
});

Deno.test("verify is false, never a throw, for wrong message, key, or malformed input", async () => {
  const a = await generateKeyPair();
  const b = await generateKeyPair();
  const message = enc.encode("commit");
  const signature = await sign(a.privateKey, message);
  assert.equal(await verify(a.publicKey, signature, message), true);
  assert.equal(await verify(a.publicKey, signature, enc.encode("commiT")), false);
  assert.equal(await verify(b.publicKey, signature, message), false);
  assert.equal(await verify(a.publicKey, signature.slice(1), message), false);
  assert.equal(await verify(new Uint8Array(31), signature, message), false);
  assert.equal(await verify(new Uint8Array(32).fill(0xff), signature, message), false);
});

Deno.test("seed <-> PKCS#8, hex and base64 are strict", () => {
  const seed = new Uint8Array(32).fill(7);
  assert.deepEqual(pkcs8ToSeed(seedToPkcs8(seed)), seed);
  assert.throws(() => pkcs8ToSeed(new Uint8Array(48)), /PKCS#8/);
  assert.throws(() => fromHex("ABCD"), /lowercase/);
  assert.throws(() => fromHex("abc"), /even/);
  assert.throws(() => fromHex("abcd", 3), /3 bytes/);
  assert.deepEqual(fromBase64(toBase64(new Uint8Array([1, 2, 250]))), new Uint8Array([1, 2, 250]));
  assert.throws(() => fromBase64("a b="), /base64/);
});

Deno.test("sync and WebCrypto SHA-256 agree; address is SHA-256(public key)[0..20]", async () => {
  const data = enc.encode("abc");
  assert.equal(sha256Hex(data), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(await sha256HexAsync(data), sha256Hex(data));
  const pk = new Uint8Array(32).fill(1);
  assert.equal(addressOf(pk), sha256Hex(pk).slice(0, 40));
});

Deno.test("key files: mode 0600, never overwritten, public part checked against the private key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-keys-"));
  try {
    const path = join(dir, "v0.json");
    const pair = await generateKeyPair();
    const file = keyFileFor(pair, "validator", "v0");
    writeKeyFile(path, file);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.throws(() => writeKeyFile(path, file), /EEXIST|exists/);
    const loaded = await readKeyFile(path);
    assert.equal(loaded.address, addressOf(pair.publicKey));
    assert.deepEqual(loaded.publicKey, pair.publicKey);
    const message = enc.encode("x");
    assert.equal(
      await verify(pair.publicKey, await sign(loaded.privateKey, message), message),
      true,
    );
    const other = await generateKeyPair();
    const forged = { ...file, public_key_hex: toHex(other.publicKey) };
    await assert.rejects(() => parseKeyFile(JSON.stringify(forged)), /does not match/);
    await assert.rejects(() => parseKeyFile(JSON.stringify({ ...file, role: "king" })), /bad role/);
    await assert.rejects(() => parseKeyFile("{"), /not JSON/);
    assert.throws(() => keyFileFor(pair, "device", "has space"), /key id/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("the opt-in verified-signature memo never turns a bad signature into a good one", async () => {
  const { enableVerifiedSignatureCache } = await import("../../../ledger/crypto/ed25519.ts");
  enableVerifiedSignatureCache(2);
  try {
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    const messages = ["m1", "m2", "m3"].map((m) => enc.encode(m));
    const sigs = await Promise.all(messages.map((m) => sign(a.privateKey, m)));
    for (let round = 0; round < 2; round++) {
      for (const [i, m] of messages.entries()) {
        assert.equal(await verify(a.publicKey, sigs[i], m), true);
        assert.equal(await verify(b.publicKey, sigs[i], m), false); // same sig, other key
        assert.equal(await verify(a.publicKey, sigs[i], messages[(i + 1) % 3]), false); // other message
      }
    }
    assert.throws(() => enableVerifiedSignatureCache(-1), /integer/);
  } finally {
    enableVerifiedSignatureCache(0);
  }
});
