// Ed25519 through WebCrypto (crypto.subtle, algorithm "Ed25519"): ~15x faster verification than a
// pure-JS curve here, and available in Deno, Bun and the compiled binary.
//
// Private keys live as 32-byte seeds (RFC 8032). WebCrypto cannot import a raw Ed25519 private
// key, so a seed is wrapped in the fixed 16-byte PKCS#8 prefix of RFC 8410 before import.
import { bytesEqual, concatBytes, fromHex, toHex } from "./bytes.ts";
import { sha256Bytes } from "./sha256.ts";

export const SEED_BYTES = 32;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const ADDRESS_BYTES = 20;

/** DER prefix of a PKCS#8 OneAsymmetricKey holding an Ed25519 seed (RFC 8410 §7). */
const PKCS8_ED25519_PREFIX = fromHex("302e020100300506032b657004220420");

export interface KeyPair {
  /** 32-byte RFC 8032 private seed. */
  seed: Uint8Array;
  /** 32-byte public key. */
  publicKey: Uint8Array;
  /** Non-extractable signing key. */
  privateKey: CryptoKey;
}

export function seedToPkcs8(seed: Uint8Array): Uint8Array {
  assertLength(seed, SEED_BYTES, "seed");
  return concatBytes(PKCS8_ED25519_PREFIX, seed);
}

export function pkcs8ToSeed(pkcs8: Uint8Array): Uint8Array {
  if (pkcs8.length !== 48 || !bytesEqual(pkcs8.subarray(0, 16), PKCS8_ED25519_PREFIX)) {
    throw new Error(
      "not an Ed25519 PKCS#8 private key (expected 48 bytes with the RFC 8410 prefix)",
    );
  }
  return pkcs8.slice(16);
}

/** Imports a seed; derives the public key through a JWK export (WebCrypto has no direct call). */
export async function keyPairFromSeed(seed: Uint8Array): Promise<KeyPair> {
  assertLength(seed, SEED_BYTES, "seed");
  const pkcs8 = seedToPkcs8(seed) as Uint8Array<ArrayBuffer>;
  const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
    "sign",
  ]);
  const jwk = await crypto.subtle.exportKey("jwk", extractable);
  if (typeof jwk.x !== "string") throw new Error("WebCrypto did not export the Ed25519 public key");
  const publicKey = fromBase64Url(jwk.x);
  assertLength(publicKey, PUBLIC_KEY_BYTES, "public key");
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, [
    "sign",
  ]);
  return { seed: seed.slice(), publicKey, privateKey };
}

export async function generateKeyPair(): Promise<KeyPair> {
  return await keyPairFromSeed(crypto.getRandomValues(new Uint8Array(SEED_BYTES)));
}

export async function sign(privateKey: CryptoKey, message: Uint8Array): Promise<Uint8Array> {
  const signature = await crypto.subtle.sign(
    "Ed25519",
    privateKey,
    message as Uint8Array<ArrayBuffer>,
  );
  return new Uint8Array(signature);
}

// Imported public keys are cached: importKey costs about as much as one verify, and a chain
// verifies thousands of signatures from a few dozen keys. Bounded so a hostile input cannot grow it.
const VERIFY_KEY_CACHE_MAX = 4096;
const verifyKeys = new Map<string, Promise<CryptoKey>>();

function verifyKey(publicKey: Uint8Array): Promise<CryptoKey> {
  const id = toHex(publicKey);
  let key = verifyKeys.get(id);
  if (!key) {
    if (verifyKeys.size >= VERIFY_KEY_CACHE_MAX) verifyKeys.clear();
    key = crypto.subtle.importKey(
      "raw",
      publicKey as Uint8Array<ArrayBuffer>,
      { name: "Ed25519" },
      false,
      [
        "verify",
      ],
    );
    verifyKeys.set(id, key);
    key.catch(() => verifyKeys.delete(id));
  }
  return key;
}

/** False (never throws) for a wrong signature, a malformed key or a signature of the wrong size. */
export async function verify(
  publicKey: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
  options: { memo?: boolean } = {},
): Promise<boolean> {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  // memo: false when the caller remembers the verdict itself (sealed txs): no memo key to hash.
  const cacheKey = verifiedCacheMax > 0 && options.memo !== false
    ? verifiedKey(publicKey, signature, message)
    : "";
  if (cacheKey !== "" && verified.has(cacheKey)) return true;
  try {
    const key = await verifyKey(publicKey);
    const ok = await crypto.subtle.verify(
      "Ed25519",
      key,
      signature as Uint8Array<ArrayBuffer>,
      message as Uint8Array<ArrayBuffer>,
    );
    if (ok && cacheKey !== "") {
      if (verified.size >= verifiedCacheMax) verified.delete(verified.keys().next().value!);
      verified.add(cacheKey);
    }
    return ok;
  } catch {
    return false;
  }
}

// Opt-in memo of valid (public key, signature, message) triples. A validator checks the same tx
// signature at admission, in the proposal, and again when the store appends the block (and each
// commit signature on receipt and again in the certificate); with the memo each is paid once.
// Only successes are remembered, keyed by the signature and the SHA-256 of key and message, so
// a hit means these exact bytes verified before. Off by default (benchmarks of verify stay real).
let verifiedCacheMax = 0;
const verified = new Set<string>();

/** Remember up to `entriesMax` verified signatures in this process (0 turns the memo off). */
export function enableVerifiedSignatureCache(entriesMax: number): void {
  if (!Number.isSafeInteger(entriesMax) || entriesMax < 0) {
    throw new Error("entriesMax must be an integer ≥ 0");
  }
  verifiedCacheMax = entriesMax;
  verified.clear();
}

function verifiedKey(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array): string {
  return toHex(signature) + toHex(sha256Bytes(concatBytes(publicKey, message)));
}

/** Address = first 20 bytes of SHA-256(raw public key), lowercase hex (40 digits). */
export function addressOf(publicKey: Uint8Array): string {
  assertLength(publicKey, PUBLIC_KEY_BYTES, "public key");
  return toHex(sha256Bytes(publicKey).subarray(0, ADDRESS_BYTES));
}

function fromBase64Url(text: string): Uint8Array {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function assertLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new Error(`${what} must be ${length} bytes`);
  }
}
