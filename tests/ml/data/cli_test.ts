// `iomt-sfl data inspect|generate` in process: output on stdout, usage errors as commander
// InvalidArgumentError / UsageError (exit 2), data errors as DataError (exit 1).
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import { CommanderError } from "@commander-js/extra-typings";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dataCommand } from "../../../cli/commands/data.ts";
import { UsageError } from "../../../cli/usage_error.ts";
import { DataError } from "../../../ml/data/errors.ts";
import { configureLogging } from "../../../util/log.ts";

const FIXTURES = new URL("../../fixtures/data/", import.meta.url).pathname;

async function run(args: string[]): Promise<string> {
  const command = dataCommand();
  const quiet = (c: typeof command) =>
    c.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  quiet(command);
  for (const sub of command.commands) quiet(sub as typeof command);
  const lines: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
  configureLogging({ level: "silent" });
  try {
    await command.parseAsync(args, { from: "user" });
  } finally {
    console.log = original;
    configureLogging({ level: "info" });
  }
  return lines.join("\n");
}

Deno.test("cli: data inspect prints the table and --json the report", async () => {
  const text = await run(["inspect", join(FIXTURES, "ton_iot.csv")]);
  assertStringIncludes(text, "format     ton-iot (detected:");
  assertStringIncludes(text, "dropped columns");
  assertStringIncludes(text, "src_ip");
  assertStringIncludes(text, "leak guard");
  const json = JSON.parse(
    await run(["inspect", join(FIXTURES, "cicflowmeter.csv"), "--json", "--devices", "2"]),
  );
  assertEquals(json.format, "cicflowmeter");
  assertEquals(json.rows, 30);
  assertEquals(json.devices.rows.length, 2);
  assertEquals(json.missing["Flow Byts/s"], 4);
});

Deno.test("cli: data generate writes the CSV atomically and refuses to overwrite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-cli-"));
  try {
    const out = join(dir, "s.csv");
    const text = await run(["generate", "--rows", "500", "--seed", "9", "--out", out]);
    assertStringIncludes(text, "500 rows");
    assertEquals(readFileSync(out, "utf8").trimEnd().split("\n").length, 501);
    await assertRejects(
      () => run(["generate", "--rows", "5", "--out", out]),
      UsageError,
      "already exists",
    );
    const report = JSON.parse(await run(["inspect", out, "--json"]));
    assertEquals(report.format, "wustl-ehms");
    await run(["generate", "--rows", "5", "--out", out, "--force"]);
    assertEquals(readFileSync(out, "utf8").trimEnd().split("\n").length, 6);
    assertEquals(readdirSync(dir), ["s.csv"]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("cli: bad options are usage errors, bad data is a data error", async () => {
  const file = join(FIXTURES, "ton_iot.csv");
  const invalid = async (args: string[]) => {
    const error = await assertRejects(() => run(args), CommanderError);
    assert((error as CommanderError).exitCode !== 0);
  };
  await invalid(["generate", "--rows", "abc", "--out", "/tmp/x.csv"]);
  await invalid(["generate", "--rows", "0", "--out", "/tmp/x.csv"]);
  await invalid(["generate", "--rows", "10"]);
  await invalid(["inspect", file, "--format", "parquet"]);
  await invalid(["inspect", file, "--devices", "0"]);
  await invalid(["inspect", file, "--alpha", "0"]);
  await invalid(["inspect", file, "--partition", "random"]);
  await assertRejects(
    () => run(["inspect", join(FIXTURES, "missing.csv")]),
    UsageError,
    "no such file",
  );
  await assertRejects(() => run(["inspect", file, "--format", "generic"]), UsageError, "--label");
  await assertRejects(
    () => run(["inspect", file, "--validation", "0.5", "--test", "0.5"]),
    UsageError,
  );
  await assertRejects(
    () => run(["generate", "--rows", "5", "--out", "/nonexistent-dir/x.csv"]),
    UsageError,
    "does not exist",
  );
  await assertRejects(
    () =>
      run(["inspect", join(FIXTURES, "bad_ragged.csv"), "--format", "generic", "--label", "class"]),
    DataError,
    "line 8",
  );
});
