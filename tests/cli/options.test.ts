import { assertEquals, assertThrows } from "../assert.ts";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { commaList, intInRange, listenAddress, numberInRange, oneOf } from "../../cli/options.ts";

Deno.test("intInRange accepts integers in range and rejects text, fractions and out-of-range values", () => {
  const devices = intInRange(1, 1000);
  assertEquals(devices("10"), 10);
  assertEquals(devices(" 1000 "), 1000);
  for (const bad of ["abc", "", "0", "1001", "1.5", "1e3", "NaN", "0x10", "99999999999999999999"]) {
    assertThrows(() => devices(bad), InvalidArgumentError, "from 1 to 1000");
  }
});

Deno.test("numberInRange rejects NaN, Infinity and the excluded lower bound", () => {
  const epsilon = numberInRange(0, 100, { exclusiveMin: true });
  assertEquals(epsilon("0.5"), 0.5);
  for (const bad of ["0", "-1", "abc", "", "Infinity", "NaN", "101"]) {
    assertThrows(() => epsilon(bad), InvalidArgumentError, "greater than 0");
  }
});

Deno.test("oneOf names the valid choices", () => {
  const mode = oneOf(["splitfed", "fedavg"] as const);
  assertEquals(mode("fedavg"), "fedavg");
  assertThrows(() => mode("central"), InvalidArgumentError, "splitfed, fedavg");
});

Deno.test("listenAddress parses host:port, :port and [v6]:port", () => {
  assertEquals(listenAddress("127.0.0.1:7100"), { hostname: "127.0.0.1", port: 7100 });
  assertEquals(listenAddress(":0"), { hostname: "127.0.0.1", port: 0 });
  assertEquals(listenAddress("[::1]:80"), { hostname: "::1", port: 80 });
  for (const bad of ["7100", "host:", "host:abc", "host:65536", "a b:1"]) {
    assertThrows(() => listenAddress(bad), InvalidArgumentError, "HOST:PORT");
  }
});

Deno.test("commaList trims items and rejects an empty list", () => {
  assertEquals(commaList(" SrcMac, DstMac ,"), ["SrcMac", "DstMac"]);
  assertThrows(() => commaList(" , "), InvalidArgumentError);
});
