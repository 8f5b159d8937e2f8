// The edge's step order: furthest-first among waiting steps, arrival order on ties, one waiting
// step per device, a bound on the queue, and a failing step failing alone.
import assert from "node:assert/strict";
import { StepScheduler, StepSchedulerFull } from "../../../roles/edge/step_scheduler.ts";

Deno.test("waiting steps run furthest-first, ties in arrival order", async () => {
  const order: string[] = [];
  const scheduler = new StepScheduler<string>(8);
  const step = (key: string, priority: number) =>
    scheduler.submit(key, priority, () => {
      order.push(key);
      return key;
    });
  // Submitted in one turn: the scheduler chooses only after they are all queued.
  const done = [step("a", 1), step("b", 5), step("c", 1), step("d", 3)];
  assert.deepEqual(await Promise.all(done), ["a", "b", "c", "d"]);
  assert.deepEqual(order, ["b", "d", "a", "c"]);
});

Deno.test("a step arriving while another runs is chosen by priority with those waiting", async () => {
  const order: string[] = [];
  const scheduler = new StepScheduler<void>(8);
  let late: Promise<void> | undefined;
  const x = scheduler.submit("x", 0, () => void order.push("x"));
  const y = scheduler.submit("y", 1, () => {
    order.push("y");
    // Arrives while y runs; the next choice is between x (waiting, 0) and z (5).
    late = scheduler.submit("z", 5, () => void order.push("z"));
  });
  await Promise.all([x, y]);
  await late;
  assert.deepEqual(order, ["y", "z", "x"]);
});

Deno.test("one waiting step per device, a bound on all, and failures stay local", async () => {
  const scheduler = new StepScheduler<number>(2);
  const a = scheduler.submit("a", 0, () => 1);
  await assert.rejects(scheduler.submit("a", 0, () => 2), StepSchedulerFull);
  const b = scheduler.submit("b", 0, () => {
    throw new Error("bad frame from b");
  });
  await assert.rejects(scheduler.submit("c", 0, () => 3), /2 steps already waiting/);
  assert.equal(await a, 1);
  await assert.rejects(b, /bad frame from b/);
  assert.equal(await scheduler.submit("c", 0, () => 3), 3, "the pump goes on after a failure");
  assert.equal(scheduler.waiting, 0);
  assert.throws(() => new StepScheduler(0), /waitingMax 0/);
});
