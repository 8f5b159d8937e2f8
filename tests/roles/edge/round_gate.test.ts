import assert from "node:assert/strict";
import { type GateState, RoundGate } from "../../../roles/edge/round_gate.ts";

/** Runs `rounds` rounds through the gate the way trainRounds does; returns the rounds started. */
async function drive(gate: RoundGate, rounds: number, started: number[], waited: number[]) {
  for (let round = 0; round < rounds; round++) {
    await gate.beforeRound(round, (r) => waited.push(r));
    started.push(round);
  }
}

Deno.test("stop during a round: it completes, the next waits until start", async () => {
  const states: GateState[] = [];
  const gate = new RoundGate((s) => states.push(s));
  const started: number[] = [], waited: number[] = [];
  await gate.beforeRound(0, (r) => waited.push(r)); // round 0 running
  assert.deepEqual(gate.stop(), {
    accepted: true,
    message: "stopping: the round in progress completes, then the trial pauses",
  });
  assert.equal(gate.state, "stopping");
  assert.equal(gate.stop().accepted, false, "a second stop is refused");
  const next = gate.beforeRound(1, (r) => waited.push(r)).then(() => started.push(1));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(started, [], "round 1 must not start while paused");
  assert.deepEqual(waited, [1]);
  assert.equal(gate.state, "paused");
  assert.equal(gate.start().accepted, true);
  await next;
  assert.deepEqual(started, [1]);
  assert.deepEqual(states, ["stopping", "paused", "running"]);
});

Deno.test("start with a round budget runs that many rounds, then pauses again", async () => {
  const gate = new RoundGate();
  assert.equal(gate.start().accepted, false, "already running");
  assert.equal(gate.start(0).accepted, false);
  assert.equal(gate.start(1.5).accepted, false);
  assert.equal(gate.start(2).accepted, true);
  const started: number[] = [], waited: number[] = [];
  const run = drive(gate, 5, started, waited);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(started, [0, 1]);
  assert.deepEqual(waited, [2]);
  assert.equal(gate.state, "paused");
  gate.start();
  await run;
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
});

Deno.test("a paused gate gives way to an abort: the trial stops instead of hanging", async () => {
  const gate = new RoundGate();
  assert.equal(gate.stop().message, "paused before the next round");
  const controller = new AbortController();
  const wait = gate.beforeRound(0, () => {}, controller.signal);
  controller.abort(new Error("edge stopped by signal"));
  await assert.rejects(wait, /edge stopped by signal/);
});

Deno.test("holdsNextRound says ahead whether the next round will wait for a start", async () => {
  const gate = new RoundGate();
  assert.equal(gate.holdsNextRound, false);
  await gate.beforeRound(0, () => {});
  gate.stop();
  assert.equal(gate.state, "stopping");
  assert.equal(gate.holdsNextRound, true);
  const next = gate.beforeRound(1, () => {});
  gate.start(1);
  await next;
  assert.equal(gate.holdsNextRound, true, "the budget of one round is used up");
  gate.start();
  assert.equal(gate.holdsNextRound, false);
});
