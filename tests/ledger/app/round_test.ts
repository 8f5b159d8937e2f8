import assert from "node:assert/strict";
import {
  canonicalJson,
  createRng,
  encodeWeights,
  modelHash,
  type RoundEvaluation,
  type RoundRecord,
  sha256Hex,
  UpdateLedger,
  type UpdateTx,
} from "../../../ledger/app/mod.ts";
import {
  deviceIds,
  genesisFor,
  honestUpdate,
  randomGlobal,
  randomVector,
  submission,
} from "./synthetic.ts";

const P = 64;
// A proposal as it arrives off the wire: JSON a Byzantine proposer may have edited anywhere.
// deno-lint-ignore no-explicit-any
type Mutable = any;

function setup(seed = 1, n = 6, overrides = {}) {
  const rng = createRng(seed);
  const global = randomGlobal(rng, P);
  const direction = randomVector(rng, P, 1);
  const ids = deviceIds(n);
  const genesis = genesisFor(ids, global, overrides);
  const ledger = UpdateLedger.fromGenesis(genesis);
  ledger.openRound(1, global);
  return { rng, global, direction, ids, genesis, ledger };
}

Deno.test("a clean round: all honest accepted, global moves, record hashes to integers only", () => {
  const { rng, global, direction, ids, ledger } = setup();
  for (const id of ids) {
    const s = submission(id, 1, honestUpdate(rng, global, direction));
    assert.deepEqual(ledger.submitUpdate(s.tx, s.blob).admitted, true);
  }
  const record = ledger.propose(null);
  assert.equal(record.updates.length, 6);
  assert.ok(
    record.updates.every((u) => u.accepted),
    JSON.stringify(record.updates.map((u) => u.reasons)),
  );
  assert.equal(record.aggregation.ruleUsed, "trimmed-mean");
  assert.notEqual(record.aggregation.modelHash, record.baseModelHash);
  canonicalJson(record);
  const committed = ledger.commit(record);
  assert.equal(modelHash(committed.globalWeights), record.aggregation.modelHash);
  assert.equal(ledger.stateRoot(), record.stateRoot);
  assert.equal(ledger.state.lastClosedRound, 1);
  // Rewards: the whole pool is paid out.
  assert.equal(record.devices.reduce((s, d) => s + d.creditsEarned, 0), 1_000_000);
});

