// bench train's interleaved protocol: paired ratios and their summary (bench/stats.ts), the row
// built from paired runs (summarizeRow), and the PyTorch server client (TorchServer): the real
// torch_reference.py --serve, and fake servers that crash, answer garbage, fail or never answer.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { pairedRatios, summarizePaired } from "../../bench/stats.ts";
import { type PairedRun, summarizeRow, TorchServer } from "../../bench/train.ts";

const PYTHON = "/usr/bin/python3";

Deno.test("pairedRatios: median and range of a[i] / b[i], mismatches refused", () => {
  const p = pairedRatios([10, 30, 20, 8], [10, 10, 10, 4]);
  assert.deepEqual(p.ratios, [1, 3, 2, 2]);
  assert.equal(p.median, 2);
  assert.equal(p.min, 1);
  assert.equal(p.max, 3);
  // Not the ratio of the medians: a drift common to both sides cancels pair by pair.
  const drift = pairedRatios([100, 50, 200], [50, 25, 100]);
  assert.equal(drift.median, 2);
  assert.equal(drift.min, 2);
  assert.throws(() => pairedRatios([1, 2], [1]), /2 values against 1/);
  assert.throws(() => pairedRatios([], []), /no pairs/);
  assert.throws(() => pairedRatios([1], [0]), /pair 0 is 1 \/ 0/);
  assert.throws(() => pairedRatios([NaN], [1]), /pair 0/);
});

Deno.test("summarizePaired: per repetition the fastest thread count, CPU ratio against 1 thread", () => {
  const runs = [{ wall: 100, cpu: 50 }, { wall: 60, cpu: 30 }, { wall: 90, cpu: 45 }];
  const s = summarizePaired(runs, [
    { threads: 1, runs: [{ wall: 50, cpu: 50 }, { wall: 60, cpu: 60 }, { wall: 30, cpu: 30 }] },
    { threads: 2, runs: [{ wall: 80, cpu: 40 }, { wall: 20, cpu: 10 }, { wall: 45, cpu: 20 }] },
  ]);
  assert.equal(s.wall, 90);
  assert.equal(s.cpu, 45);
  const ref = s.reference!;
  // fastest per repetition: 80 (2t), 60 (1t), 45 (2t)
  assert.deepEqual(ref.ratio.ratios, [1.25, 1, 2]);
  assert.equal(ref.ratio.median, 1.25);
  assert.equal(ref.wall, 60);
  assert.equal(ref.threads, 2);
  assert.equal(ref.wins, 2);
  assert.equal(ref.cpu, 50);
  assert.deepEqual(ref.cpuRatio!.ratios, [1, 0.5, 1.5]);
  // Without a 1-thread reference there is no CPU ratio; without any reference, no ratio at all.
  const only2 = summarizePaired(runs, [{ threads: 2, runs: runs }]);
  assert.equal(only2.reference!.cpuRatio, undefined);
  assert.equal(only2.reference!.ratio.median, 1);
  assert.equal(summarizePaired(runs, []).reference, undefined);
  assert.throws(
    () => summarizePaired(runs, [{ threads: 1, runs: runs.slice(1) }]),
    /3 runs against 2 with 1 threads/,
  );
});

Deno.test("summarizeRow: row fields from paired runs, with and without PyTorch", () => {
  const pair = (tfjs: number, t1: number, t2: number): PairedRun => ({
    tfjs: { wall: tfjs, cpu: tfjs / 2 },
    torch: [{ threads: 1, wall: t1, cpu: t1 }, { threads: 2, wall: t2, cpu: t2 / 2 }],
  });
  const row = summarizeRow(
    256,
    [pair(100, 50, 40), pair(120, 60, 100), pair(90, 45, 30)],
    [pair(400, 200, 100), pair(300, 300, 100), pair(500, 250, 100)],
  );
  assert.equal(row.batch, 256);
  assert.equal(row.tfjsTrain, 100);
  assert.deepEqual(row.tfjsTrainRuns, [100, 120, 90]);
  assert.equal(row.torchTrain, 50);
  assert.equal(row.torchTrainThreads, 1);
  assert.equal(row.torchTrainWins, 2);
  assert.deepEqual(row.trainRatio!.ratios, [2, 1.2, 2]);
  assert.equal(row.trainRatio!.median, 2);
  assert.equal(row.tfjsTrainCpu, 50);
  assert.equal(row.torchTrainCpu, 50);
  assert.deepEqual(row.trainCpuRatio!.ratios, [1, 1, 1]);
  assert.deepEqual(row.inferRatio!.ratios, [2, 1, 2]);
  assert.equal(row.torchInfer, 250);
  assert.equal(row.torchInferThreads, 1);
  assert.deepEqual(row.tfjsInferRuns, [400, 300, 500]);

  const tfjsOnly = summarizeRow(64, [{ tfjs: { wall: 5, cpu: 4 }, torch: [] }], [{
    tfjs: { wall: 7, cpu: 6 },
    torch: [],
  }]);
  assert.equal(tfjsOnly.tfjsTrain, 5);
  assert.equal(tfjsOnly.torchTrain, undefined);
  assert.equal(tfjsOnly.trainRatio, undefined);
  assert.equal(tfjsOnly.tfjsInferCpu, 6);
});

