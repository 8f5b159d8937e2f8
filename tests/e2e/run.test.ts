// `iomt-sfl run` from the compiled binary: a short multi-process trial in a network namespace
// with only loopback, its outputs, and that no child process outlives the parent (SIGTERM,
// SIGINT or SIGKILL of the parent).
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
} from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import {
  inLoopbackOnlyNamespace,
  loopbackNamespaceAvailable,
  requireBinary,
  roundRows,
  runBinary,
  verifyDeploymentLedger,
} from "./binary.ts";

const SHORT_TRIAL = [
  "run",
  "--devices",
  "3",
  "--rounds",
  "2",
  "--synthetic-rows",
  "2000",
  "--batch-size",
  "128",
];

/** Pids of processes whose command line mentions `marker` (the trial's unique out dir). */
function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === Deno.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(marker)) pids.push(Number(entry));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

Deno.test("run: a short multi-process trial on loopback only prints the table and writes the reports", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "iomt-run-")), "trial");
  const isolated = await loopbackNamespaceAvailable();
  // The binary alone, in a directory without node_modules: everything it needs is inside it.
  const alone = mkdtempSync(join(tmpdir(), "iomt-alone-"));
  const binary = join(alone, "iomt-sfl");
  copyFileSync(requireBinary(), binary);
  chmodSync(binary, 0o755);
  const result = await runBinary([...SHORT_TRIAL, "--round-timeout", "300", "--out", out], {
    cwd: alone,
    command: isolated ? inLoopbackOnlyNamespace([binary]) : [binary],
    timeoutMs: 15 * 60_000,
  });
  assertEquals(result.code, 0, result.stderr.slice(-3000));
  for (const header of ["accuracy", "precision", "recall", "F1", "FPR"]) {
    assertStringIncludes(result.stdout, header);
  }
  assertEquals(roundRows(result.stdout, "splitfed"), 2, result.stdout);
  // The multi-process run also says where each round's time went, and peak memory per role.
  const timing = result.stdout.split("where the time went (multi-process):")[1] ?? "";
  assertStringIncludes(timing, "consensus s");
  assertEquals(roundRows(timing, "splitfed"), 2, result.stdout);
  assertStringIncludes(timing, "peak RSS (MiB): run ");
  assertStringIncludes(result.stderr, "web UI at http://127.0.0.1:");
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  assertEquals(report.results[0].rows.length, 2);
  // Two short rounds on 2,000 rows prove the plumbing, not the model: metrics are well-formed.
  for (const row of report.results[0].rows) {
    for (const key of ["accuracy", "precision", "recall", "f1", "fpr", "rocAuc"]) {
      assert(
        Number.isFinite(row[key]) && row[key] >= 0 && row[key] <= 1,
        `${key}: ${JSON.stringify(row)}`,
      );
    }
  }
  const html = readFileSync(join(out, "report.html"), "utf8");
  // Self-contained: nothing is loaded from elsewhere (license comments may mention URLs).
  assert(
    !/(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(html),
    "report.html loads a remote resource",
  );
  assert(!/url\(\s*["']?(?:https?:)?\/\/|@import/i.test(html), "report.html loads remote CSS");
  assertStringIncludes(html, "Where the time went (multi-process)");
  const rows = report.results[0].rows as { timing?: { edgeComputeSeconds: number } }[];
  assert(rows.every((r) => (r.timing?.edgeComputeSeconds ?? -1) >= 0), "timing per round");
  assert(report.results[0].peakMemory.edgeMB > 0, "peak RSS of the edge");
  assertEquals(processesMentioning(out), [], "no child of run may outlive it");
});

for (const signal of ["SIGTERM", "SIGINT", "SIGKILL"] as const) {
  Deno.test(`run: children end when the parent gets ${signal}`, async () => {
    const out = join(mkdtempSync(join(tmpdir(), "iomt-run-")), "trial");
    const child = new Deno.Command(requireBinary(), {
      args: [...SHORT_TRIAL, "--rounds", "50", "--out", out],
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
    try {
      // The trial is under way once the edge and at least one device run.
      await waitFor(
        "edge and device processes",
        () => processesMentioning(out).length >= 3,
        120_000,
      );
      child.kill(signal);
      const status = await child.status;
      assert(!status.success, `run should not report success after ${signal}`);
      await waitFor(
        `children to exit after ${signal}`,
        () => processesMentioning(out).length === 0,
        30_000,
      );
      assert(existsSync(out));
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      for (const pid of processesMentioning(out)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
  });
}

Deno.test("run: validators and the edge on distinct loopback addresses (127.0.0.2-4) in a loopback-only namespace", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "iomt-hosts-")), "trial");
  const isolated = await loopbackNamespaceAvailable();
  const hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
  const result = await runBinary(
    [...SHORT_TRIAL, "--hosts", hosts.join(","), "--round-timeout", "300", "--out", out],
    {
      command: isolated ? inLoopbackOnlyNamespace([requireBinary()]) : undefined,
      timeoutMs: 15 * 60_000,
    },
  );
  assertEquals(result.code, 0, result.stderr.slice(-3000));
  const genesis = JSON.parse(
    readFileSync(join(out, "splitfed", "deployment", "genesis.json"), "utf8"),
  );
  const used = new Set<string>(
    genesis.validators.map((v: { endpoint: string }) => new URL(v.endpoint).hostname),
  );
  for (
    const endpoint of Object.values(genesis.params.ext.edge_endpoints as Record<string, string>)
  ) {
    used.add(new URL(endpoint).hostname);
  }
  assertEquals([...used].sort(), hosts, "every address carries a node");
  assertStringIncludes(result.stdout, "ledger: height");
  assertEquals(processesMentioning(out), []);
});

Deno.test("run: with a Byzantine validator forging signatures (k = f = 1) the trial completes and honest chains verify", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "iomt-byz-")), "trial");
  const result = await runBinary([
    ...SHORT_TRIAL,
    "--byzantine-validators",
    "1",
    "--round-timeout",
    "300",
    "--out",
    out,
  ], {
    timeoutMs: 15 * 60_000,
  });
  assertEquals(result.code, 0, result.stderr.slice(-3000));
  assertStringIncludes(result.stdout, "ledger: height");
  const deployment = join(out, "splitfed", "deployment");
  const honestLog = readFileSync(join(out, "splitfed", "logs", "validator-0.log"), "utf8");
  assert(
    /bad_signature: .* from replica 3/.test(honestLog),
    "honest validators must reject validator-3's forged messages",
  );
  for (let v = 0; v < 3; v++) {
    const verify = await verifyDeploymentLedger(deployment, v);
    assertEquals(verify.code, 0, `validator-${v}: ${verify.stdout}${verify.stderr}`);
    assertEquals(verify.report?.ok, true, verify.stdout);
  }
  assertEquals(processesMentioning(out), []);
});