Deno.test("every bad input gets its reason and changes nothing but the recorded rejection list", () => {
  const { rng, global, direction, ids, ledger } = setup(2);
  const good = submission(ids[0], 1, honestUpdate(rng, global, direction));
  assert.equal(ledger.submitUpdate(good.tx, good.blob).admitted, true);
  const rootBefore = ledger.stateRoot();
  const updatesBefore = ledger.propose(null).updates;

  const w = honestUpdate(rng, global, direction);
  const ok = submission(ids[1], 1, w);
  const nan = Float32Array.from(w);
  nan[5] = NaN;
  const inf = Float32Array.from(w);
  inf[0] = Infinity;
  const short = encodeWeights(w.subarray(0, P - 1));
  const cases: [string, UpdateTx, Uint8Array, boolean][] = [
    ["bad_transaction", { ...ok.tx, deviceId: "bad id!" }, ok.blob, false],
    ["bad_transaction", { ...ok.tx, blobHash: "xyz" }, ok.blob, false],
    ["bad_transaction", { ...ok.tx, sampleCount: 1.5 }, ok.blob, false],
    ["unknown_device", { ...ok.tx, deviceId: "stranger" }, ok.blob, false],
    ["round_closed", { ...ok.tx, round: 0 }, ok.blob, true],
    ["round_not_open", { ...ok.tx, round: 2 }, ok.blob, true],
    ["duplicate_submission", { ...ok.tx, deviceId: ids[0] }, ok.blob, true],
    ["bad_sample_count", { ...ok.tx, deviceId: ids[2], sampleCount: 0 }, ok.blob, true],
    ["bad_base_round", { ...ok.tx, deviceId: ids[3], baseRound: 5 }, ok.blob, true],
    ["hash_mismatch", { ...ok.tx, blobHash: sha256Hex(short) }, ok.blob, false],
    ["wrong_shape", { ...ok.tx, deviceId: ids[4], blobHash: sha256Hex(short) }, short, true],
    ["non_finite", submission(ids[5], 1, nan).tx, encodeWeights(nan), true],
    ["duplicate_blob", { ...good.tx, deviceId: ids[1] }, good.blob, true],
  ];
  for (const [reason, tx, blob, recorded] of cases) {
    const r = ledger.submitUpdate(tx, blob);
    assert.equal(r.admitted, false, reason);
    if (!r.admitted) {
      assert.equal(r.reason, reason);
      assert.equal(r.recorded, recorded, `${reason} recorded`);
      assert.ok(r.detail.length > 0);
    }
  }
  // Penalized devices used their one submission this round: a later good tx is a duplicate.
  const late = submission(ids[5], 1, honestUpdate(rng, global, direction));
  const again = ledger.submitUpdate(late.tx, late.blob);
  assert.equal(again.admitted ? "admitted" : again.reason, "duplicate_submission");
  const infCase = ledger.submitUpdate(submission(ids[1], 1, inf).tx, encodeWeights(inf));
  assert.equal(infCase.admitted ? "" : infCase.reason, "duplicate_submission"); // ids[1] used by duplicate_blob

  assert.equal(ledger.stateRoot(), rootBefore);
  const record = ledger.propose(null);
  assert.deepEqual(record.updates, updatesBefore);
  assert.deepEqual(
    record.admissionRejections.map((r) => r.reason),
    [
      "round_closed",
      "round_not_open",
      "duplicate_submission",
      "bad_sample_count",
      "bad_base_round",
      "wrong_shape",
      "non_finite",
      "duplicate_blob",
      "duplicate_submission",
      "duplicate_submission",
    ],
  );
  // Penalized devices are counted as rejected in reputation; lateness and duplicates are not.
  assert.deepEqual(record.devices.map((d) => [d.deviceId, d.accepted]), [
    [ids[0], true],
    [ids[1], false],
    [ids[2], false],
    [ids[3], false],
    [ids[4], false],
    [ids[5], false],
  ]);
});

Deno.test("no open round, quarantined device and replayed blob are refused", () => {
  const { rng, global, direction, ids, genesis } = setup(3);
  const ledger = UpdateLedger.fromGenesis(genesis);
  const s = submission(ids[0], 1, honestUpdate(rng, global, direction));
  const r = ledger.submitUpdate(s.tx, s.blob);
  assert.equal(r.admitted ? "" : r.reason, "no_open_round");
  assert.throws(() => ledger.openRound(2, global), /next round is 1/);
  assert.throws(() => ledger.openRound(1, global.map((x) => x + 1)), /hashes to/);
  assert.throws(() => ledger.propose(null), /no round is open/);
  ledger.openRound(1, global);
  assert.throws(() => ledger.openRound(1, global), /still open/);
  // Round 1: every device honest; round 2: dev-00 replays its round-1 blob.
  const subs = ids.map((id) => submission(id, 1, honestUpdate(rng, global, direction)));
  for (const x of subs) ledger.submitUpdate(x.tx, x.blob);
  const { globalWeights } = ledger.commit(ledger.propose(null));
  ledger.openRound(2, globalWeights);
  const replay = ledger.submitUpdate({ ...subs[0].tx, round: 2, baseRound: 2 }, subs[0].blob);
  assert.equal(replay.admitted ? "" : replay.reason, "replayed_blob");
});

/** Drives rounds in which `bad` submits the global model back (a zero delta) while the others
 * are honest; returns the ledger and the records. */
