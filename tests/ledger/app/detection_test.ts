// Flagging precision/recall of the default accept rules against the update-level attacks, over
// many seeded rounds at 30 % malicious, and how far each aggregate lands from the honest mean.
// Reproduce one trial: seed = BASE_SEED + trial (printed on failure).
import assert from "node:assert/strict";
import {
  aggregate,
  type AggregationRule,
  attackRound,
  createRng,
  DEFAULT_PARAMS,
  deltaOf,
  fedAvg,
  freeRider,
  gaussian,
  l2Norm,
  pickMalicious,
  type Rng,
  scale,
  signFlip,
  sybil,
  type UpdateAttackKind,
  UpdateLedger,
} from "../../../ledger/app/mod.ts";
import {
  deviceIds,
  genesisFor,
  honestUpdate,
  randomGlobal,
  randomVector,
  submission,
} from "./synthetic.ts";

const P = 400;
const DEVICES = 20;
const MALICIOUS = 0.3;
const TRIALS = 30;
const BASE_SEED = 1000;

interface Trial {
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  trueNegatives: number;
  /** ||aggregate - honest FedAvg|| / ||honest FedAvg|| for the pipeline and for plain rules on all updates. */
  distance: Record<string, number>;
}

function attackWeights(
  kind: UpdateAttackKind,
  rng: Rng,
  global: Float32Array,
  honest: Float32Array[],
  count: number,
  direction: Float64Array,
): Float32Array[] {
  switch (kind) {
    case "sign-flip":
      return honest.slice(0, count).map((h) => signFlip(global, h));
    case "scale":
      return honest.slice(0, count).map((h) => scale(global, h, 10));
    case "gaussian": // same norm as an honest step, no direction
      return Array.from({ length: count }, () => gaussian(global, Math.SQRT2 / Math.sqrt(P), rng));
    case "free-rider": // global back with noise 1e-4 of an honest step: dodges the duplicate-blob check
      return Array.from({ length: count }, () => freeRider(global, rng, 1e-4 / Math.sqrt(P)));
    case "sybil": { // colluders push one stealthy target: half the honest step plus a backdoor direction
      const backdoor = randomVector(rng, P, 1);
      const chosen = global.map((g, j) => g + 0.5 * direction[j] + backdoor[j]);
      return sybil(global, chosen, count, 1e-3, rng);
    }
  }
}

