// The compiled binary as a newcomer meets it: help, version, usage errors, exit codes, and
// starting from an empty directory with no node_modules and no network but loopback.
import { copyFileSync, mkdtempSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import {
  inLoopbackOnlyNamespace,
  loopbackNamespaceAvailable,
  requireBinary,
  runBinary,
} from "./binary.ts";
import packageJson from "../../package.json" with { type: "json" };

Deno.test("binary: --help lists global options and examples, exit 0", async () => {
  const result = await runBinary(["--help"]);
  assertEquals(result.code, 0, result.stderr);
  for (
    const text of ["--data-dir", "--log-level", "--log-json", "--config", "Examples:", "IOMT_SFL_"]
  ) {
    assertStringIncludes(result.stdout, text);
  }
});

Deno.test("binary: --version prints the package version", async () => {
  const result = await runBinary(["--version"]);
  assertEquals(result.code, 0);
  assertEquals(result.stdout.trim(), packageJson.version);
});

Deno.test("binary: usage errors are one line naming the flag, exit 2, nothing written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-usage-"));
  const cases: Array<[string[], RegExp]> = [
    [["--bogus"], /unknown option '--bogus'/],
    [["--log-level", "loud"], /--log-level.*expected one of: debug, info, warn, error, silent/],
    [["no-such-command"], /unknown command 'no-such-command'|too many arguments/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runBinary(args, { cwd: dir });
    assertEquals(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    const lines = result.stderr.trim().split("\n");
    assertEquals(lines.length, 1, `one line expected for ${args.join(" ")}: ${result.stderr}`);
    assertMatch(lines[0], pattern);
  }
  const fromEnv = await runBinary(["--data-dir", dir], {
    cwd: dir,
    env: { IOMT_SFL_LOG_LEVEL: "loud" },
  });
  assertEquals(fromEnv.code, 2);
  assertStringIncludes(fromEnv.stderr, "from env 'IOMT_SFL_LOG_LEVEL'");
  assertEquals(readdirSync(dir), [], "a usage error must not write files");
});

Deno.test("binary: runs from an empty directory without node_modules or environment", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-empty-"));
  const copy = join(dir, "iomt-sfl");
  copyFileSync(requireBinary(), copy);
  Deno.chmodSync(copy, 0o755);
  const result = await runBinary(["--version"], { cwd: dir, clearEnv: true, command: [copy] });
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stdout.trim(), packageJson.version);
});

Deno.test("binary: works in a network namespace that has only loopback", async () => {
  if (!(await loopbackNamespaceAvailable())) {
    console.warn("skipped: `unshare -n` unavailable (needs root)");
    return;
  }
  const result = await runBinary(["--help"], {
    command: inLoopbackOnlyNamespace([requireBinary()]),
  });
  assertEquals(result.code, 0, result.stderr);
});
