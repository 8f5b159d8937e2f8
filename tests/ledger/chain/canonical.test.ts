import assert from "node:assert/strict";
import { CanonicalError, canonicalize, parseCanonical } from "../../../ledger/chain/canonical.ts";
import { merkleRoot } from "../../../ledger/chain/merkle.ts";
import { sha256Hex } from "../../../ledger/crypto/sha256.ts";
import { concatBytes } from "../../../ledger/crypto/bytes.ts";

const enc = new TextEncoder();

Deno.test("canonical JSON sorts keys by UTF-16 code units and has no whitespace", () => {
  assert.equal(
    canonicalize({ b: 1, a: [true, null, "x"], A: {} }),
    '{"A":{},"a":[true,null,"x"],"b":1}',
  );
  // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FFFD in UTF-16 (not by code point).
  assert.equal(canonicalize({ "\uFFFD": 1, "\u{1F600}": 2 }), '{"\u{1F600}":2,"\uFFFD":1}');
  assert.equal(canonicalize({ z: undefined, y: 0 }), '{"y":0}');
  assert.equal(canonicalize(-0), "0");
  assert.equal(canonicalize(Number.MAX_SAFE_INTEGER), "9007199254740991");
});

Deno.test("canonical strings escape only quote, backslash and control characters", () => {
  assert.equal(
    canonicalize('a"b\\c\n\t\b\f\r\u0001\u001f\u007f\u2028é€'),
    '"a\\"b\\\\c\\n\\t\\b\\f\\r\\u0001\\u001f\u007f\u2028é€"',
  );
});

Deno.test("canonical JSON rejects floats, unsafe integers, lone surrogates and non-plain values", () => {
  for (
    const bad of [
      0.5,
      1e21,
      Number.MAX_SAFE_INTEGER + 1,
      NaN,
      Infinity,
      "\ud800",
      { k: "\udc00" },
      new Uint8Array(1),
      new Date(0),
      [undefined],
      1n,
      () => 1,
    ]
  ) {
    assert.throws(() => canonicalize(bad), CanonicalError, `should reject ${String(bad)}`);
  }
  assert.throws(() => canonicalize({ score: 0.75 }), /\$\.score: 0\.75 is not an integer/);
});

Deno.test("parseCanonical accepts exactly one encoding of a value", () => {
  assert.deepEqual(parseCanonical(enc.encode('{"a":1,"b":[2]}'), 100), { a: 1, b: [2] });
  for (
    const bad of [
      '{"b":1,"a":2}',
      '{"a": 1}',
      '{"a":1.0}',
      '{"a":1e2}',
      '{"a":"\\u0041"}',
      '{"a":1,"a":1}',
      "9007199254740993",
      ' {"a":1}',
    ]
  ) {
    assert.throws(() => parseCanonical(enc.encode(bad), 100), CanonicalError, bad);
  }
  assert.throws(() => parseCanonical(new Uint8Array([0x22, 0xff, 0x22]), 100), /UTF-8/);
  assert.throws(() => parseCanonical(enc.encode('"' + "x".repeat(200) + '"'), 100), /limit 100/);
});

Deno.test("Merkle root follows RFC 6962: empty, one leaf, odd leaves split at a power of two", () => {
  const leaf = (s: string) => enc.encode(s);
  const h = (...parts: Uint8Array[]) => sha256Hex(concatBytes(...parts));
  const hb = (...parts: Uint8Array[]) =>
    Uint8Array.from(h(...parts).match(/../g)!.map((x) => parseInt(x, 16)));
  assert.equal(merkleRoot([]), sha256Hex(new Uint8Array(0)));
  assert.equal(merkleRoot([leaf("a")]), h(new Uint8Array([0]), leaf("a")));
  const [a, b, c] = ["a", "b", "c"].map((s) => hb(new Uint8Array([0]), leaf(s)));
  const ab = hb(new Uint8Array([1]), a, b);
  assert.equal(merkleRoot(["a", "b"].map(leaf)), h(new Uint8Array([1]), a, b));
  // n = 3: k = 2, so root = node(node(a, b), c) — c is not duplicated.
  assert.equal(merkleRoot(["a", "b", "c"].map(leaf)), h(new Uint8Array([1]), ab, c));
  assert.notEqual(
    merkleRoot(["a", "b", "c"].map(leaf)),
    merkleRoot(["a", "b", "c", "c"].map(leaf)),
  );
});