function runTrial(kind: UpdateAttackKind, seed: number): Trial {
  const rng = createRng(seed);
  const global = randomGlobal(rng, P);
  const direction = randomVector(rng, P, 1);
  const ids = deviceIds(DEVICES);
  const malicious = pickMalicious(ids, MALICIOUS, rng);
  const samples = new Map(ids.map((id) => [id, 50 + rng.int(450)]));
  const honestFor = new Map(ids.map((id) => [id, honestUpdate(rng, global, direction)]));
  const bad = [...malicious].sort();
  const attacked = attackWeights(
    kind,
    rng,
    global,
    bad.map((id) => honestFor.get(id)!),
    bad.length,
    direction,
  );
  const weights = new Map(
    ids.map((id) => [id, malicious.has(id) ? attacked[bad.indexOf(id)] : honestFor.get(id)!]),
  );

  const ledger = UpdateLedger.fromGenesis(genesisFor(ids, global));
  ledger.openRound(1, global);
  // Ledger order: a seeded shuffle, so sybil copies are not always last.
  const order = [...ids].sort(() => rng.next() - 0.5);
  for (const id of order) {
    const s = submission(id, 1, weights.get(id)!, samples.get(id)!);
    const r = ledger.submitUpdate(s.tx, s.blob);
    assert.equal(r.admitted, true, `seed ${seed}: ${id} not admitted`);
  }
  const record = ledger.propose(null);
  const t: Trial = {
    truePositives: 0,
    falsePositives: 0,
    falseNegatives: 0,
    trueNegatives: 0,
    distance: {},
  };
  for (const u of record.updates) {
    const flagged = !u.accepted;
    if (malicious.has(u.deviceId)) flagged ? t.truePositives++ : t.falseNegatives++;
    else flagged ? t.falsePositives++ : t.trueNegatives++;
  }

  const honestMean = fedAvg(
    ids.filter((id) => !malicious.has(id)).map((id) => ({
      deviceId: id,
      delta: deltaOf(honestFor.get(id)!, global),
      sampleCount: samples.get(id)!,
    })),
  );
  const scaleNorm = l2Norm(honestMean);
  const distanceTo = (delta: Float64Array) => {
    let s = 0;
    for (let j = 0; j < P; j++) s += (delta[j] - honestMean[j]) ** 2;
    return Math.sqrt(s) / scaleNorm;
  };
  const next = ledger.commit(record).globalWeights;
  t.distance["pipeline"] = distanceTo(deltaOf(next, global));
  const all = ids.map((id) => ({
    deviceId: id,
    delta: deltaOf(weights.get(id)!, global),
    sampleCount: samples.get(id)!,
  }));
  const options = {
    ...DEFAULT_PARAMS,
    krumByzantine: bad.length,
    multiKrumSelect: DEVICES - 2 * bad.length,
  };
  const honestOnly = all.filter((u) => !malicious.has(u.deviceId));
  for (const rule of ["fedavg", "median", "trimmed-mean", "multi-krum"] as AggregationRule[]) {
    const settings = { ...options, trimFractionMicro: 300_000 };
    t.distance[rule] = distanceTo(aggregate(all, rule, settings).delta);
    // The same rule on the honest updates alone: its own estimation error, which is not drag.
    t.distance[`${rule}@clean`] = distanceTo(
      aggregate(honestOnly, rule, { ...settings, krumByzantine: 0 }).delta,
    );
  }
  return t;
}

const ATTACKS: UpdateAttackKind[] = ["sign-flip", "scale", "gaussian", "free-rider", "sybil"];
const results = new Map<
  UpdateAttackKind,
  { precision: number; recall: number; falsePositiveRate: number; distance: Record<string, number> }
>();

function measure(kind: UpdateAttackKind) {
  const cached = results.get(kind);
  if (cached) return cached;
  let tp = 0, fp = 0, fn = 0, tn = 0;
  const distance: Record<string, number> = {};
  for (let trial = 0; trial < TRIALS; trial++) {
    const t = runTrial(kind, BASE_SEED + trial);
    tp += t.truePositives;
    fp += t.falsePositives;
    fn += t.falseNegatives;
    tn += t.trueNegatives;
    for (const [k, v] of Object.entries(t.distance)) distance[k] = (distance[k] ?? 0) + v / TRIALS;
  }
  const r = {
    precision: tp / Math.max(1, tp + fp),
    recall: tp / Math.max(1, tp + fn),
    falsePositiveRate: fp / Math.max(1, fp + tn),
    distance,
  };
  results.set(kind, r);
  return r;
}

const RECALL_MIN: Record<UpdateAttackKind, number> = {
  "sign-flip": 0.9,
  scale: 0.9,
  gaussian: 0.9,
  "free-rider": 0.9,
  sybil: 0.8,
};

for (const kind of ATTACKS) {
  Deno.test(`${kind} at 30 % malicious: flagged with precision >= 0.95 and recall >= ${RECALL_MIN[kind]}`, () => {
    const r = measure(kind);
    const msg = `${kind}: ${JSON.stringify(r)} (trials ${TRIALS}, seeds ${BASE_SEED}..${
      BASE_SEED + TRIALS - 1
    }; rerun: deno test --allow-all tests/ledger/app/detection_test.ts)`;
    assert.ok(r.recall >= RECALL_MIN[kind], msg);
    assert.ok(r.precision >= 0.95, msg);
    assert.ok(r.falsePositiveRate <= 0.02, msg);
  });
}

