import { assert, assertEquals } from "../assert.ts";
import { generateKeyPair } from "../../ledger/crypto/ed25519.ts";
import { addressOf } from "../../ledger/crypto/ed25519.ts";
import {
  HEADER_NONCE,
  HEADER_SIGNATURE,
  RequestVerifier,
  signRequest,
} from "../../net/signed_request.ts";

async function fixture() {
  const device = await generateKeyPair();
  const stranger = await generateKeyPair();
  const address = addressOf(device.publicKey);
  const verifier = new RequestVerifier(
    "test-chain",
    (a) => a === address ? { publicKey: device.publicKey, role: "device" } : undefined,
  );
  const signer = { address, privateKey: device.privateKey };
  return { device, stranger, address, verifier, signer };
}

const body = new TextEncoder().encode("frame bytes");
const parts = { chainId: "test-chain", method: "POST", path: "/v1/split/step", body };

Deno.test("signed request: accepted once, then the same nonce is a replay", async () => {
  const { verifier, signer } = await fixture();
  const headers = new Headers(await signRequest(signer, parts, 5));
  const first = await verifier.verify(headers, "POST", "/v1/split/step", body, ["device"]);
  assert(first.ok, JSON.stringify(first));
  const again = await verifier.verify(headers, "POST", "/v1/split/step", body, ["device"]);
  assertEquals(again.ok ? "" : again.reason, "replayed_nonce");
  const older = new Headers(await signRequest(signer, parts, 4));
  const stale = await verifier.verify(older, "POST", "/v1/split/step", body, ["device"]);
  assertEquals(stale.ok ? "" : stale.reason, "replayed_nonce");
});

Deno.test("signed request: tampered body, path, method, chain or signature are rejected", async () => {
  const { verifier, signer, stranger, address } = await fixture();
  let nonce = 10;
  const reject = async (
    headers: Headers,
    method: string,
    path: string,
    b: Uint8Array,
    reason: string,
  ) => {
    const result = await verifier.verify(headers, method, path, b, ["device"]);
    assertEquals(result.ok ? "accepted" : result.reason, reason);
  };
  await reject(
    new Headers(await signRequest(signer, parts, ++nonce)),
    "POST",
    "/v1/split/step",
    new Uint8Array([1]),
    "bad_signature",
  );
  await reject(
    new Headers(await signRequest(signer, parts, ++nonce)),
    "POST",
    "/v1/other",
    body,
    "bad_signature",
  );
  await reject(
    new Headers(await signRequest(signer, parts, ++nonce)),
    "PUT",
    "/v1/split/step",
    body,
    "bad_signature",
  );
  await reject(
    new Headers(await signRequest(signer, { ...parts, chainId: "other" }, ++nonce)),
    "POST",
    "/v1/split/step",
    body,
    "bad_signature",
  );
  const forged = new Headers(
    await signRequest({ address, privateKey: stranger.privateKey }, parts, ++nonce),
  );
  await reject(forged, "POST", "/v1/split/step", body, "bad_signature");
  const garbled = new Headers(await signRequest(signer, parts, ++nonce));
  garbled.set(HEADER_SIGNATURE, "!!!");
  await reject(garbled, "POST", "/v1/split/step", body, "bad_signature");
  const badNonce = new Headers(await signRequest(signer, parts, ++nonce));
  badNonce.set(HEADER_NONCE, "1e3");
  await reject(badNonce, "POST", "/v1/split/step", body, "bad_nonce");
  await reject(new Headers(), "POST", "/v1/split/step", body, "missing_headers");
  const strangerSigner = {
    address: addressOf(stranger.publicKey),
    privateKey: stranger.privateKey,
  };
  await reject(
    new Headers(await signRequest(strangerSigner, parts, ++nonce)),
    "POST",
    "/v1/split/step",
    body,
    "unknown_sender",
  );
  // a rejected request does not consume the nonce: the genuine one with the same nonce still passes
  const genuine = await verifier.verify(
    new Headers(await signRequest(signer, parts, nonce)),
    "POST",
    "/v1/split/step",
    body,
    ["device"],
  );
  assert(genuine.ok);
});

Deno.test("signed request: a device may not call an edge-only route", async () => {
  const { verifier, signer } = await fixture();
  const result = await verifier.verify(
    new Headers(await signRequest(signer, parts, 1)),
    "POST",
    "/v1/split/step",
    body,
    ["edge"],
  );
  assertEquals(result.ok ? "" : result.reason, "role_not_allowed");
});