function runRounds(rounds: number, badRounds: Set<number>, overrides = {}, readmitAt?: number) {
  const { rng, global: g0, direction, ids, ledger } = setup(4, 6, overrides);
  const bad = ids[5];
  const records: RoundRecord[] = [];
  let global = g0;
  for (let round = 1; round <= rounds; round++) {
    if (round > 1) ledger.openRound(round, global);
    if (readmitAt === round) assert.deepEqual(ledger.readmit(bad), { ok: true });
    for (const id of ids) {
      const w = id === bad && badRounds.has(round)
        ? Float32Array.from(global)
        : honestUpdate(rng, global, direction);
      const s = submission(id, round, w);
      ledger.submitUpdate(s.tx, s.blob);
    }
    const record = ledger.propose(null);
    records.push(record);
    global = ledger.commit(record).globalWeights;
  }
  return { ledger, records, bad };
}

Deno.test("two rejections quarantine; the quarantine is served; probation readmits", () => {
  const { ledger, records, bad } = runRounds(7, new Set([1, 2]), {
    quarantineRounds: 2,
    probationAcceptsRequired: 2,
  });
  const badIn = (r: RoundRecord) => r.updates.find((u) => u.deviceId === bad);
  assert.deepEqual(badIn(records[0])!.reasons, ["zero_delta", "norm_too_small", "cosine_too_low"]);
  // Beta reputation: after one rejection (0+1)/(0+1+2) = 1/3; after two, beta = 0.9 + 1 -> 1/3.9.
  assert.equal(records[0].devices.find((d) => d.deviceId === bad)!.reputationMicro, 333_333);
  assert.equal(records[1].devices.find((d) => d.deviceId === bad)!.reputationMicro, 256_410);
  assert.deepEqual(records[1].events, [{
    deviceId: bad,
    kind: "quarantined",
    reason: "reputation_below_threshold",
  }]);
  // Rounds 3 and 4: refused at admission (recorded, not penalized); end of round 4: probation.
  assert.equal(records[2].admissionRejections[0].reason, "quarantined");
  assert.equal(records[2].devices.some((d) => d.deviceId === bad), false);
  assert.deepEqual(records[3].events, [{
    deviceId: bad,
    kind: "probation",
    reason: "quarantine of 2 rounds served",
  }]);
  // Rounds 5 and 6 accepted on probation: readmitted after the second.
  assert.equal(badIn(records[4])!.accepted, true);
  assert.deepEqual(records[5].events, [{
    deviceId: bad,
    kind: "readmitted",
    reason: "probation_passed",
  }]);
  assert.equal(ledger.state.devices[bad].status, "active");
  assert.ok(ledger.state.devices[bad].credits > 0);
});

Deno.test("a rejection on probation quarantines again; admin readmission skips the wait", () => {
  const again = runRounds(6, new Set([1, 2, 5]), { quarantineRounds: 2 });
  assert.deepEqual(again.records[4].events, [{
    deviceId: again.bad,
    kind: "quarantined",
    reason: "rejected_on_probation",
  }]);
  const admin = runRounds(4, new Set([1, 2]), { quarantineRounds: 100 }, 3);
  assert.equal(admin.records[2].updates.find((u) => u.deviceId === admin.bad)!.accepted, true);
  assert.deepEqual(admin.records[3].events, [{
    deviceId: admin.bad,
    kind: "readmitted",
    reason: "probation_passed",
  }]);
  assert.equal(admin.ledger.state.devices[admin.bad].status, "active");
  assert.equal(admin.ledger.readmit(admin.bad).ok, false);
  assert.equal(admin.ledger.readmit("stranger").ok, false);
});

