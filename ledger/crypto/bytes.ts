// Byte encodings used in ledger objects: lowercase hex everywhere a hash, key or signature is
// written into hashed JSON (one spelling per value, so canonical bytes are unique), base64 only
// in key files for humans and other tools.

const HEX_DIGITS = "0123456789abcdef";
// Hashes, keys and signatures are converted on every tx and message: table lookups, no parsing.
const BYTE_TO_HEX = Array.from({ length: 256 }, (_, b) => HEX_DIGITS[b >> 4] + HEX_DIGITS[b & 15]);

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_HEX[bytes[i]];
  return out;
}

/** Value of a lowercase hex digit's char code (0-9, a-f), or -1. */
function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

/** Strict: lowercase only, even length, optional exact byte length. Throws on anything else. */
export function fromHex(hex: string, expectedBytes?: number): Uint8Array {
  const badHex = () =>
    new Error(`expected lowercase hex with an even number of digits, got ${preview(hex)}`);
  if (typeof hex !== "string" || hex.length % 2 !== 0) throw badHex();
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const high = nibble(hex.charCodeAt(2 * i));
    const low = nibble(hex.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) throw badHex();
    out[i] = (high << 4) | low;
  }
  if (expectedBytes !== undefined && hex.length !== expectedBytes * 2) {
    throw new Error(
      `expected ${expectedBytes} bytes of hex (${expectedBytes * 2} digits), got ${hex.length}`,
    );
  }
  return out;
}

/** True for lowercase hex of exactly `bytes` bytes. */
export function isHex(value: unknown, bytes: number): value is string {
  return typeof value === "string" && value.length === bytes * 2 && /^[0-9a-f]*$/.test(value);
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new Error(`expected standard base64, got ${preview(text)}`);
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function preview(text: string): string {
  return JSON.stringify(text.length > 24 ? text.slice(0, 24) + "…" : text);
}