/** A fake server: prints the ready line, then runs `body` (python, `line` = the command read). */
function fake(body: string): Promise<TorchServer> {
  const script = [
    "import sys, json, time",
    'print(json.dumps(dict(ready=True, runtime="fake", threads=1)), flush=True)',
    "for line in sys.stdin:",
    ...body.split("\n").map((l) => "    " + l),
  ].join("\n");
  return TorchServer.start("fake server", PYTHON, ["-c", script], 10);
}

const hasPython = existsSync(PYTHON);

Deno.test({
  name: "TorchServer: crash, bad JSON, error reply and timeout reject naming the command",
  ignore: !hasPython,
  fn: async () => {
    const crash = await fake('sys.stderr.write("boom\\n"); sys.exit(3)');
    await assert.rejects(
      () => crash.run("train", 64, 0.1, 10),
      (e: Error) =>
        /fake server: exited \(code 3\) while waiting for the reply to "train 64 0.1"/.test(
          e.message,
        ) && /boom/.test(e.message),
    );
    await assert.rejects(() => crash.run("infer", 64, 0.1, 10), /cannot send "infer 64 0.1"/);
    await crash.closed;

    const garbage = await fake('print("not json", flush=True)');
    await assert.rejects(
      () => garbage.run("infer", 256, 1.5, 10),
      /bad reply to "infer 256 1.5" \(not a JSON object\): not json/,
    );
    garbage.kill();
    await garbage.closed;

    const failing = await fake(
      'print(json.dumps(dict(error="ValueError: nope", command=line.strip())), flush=True)',
    );
    await assert.rejects(
      () => failing.run("train", 8, 0, 10),
      /"train 8 0" failed: ValueError: nope/,
    );
    failing.kill();
    await failing.closed;

    const wrong = await fake(
      'print(json.dumps(dict(kind="infer", batch=8, wall=1.0, cpu=1.0)), flush=True)',
    );
    await assert.rejects(() => wrong.run("train", 8, 0, 10), /unexpected reply to "train 8 0"/);
    wrong.kill();
    await wrong.closed;

    const silent = await fake("time.sleep(60)");
    const t0 = performance.now();
    await assert.rejects(
      () => silent.run("train", 1024, 1.5, 0.5),
      /no reply to "train 1024 1.5" within 0.5 s; killed/,
    );
    assert.ok(performance.now() - t0 < 5000);
    await silent.closed; // killed, not left running

    await assert.rejects(
      () => TorchServer.start("missing", "/nonexistent/python", [], 10),
      /missing: could not run .* while waiting for the reply to start/,
    );
    await assert.rejects(
      () => TorchServer.start("mute", PYTHON, ["-c", "import time; time.sleep(60)"], 0.5),
      /mute: no reply to start within 0.5 s/,
    );
  },
});

const hasTorch = hasPython &&
  new Deno.Command(PYTHON, { args: ["-c", "import torch"], stderr: "null" }).outputSync().success;

Deno.test({
  name: "TorchServer + torch_reference.py --serve: timed runs, error reply, quit with peak RSS",
  ignore: !hasTorch,
  fn: async () => {
    const script = fileURLToPath(new URL("../../bench/torch_reference.py", import.meta.url));
    const server = await TorchServer.start(
      "PyTorch reference (1 thread)",
      PYTHON,
      [script, "--serve", "--threads=1", "--features=12"],
      120,
    );
    try {
      assert.match(server.runtime, /^torch /);
      assert.equal(server.threads, 1);
      for (const kind of ["train", "infer"] as const) {
        const rate = await server.run(kind, 16, 0, 60);
        assert.ok(rate.wall > 0 && rate.cpu > 0, JSON.stringify(rate));
      }
      await assert.rejects(() => server.run("train", 0, 0, 60), /"train 0 0" failed: ValueError/);
      // still serving after an error reply
      assert.ok((await server.run("train", 16, 0, 60)).wall > 0);
      assert.ok((await server.close(30)) > 0);
    } finally {
      server.kill();
      await server.closed;
    }
  },
});
