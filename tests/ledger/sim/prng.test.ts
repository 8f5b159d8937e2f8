// The simulator's PRNG: same seed, same stream; different seeds, different streams; roughly uniform.
import { assert, assertEquals, assertNotEquals } from "../../assert.ts";
import { Prng } from "../../../ledger/sim/prng.ts";

Deno.test("prng: a seed fixes the whole stream", () => {
  const draw = (seed: number) => {
    const random = new Prng(seed);
    return [...Array(16)].map(() => random.nextU32());
  };
  assertEquals(draw(42), draw(42));
  assertNotEquals(draw(42), draw(43));
  assert(draw(0).some((value) => value !== 0), "seed 0 still yields a non-zero stream");
});

Deno.test("prng: int and range stay in bounds and cover them", () => {
  const random = new Prng(7);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) counts[random.int(10)]++;
  for (const count of counts) assert(count > 850 && count < 1150, `bucket count ${count}`);
  for (let i = 0; i < 1000; i++) {
    const value = random.range(3, 5);
    assert(value >= 3 && value <= 5);
  }
});

Deno.test("prng: forks are independent of later draws in the parent", () => {
  const a = new Prng(9), b = new Prng(9);
  const forkA = a.fork(), forkB = b.fork();
  a.nextU32();
  assertEquals(forkA.nextU32(), forkB.nextU32());
});