Deno.test("an admin quarantine holds until readmitted: never served out, no penalty", () => {
  const { rng, global: g0, direction, ids, ledger } = setup(3, 6, { quarantineRounds: 1 });
  const target = ids[2];
  assert.deepEqual(ledger.quarantine(target), { ok: true });
  assert.equal(ledger.quarantine(target).ok, false, "already quarantined");
  assert.equal(ledger.quarantine("stranger").ok, false);
  const reputationBefore = ledger.state.devices[target].alphaMicro;
  let global = g0;
  const records: RoundRecord[] = [];
  for (let round = 1; round <= 4; round++) {
    if (round > 1) ledger.openRound(round, global);
    if (round === 4) assert.deepEqual(ledger.readmit(target), { ok: true });
    for (const id of ids) {
      const s = submission(id, round, honestUpdate(rng, global, direction));
      ledger.submitUpdate(s.tx, s.blob);
    }
    const record = ledger.propose(null);
    records.push(record);
    global = ledger.commit(record).globalWeights;
  }
  for (const record of records.slice(0, 3)) {
    assert.deepEqual(
      record.admissionRejections.filter((r) => r.deviceId === target).map((r) => r.reason),
      ["quarantined"],
    );
    assert.equal(record.updates.some((u) => u.deviceId === target), false);
    assert.equal(record.events.some((e) => e.deviceId === target), false, "no automatic probation");
  }
  assert.equal(records[3].updates.find((u) => u.deviceId === target)!.accepted, true);
  assert.equal(ledger.state.devices[target].status, "probation");
  assert.equal(ledger.state.devices[target].alphaMicro > reputationBefore, true);
});

function evaluationFor(record: RoundRecord, loss: (id: string) => number): RoundEvaluation {
  return {
    global: { lossMicro: 1_000_000, accuracyMicro: 800_000 },
    updates: Object.fromEntries(
      record.updates.map((
        u,
      ) => [u.deviceId, { lossMicro: loss(u.deviceId), accuracyMicro: 800_000 }]),
    ),
  };
}

Deno.test("replicas decide on the proposer's numbers once within tolerance: a borderline score cannot split them", () => {
  const { rng, global, direction, ids, genesis, ledger: proposer } = setup(5);
  const replica = UpdateLedger.fromGenesis(genesis);
  replica.openRound(1, global);
  for (const id of ids) {
    const s = submission(id, 1, honestUpdate(rng, global, direction));
    proposer.submitUpdate(s.tx, s.blob);
    replica.submitUpdate(s.tx, s.blob);
  }
  const shape = proposer.propose(null);
  // dev-00 sits exactly on the loss threshold (+0.25): accepted (rule is "more than").
  const mine = evaluationFor(shape, (id) => (id === ids[0] ? 1_250_000 : 900_000));
  const record = proposer.propose(mine);
  assert.equal(record.updates[0].accepted, true);
  // The replica measured 0.0005 more: by its own numbers it would reject, but it is within the
  // 0.001 tolerance, so it checks the proposer's numbers and agrees.
  const near = evaluationFor(shape, (id) => (id === ids[0] ? 1_250_500 : 900_300));
  assert.deepEqual(replica.verify(record, near), { ok: true });
  // Beyond tolerance: refuse (-> view change).
  const far = evaluationFor(shape, (id) => (id === ids[0] ? 1_252_000 : 900_000));
  const refused = replica.verify(record, far);
  assert.equal(refused.ok, false);
  assert.match((refused as { reason: string }).reason, /dev-00: loss 1250000 vs own 1252000/);
  assert.equal(replica.verify(record, null).ok, false);
  assert.equal(replica.verify(shape, near).ok, false);
  // An outvoted replica still commits the certified record bit-exactly.
  const a = proposer.commit(record);
  const b = replica.commit(record);
  assert.equal(a.globalModelHash, b.globalModelHash);
  assert.equal(proposer.stateRoot(), replica.stateRoot());
});

