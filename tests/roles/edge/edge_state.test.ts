// The edge's durable round state: a resumed edge continues after the last aggregated round, and
// a round aggregated but not yet reported (its evaluation runs during the next round) is owed.
import { assertEquals, assertThrows } from "../../assert.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadEdgeState, saveEdgeState } from "../../../roles/edge/edge_state.ts";
import type { RoundTraining } from "../../../ml/train/loop.ts";

const root = mkdtempSync(join(tmpdir(), "iomt-edge-state-"));
globalThis.addEventListener("unload", () => rmSync(root, { recursive: true, force: true }));
const model = { device: Float32Array.from([1, 2, 3]), edge: Float32Array.from([4, 5]) };
const training: RoundTraining = {
  round: 2,
  mode: "splitfed-v1",
  trainLoss: 0.25,
  samples: 100,
  seconds: 3.5,
  numTensors: 9,
  rssMB: 100,
  peakRssMB: 120,
  privacy: null,
};

Deno.test("edge state: an unreported round survives a restart until it is reported", () => {
  const dir = join(root, "a");
  assertEquals(loadEdgeState(dir, "k"), null);
  saveEdgeState(dir, "k", 3, model, { ...training, extra: { consensusSeconds: 0.4 } });
  const resumed = loadEdgeState(dir, "k")!;
  assertEquals(resumed.roundsDone, 3);
  assertEquals(resumed.model, model);
  assertEquals(resumed.unreported, { ...training, extra: { consensusSeconds: 0.4 } });
  saveEdgeState(dir, "k", 3, model); // reported
  assertEquals(loadEdgeState(dir, "k")!.unreported, undefined);
});

Deno.test("edge state: refuses an unreported round that is not the last one done", () => {
  const dir = join(root, "b");
  assertThrows(
    () => saveEdgeState(dir, "k", 5, model, training),
    Error,
    "unreported round 2 is not the last one done",
  );
  saveEdgeState(dir, "k", 3, model, training);
  const path = join(dir, "edge-state.json");
  const state = JSON.parse(readFileSync(path, "utf8"));
  writeFileSync(path, JSON.stringify({ ...state, roundsDone: 4 }));
  assertThrows(() => loadEdgeState(dir, "k"), Error, "unreported round 2 is not the last one done");
  writeFileSync(path, JSON.stringify(state));
  assertThrows(() => loadEdgeState(dir, "other"), Error, "belongs to another trial configuration");
});
