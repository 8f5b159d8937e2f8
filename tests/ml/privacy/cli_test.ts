// `iomt-sfl privacy audit`: out-of-range privacy parameters are usage errors (main.ts maps
// CommanderError and UsageError to exit 2), and a tiny real run prints JSON on stdout.
import { CommanderError } from "@commander-js/extra-typings";
import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { buildProgram } from "../../../cli/program.ts";
import { UsageError } from "../../../cli/usage_error.ts";
import { privacyCommand } from "../../../cli/commands/privacy.ts";
import { configureLogging } from "../../../util/log.ts";

const program = () => {
  const p = buildProgram([privacyCommand as never]);
  // commander prints the parse error; keep the test output readable.
  p.configureOutput({ writeErr: () => {}, outputError: () => {} });
  for (const c of p.commands) c.configureOutput({ writeErr: () => {}, outputError: () => {} });
  for (const c of p.commands.flatMap((c) => c.commands)) {
    c.configureOutput({ writeErr: () => {}, outputError: () => {} });
  }
  return p;
};

const run = (args: string[]) =>
  program().parseAsync(["--log-level", "silent", "privacy", "audit", ...args], { from: "user" });

Deno.test("privacy audit: ε <= 0, noise < 0, clip <= 0 and malformed numbers are usage errors (exit 2)", async () => {
  for (
    const bad of [
      ["--epsilon", "0"],
      ["--epsilon", "-1"],
      ["--epsilon", "abc"],
      ["--noise", "-0.5"],
      ["--noise", "NaN"],
      ["--clip", "0"],
      ["--clip", "-1"],
      ["--delta", "0"],
      ["--delta", "1"],
      ["--nopeek", "-0.1"],
      ["--epochs", "0"],
    ]
  ) {
    const error = await assertRejects(() => run(bad), CommanderError);
    assert((error as CommanderError).exitCode !== 0, `${bad.join(" ")}: exit code 0`);
    assertEquals((error as CommanderError).code, "commander.invalidArgument", bad.join(" "));
  }
});

Deno.test("privacy audit: contradictory options are usage errors before any work", async () => {
  await assertRejects(
    () => run(["--noise", "1", "--epsilon", "2", "--clip", "1"]),
    UsageError,
    "not both",
  );
  await assertRejects(() => run(["--noise", "1"]), UsageError, "--clip");
  await assertRejects(() => run(["--table", "--nopeek", "0.1"]), UsageError, "--table");
  // An ε that no noise level reaches within the limits.
  await assertRejects(() => run(["--epsilon", "1e-9", "--epochs", "100"]), UsageError, "--epsilon");
});

Deno.test("privacy audit: a tiny run prints the audit as JSON on stdout", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (text: string) => printed.push(text);
  try {
    await run([
      "--rows",
      "1000",
      "--epochs",
      "1",
      "--aux-rows",
      "60",
      "--target-rows",
      "60",
      "--epsilon",
      "50",
      "--json",
    ]);
  } finally {
    console.log = log;
    configureLogging({ level: "info" }); // the program set "silent" for the whole process
  }
  const result = JSON.parse(printed.join("\n"));
  assert(
    result.privacy.epsilon <= 50 && result.privacy.epsilon > 40,
    `ε ${result.privacy.epsilon}`,
  );
  assertEquals(result.protection.clipNorm, 1);
  assert(
    result.reconstruction.biometrics.length >= 5,
    "synthetic data has the WUSTL biometric columns",
  );
  assertEquals(result.samples.targetRows, 60);
});