Deno.test("a tampered proposal is refused with the path that differs", () => {
  const { rng, global, direction, ids, genesis, ledger: proposer } = setup(6);
  const replica = UpdateLedger.fromGenesis(genesis);
  replica.openRound(1, global);
  const bad = Float32Array.from(global);
  for (const id of ids) {
    const s = submission(id, 1, id === ids[2] ? bad : honestUpdate(rng, global, direction));
    proposer.submitUpdate(s.tx, s.blob);
    replica.submitUpdate(s.tx, s.blob);
  }
  const record = proposer.propose(null);
  assert.deepEqual(replica.verify(JSON.parse(JSON.stringify(record)), null), { ok: true });
  const tamper = (f: (r: Mutable) => void) => {
    const copy = JSON.parse(JSON.stringify(record));
    f(copy);
    return replica.verify(copy, null);
  };
  const cases: [string, (r: Mutable) => void][] = [
    ["$.updates[2].accepted", (r) => (r.updates[2].accepted = true)],
    ["$.updates[2].reasons.length", (r) => (r.updates[2].reasons = [])],
    ["$.updates[0].scores.cosineMicro", (r) => (r.updates[0].scores.cosineMicro += 1)],
    ["$.aggregation.modelHash", (r) => (r.aggregation.modelHash = "0".repeat(64))],
    ["$.devices[0].creditsEarned", (r) => (r.devices[0].creditsEarned += 1)],
    ["$.stateRoot", (r) => (r.stateRoot = "f".repeat(64))],
  ];
  for (const [path, f] of cases) {
    assert.deepEqual(tamper(f), { ok: false, reason: `proposal differs at ${path}` });
  }
  assert.equal(tamper((r) => (r.round = 9)).ok, false);
  assert.equal(tamper((r) => (r.updates = 5)).ok, false);
  assert.throws(
    () => replica.commit({ ...record, stateRoot: "f".repeat(64) }),
    /cannot be reproduced/,
  );
  assert.equal(replica.openRoundNumber, 1); // a refused commit changes nothing
});

Deno.test("state survives a restart and refuses another genesis", () => {
  const { ledger, records } = runRounds(2, new Set());
  const { genesis } = setup(4);
  const restored = UpdateLedger.fromState(genesis, ledger.state);
  assert.equal(restored.stateRoot(), records[1].stateRoot);
  assert.throws(
    () =>
      UpdateLedger.fromState(
        { ...genesis, params: { ...genesis.params, minCosineMicro: 0 } },
        ledger.state,
      ),
    /other genesis/,
  );
});

Deno.test("an evaluation that rejects: loss and accuracy rules, and requireEvaluation", () => {
  const { rng, global, direction, ids, ledger } = setup(7, 6, { requireEvaluation: true });
  for (const id of ids) {
    const s = submission(id, 1, honestUpdate(rng, global, direction));
    ledger.submitUpdate(s.tx, s.blob);
  }
  assert.ok(ledger.propose(null).updates.every((u) => u.reasons.includes("not_evaluated")));
  const shape = ledger.propose(null);
  const ev = evaluationFor(shape, (id) => (id === ids[1] ? 1_300_000 : 900_000));
  (ev.updates as Record<string, { lossMicro: number; accuracyMicro: number }>)[ids[2]] = {
    lossMicro: 900_000,
    accuracyMicro: 650_000,
  };
  const record = ledger.propose(ev);
  assert.deepEqual(record.updates.map((u) => u.reasons), [
    [],
    ["loss_too_high"],
    ["accuracy_too_low"],
    [],
    [],
    [],
  ]);
  assert.throws(() => ledger.propose({ global: ev.global, updates: {} }), /0 update evaluations/);
});

