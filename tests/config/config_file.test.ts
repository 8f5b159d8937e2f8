import { Command, Option } from "@commander-js/extra-typings";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assertEquals, assertRejects } from "../assert.ts";
import { buildProgram } from "../../cli/program.ts";
import { intInRange } from "../../cli/options.ts";
import { UsageError } from "../../cli/usage_error.ts";
import { envNameForFlag } from "../../config/config_file.ts";

/** A program with one command `trial --devices N --rounds N` that records what it resolved. */
function programRecording(seen: Array<Record<string, unknown>>) {
  const trial = () =>
    new Command("trial")
      .addOption(new Option("--devices <n>", "devices").argParser(intInRange(1, 100)).default(10))
      .addOption(new Option("--rounds <n>", "rounds").argParser(intInRange(1, 100)).default(5))
      .action((options, command) => {
        seen.push({
          ...options,
          logLevel: (command.optsWithGlobals() as Record<string, unknown>).logLevel,
        });
      });
  return buildProgram([trial as never]);
}

function configFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "iomt-config-"));
  const path = join(dir, "config.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

async function withEnv(vars: Record<string, string>, fn: () => Promise<void>) {
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    await fn();
  } finally {
    for (const k of Object.keys(vars)) Deno.env.delete(k);
  }
}

Deno.test("config precedence: flag > IOMT_SFL_* environment > config file > default", async () => {
  const path = configFile({ "log-level": "warn", trial: { devices: 20, rounds: 7 } });
  const seen: Array<Record<string, unknown>> = [];
  await programRecording(seen).parseAsync(["--config", path, "trial"], { from: "user" });
  assertEquals(seen.at(-1), { devices: 20, rounds: 7, logLevel: "warn" });

  await withEnv({ IOMT_SFL_DEVICES: "30" }, async () => {
    await programRecording(seen).parseAsync(["--config", path, "trial"], { from: "user" });
    assertEquals(seen.at(-1), { devices: 30, rounds: 7, logLevel: "warn" });
    await programRecording(seen).parseAsync(["--config", path, "trial", "--devices", "40"], {
      from: "user",
    });
    assertEquals(seen.at(-1), { devices: 40, rounds: 7, logLevel: "warn" });
  });

  await programRecording(seen).parseAsync(["trial"], { from: "user" });
  assertEquals(seen.at(-1), { devices: 10, rounds: 5, logLevel: "info" });
});

Deno.test("config file errors are usage errors naming the file and key, and run nothing", async () => {
  const seen: Array<Record<string, unknown>> = [];
  const cases: Array<[unknown, string]> = [
    [{ trial: { devicez: 3 } }, 'unknown key "devicez"'],
    [{ colour: "blue" }, 'unknown key "colour"'],
    [{ trial: { devices: 0 } }, "from 1 to 100"],
    [{ trial: { devices: [1] } }, "expected a string or a number"],
    [{ trial: 5 }, "must be an object"],
    ["{not json", "not valid JSON"],
    ["[]", "expected a JSON object"],
  ];
  for (const [content, message] of cases) {
    const path = configFile(content);
    await assertRejects(
      () => programRecording(seen).parseAsync(["--config", path, "trial"], { from: "user" }),
      UsageError,
      message,
    );
  }
  await assertRejects(
    () =>
      programRecording(seen).parseAsync(["--config", "/nonexistent/x.json", "trial"], {
        from: "user",
      }),
    UsageError,
    "cannot read file",
  );
  assertEquals(seen.length, 0);
});

Deno.test("environment values go through the same strict parser as flags", async () => {
  const seen: Array<Record<string, unknown>> = [];
  await withEnv({ [envNameForFlag("--devices")]: "abc" }, async () => {
    await assertRejects(() => programRecording(seen).parseAsync(["trial"], { from: "user" }));
  });
  assertEquals(seen.length, 0);
});
