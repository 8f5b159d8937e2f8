// Byte encodings used in ledger objects: lowercase hex everywhere a hash, key or signature is
// written into hashed JSON (one spelling per value, so canonical bytes are unique), base64 only
// in key files for humans and other tools.

const HEX_DIGITS = "0123456789abcdef";

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += HEX_DIGITS[byte >> 4] + HEX_DIGITS[byte & 15];
  return out;
}

/** Strict: lowercase only, even length, optional exact byte length. Throws on anything else. */
export function fromHex(hex: string, expectedBytes?: number): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) {
    throw new Error(`expected lowercase hex with an even number of digits, got ${preview(hex)}`);
  }
  if (expectedBytes !== undefined && hex.length !== expectedBytes * 2) {
    throw new Error(
      `expected ${expectedBytes} bytes of hex (${expectedBytes * 2} digits), got ${hex.length}`,
    );
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
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
