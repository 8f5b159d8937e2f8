// Faults during a real run of the compiled binary: a validator, the edge and a device are
// killed with SIGKILL mid-trial; the run's supervisor restarts them (the validator from its
// database, the edge from its saved round state, the device by rejoining); the run completes,
// and every validator's chain verifies.
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "../assert.ts";
import { requireBinary, roundRows, verifyDeploymentLedger } from "./binary.ts";

function pidsWith(...markers: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (markers.every((m) => cmdline.includes(m))) pids.push(Number(entry));
    } catch { /* gone */ }
  }
  return pids;
}

/** `iomt-sfl run` of a small trial into a fresh folder (stdout and stderr piped). */
function startTrial(name: string, args: string[], env: Record<string, string> = {}) {
  const out = join(mkdtempSync(join(tmpdir(), `iomt-${name}-`)), "trial");
  const run = new Deno.Command(requireBinary(), {
    args: ["run", "--synthetic-rows", "3000", "--batch-size", "128", ...args, "--out", out],
    env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  return { out, run };
}

/** Whatever the outcome, no process of the trial outlives the test. */
function killTrial(out: string, run: Deno.ChildProcess): void {
  try {
    run.kill("SIGKILL");
  } catch { /* exited */ }
  for (const pid of pidsWith(out)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** Every validator's chain verifies; returns their verified heights. */
async function verifyAllChains(out: string): Promise<number[]> {
  const deployment = join(out, "splitfed", "deployment");
  const heights: number[] = [];
  for (let v = 0; v < 4; v++) {
    const verify = await verifyDeploymentLedger(deployment, v);
    assertEquals(verify.code, 0, `validator-${v}: ${verify.stdout}${verify.stderr}`);
    heights.push(verify.report!.verified_height);
  }
  return heights;
}

Deno.test({
  name:
    "faults: kill -9 of a validator, the edge and a device mid-run; the run completes and chains verify",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { out, run } = startTrial("faults", [
      "--devices",
      "4",
      "--rounds",
      "4",
      "--round-timeout",
      "90",
      "--min-devices",
      "2",
    ]);
    const stderrChunks: string[] = [];
    const decoder = new TextDecoder();
    let roundsSeen = 0;
    const stderrDone = (async () => {
      for await (const chunk of run.stderr) {
        const text = decoder.decode(chunk, { stream: true });
        stderrChunks.push(text);
        roundsSeen += (text.match(/round \d+\/4 F1/g) ?? []).length;
      }
    })();
    const stdoutText = new Response(run.stdout).text();
    try {
      const deadline = Date.now() + 300_000;
      while (roundsSeen < 1) {
        if (Date.now() > deadline) throw new Error("no round finished within 300 s");
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const victims = [
        ...pidsWith(out, "validator", "validator-1.json"),
        ...pidsWith(out, "edge-0.json"),
        ...pidsWith(out, "device-1.json"),
      ];
      assertEquals(victims.length, 3, `found ${victims.length} processes to kill`);
      for (const pid of victims) Deno.kill(pid, "SIGKILL");
      const status = await run.status;
      await stderrDone;
      const stdout = await stdoutText;
      const stderr = stderrChunks.join("");
      assert(status.success, `run failed after the kills:\n${stderr.slice(-4000)}`);
      assertEquals(roundRows(stdout, "splitfed"), 4, stdout);
      assert(
        /restarting/.test(stderr),
        "the supervisor should say it restarted the killed children",
      );
      const heights = await verifyAllChains(out);
      assert(Math.min(...heights) > 0, `heights ${heights}`);
    } finally {
      killTrial(out, run);
    }
  },
});

Deno.test({
  name:
    "faults: the edge dies after a round is aggregated but before its report; the restarted edge reports it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { out, run } = startTrial(
      "faults-report",
      ["--devices", "3", "--rounds", "3", "--min-devices", "2"],
      { IOMT_SFL_FAULT_EDGE_CRASH_AFTER_AGGREGATE: "1" },
    );
    try {
      const [status, stdout, stderr] = await Promise.all([
        run.status,
        new Response(run.stdout).text(),
        new Response(run.stderr).text(),
      ]);
      assert(status.success, `run failed:\n${stderr.slice(-4000)}`);
      assert(
        /fault injection: exiting after aggregating round 1/.test(stderr),
        stderr.slice(-3000),
      );
      assert(/edge-0 exited with code 70; restarting/.test(stderr), stderr.slice(-3000));
      assert(/round 1: reporting it after the restart/.test(stderr), stderr.slice(-3000));
      // Every round is in the table exactly once, and round 2 ran after the restart.
      assertEquals(roundRows(stdout, "splitfed"), 3, stdout);
      await verifyAllChains(out);
    } finally {
      killTrial(out, run);
    }
  },
});