Deno.test("evaluateRound calls the injected evaluator and quantizes", async () => {
  const { rng, global, direction, ids, ledger } = setup(8, 3);
  for (const id of ids) {
    const s = submission(id, 1, honestUpdate(rng, global, direction));
    ledger.submitUpdate(s.tx, s.blob);
  }
  let calls = 0;
  const ev = await ledger.evaluateRound((w) => {
    calls++;
    return Promise.resolve({ loss: w[0] === global[0] ? 0.5 : NaN, accuracy: 0.1234567 });
  });
  assert.equal(calls, 4);
  assert.deepEqual(ev.global, { lossMicro: 500_000, accuracyMicro: 123_457 });
  assert.equal(ev.updates[ids[0]].lossMicro, Number.MAX_SAFE_INTEGER);
  assert.ok(ledger.propose(ev).updates.every((u) => u.reasons.includes("loss_too_high")));
});

Deno.test("limits: a full round refuses more updates; genesis is checked", () => {
  const { rng, global, direction, ids, ledger } = setup(9, 3, { updatesPerRoundMax: 2 });
  const results = ids.map((id) => {
    const s = submission(id, 1, honestUpdate(rng, global, direction));
    const r = ledger.submitUpdate(s.tx, s.blob);
    return r.admitted ? "admitted" : r.reason;
  });
  assert.deepEqual(results, ["admitted", "admitted", "round_full"]);
  const g = genesisFor(ids, global);
  assert.throws(() => UpdateLedger.fromGenesis({ ...g, devices: [] }), /0 devices/);
  assert.throws(() => UpdateLedger.fromGenesis({ ...g, devices: ["a", "a"] }), /listed twice/);
  assert.throws(() => UpdateLedger.fromGenesis({ ...g, devices: ["no spaces"] }), /bad device id/);
  assert.throws(
    () => UpdateLedger.fromGenesis({ ...g, initialModelHash: "abc" }),
    /initialModelHash/,
  );
});

Deno.test("a lone update has no direction to compare: judged on norm and evaluation only", () => {
  const { rng, global, direction, ids, ledger } = setup(10, 1);
  const s = submission(ids[0], 1, honestUpdate(rng, global, direction));
  ledger.submitUpdate(s.tx, s.blob);
  const record = ledger.propose(null);
  assert.equal(record.updates[0].scores.cosineMicro, null);
  assert.equal(record.updates[0].accepted, true);
  assert.equal(record.aggregation.ruleUsed, "trimmed-mean");
  assert.equal(record.devices[0].creditsEarned, 1_000_000);
});

Deno.test("golden: one seeded multi-krum round hashes the same on every engine", () => {
  // Same values under Bun 1.4.5 (JavaScriptCore) and Deno 2.9.6 (V8). A change here is a change
  // of the consensus algorithm: every validator must upgrade together.
  const rng = createRng(42);
  const g = randomGlobal(rng, 200);
  const dir = randomVector(rng, 200, 1);
  const ids = deviceIds(10);
  const ledger = UpdateLedger.fromGenesis(genesisFor(ids, g, { aggregationRule: "multi-krum" }));
  ledger.openRound(1, g);
  for (const id of ids) {
    const s = submission(id, 1, honestUpdate(rng, g, dir));
    ledger.submitUpdate(s.tx, s.blob);
  }
  const record = ledger.propose(null);
  assert.equal(
    record.aggregation.modelHash,
    "63c0c6ec355accac3aaecffb0c41f75e951c4cf01af43dbcfa5cca58aa4ba489",
  );
  assert.equal(
    record.stateRoot,
    "fe1ad32572ea4035a5b88285d384c63cad5047313ccad23898a0913fe5d27922",
  );
});

Deno.test("a null or non-object transaction is refused, not thrown on", () => {
  const { ledger } = setup(11, 2);
  for (const tx of [null, undefined, 5, "tx", {}]) {
    const r = ledger.submitUpdate(tx as never, new Uint8Array(4));
    assert.equal(r.admitted ? "" : r.reason, "bad_transaction");
  }
  const r = ledger.submitUpdate({
    deviceId: "dev-00",
    round: 1,
    baseRound: 1,
    blobHash: "0".repeat(64),
    sampleCount: 1,
  }, null as never);
  assert.equal(r.admitted ? "" : r.reason, "bad_transaction");
});