Deno.test("plain FedAvg is dragged by sign-flip and scale; the filtered pipeline and robust rules are not", () => {
  for (const kind of ["sign-flip", "scale"] as const) {
    const d = measure(kind).distance;
    assert.ok(d["fedavg"] > 0.5, `${kind}: fedavg distance ${d["fedavg"]}`);
    assert.ok(d["pipeline"] < d["fedavg"] / 3, `${kind}: ${JSON.stringify(d)}`);
    // Drag = distance with the attack minus the rule's own error on the honest updates alone.
    const drag = (rule: string) => d[rule] - d[`${rule}@clean`];
    for (const rule of ["median", "trimmed-mean", "multi-krum"]) {
      assert.ok(
        drag(rule) < drag("fedavg") / 2,
        `${kind}: ${rule} drag ${drag(rule)} vs fedavg ${drag("fedavg")}`,
      );
    }
  }
});

Deno.test("detection table", () => {
  const rows = ATTACKS.map((kind) => {
    const r = measure(kind);
    const d = Object.entries(r.distance).map(([k, v]) => `${k}=${v.toFixed(3)}`).join(" ");
    return `${kind.padEnd(11)} precision=${r.precision.toFixed(3)} recall=${
      r.recall.toFixed(3)
    } fpr=${r.falsePositiveRate.toFixed(3)} | distance to honest mean: ${d}`;
  });
  console.log(
    `\n${DEVICES} devices, ${
      MALICIOUS * 100
    } % malicious, ${P} parameters, ${TRIALS} seeded trials per attack\n${rows.join("\n")}`,
  );
});

Deno.test("no attack, noisier honest updates (noise twice the common step): false-positive rate <= 2 %", () => {
  let flagged = 0, total = 0;
  for (let trial = 0; trial < 10; trial++) {
    const rng = createRng(BASE_SEED + 500 + trial);
    const global = randomGlobal(rng, P);
    const direction = randomVector(rng, P, 1);
    const ids = deviceIds(DEVICES);
    const ledger = UpdateLedger.fromGenesis(genesisFor(ids, global));
    ledger.openRound(1, global);
    for (const id of ids) {
      const s = submission(id, 1, honestUpdate(rng, global, direction, 2), 50 + rng.int(450));
      ledger.submitUpdate(s.tx, s.blob);
    }
    for (const u of ledger.propose(null).updates) {
      total++;
      if (!u.accepted) flagged++;
    }
  }
  assert.ok(
    flagged / total <= 0.02,
    `${flagged} of ${total} honest updates flagged (seeds ${BASE_SEED + 500}..)`,
  );
});

Deno.test("six rounds of persistent sign-flippers: all quarantined after round 2, no honest device ever", () => {
  const rng = createRng(BASE_SEED + 900);
  let global = randomGlobal(rng, P);
  const direction = randomVector(rng, P, 1);
  const ids = deviceIds(DEVICES);
  const malicious = pickMalicious(ids, MALICIOUS, rng);
  const ledger = UpdateLedger.fromGenesis(genesisFor(ids, global));
  for (let round = 1; round <= 6; round++) {
    ledger.openRound(round, global);
    const honest = new Map(ids.map((id) => [id, honestUpdate(rng, global, direction)]));
    const submitted = attackRound("sign-flip", global, honest, malicious, rng);
    for (const id of ids) {
      const s = submission(id, round, submitted.get(id)!, 100);
      ledger.submitUpdate(s.tx, s.blob);
    }
    global = ledger.commit(ledger.propose(null)).globalWeights;
    const quarantined = ids.filter((id) => ledger.state.devices[id].status === "quarantined");
    if (round >= 2) assert.deepEqual(quarantined, [...malicious].sort(), `round ${round}`);
  }
  // Honest devices earned every credit paid out.
  const credits = (id: string) => ledger.state.devices[id].credits;
  assert.equal(ids.filter((id) => malicious.has(id)).reduce((s, id) => s + credits(id), 0), 0);
  assert.equal(ids.reduce((s, id) => s + credits(id), 0), 6 * DEFAULT_PARAMS.rewardPerRoundCredits);
});
