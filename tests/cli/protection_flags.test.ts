// --clip/--noise/--epsilon/--delta/--nopeek on `run` and `device`: out-of-range values and bad
// combinations are usage errors (flag, environment or config key) before anything runs; good
// values resolve to the settings the devices apply.
import { CommanderError } from "@commander-js/extra-typings";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { buildProgram } from "../../cli/program.ts";
import { deviceCommand } from "../../cli/commands/roles.ts";
import { runCommand } from "../../cli/commands/run.ts";
import { protectionOf } from "../../cli/protection_flags.ts";
import { UsageError } from "../../cli/usage_error.ts";
import { epsilonSpent } from "../../ml/privacy/settings.ts";

const program = () => {
  const p = buildProgram([runCommand as never, deviceCommand as never]);
  // commander prints the parse error before throwing; keep the test output clean.
  p.configureOutput({ writeErr: () => {}, outputError: () => {} });
  for (const c of p.commands) c.configureOutput({ writeErr: () => {}, outputError: () => {} });
  return p;
};

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "iomt-protection-"));
}

/** A command that must fail as a usage error (exit 2) and write nothing new into `dir`. */
async function rejectsAsUsage(args: string[], message: string, dir: string) {
  const before = readdirSync(dir);
  const error = await assertRejects(() => program().parseAsync(args, { from: "user" }));
  if (error instanceof CommanderError) {
    assertEquals(error.exitCode, 1, `commander exit code for ${args.join(" ")}`); // main maps to 2
    assert(error.message.includes(message), `${args.join(" ")}: ${error.message}`);
  } else {
    assert(error instanceof UsageError, `${args.join(" ")}: ${error}`);
    assert(error.message.includes(message), `${args.join(" ")}: ${error.message}`);
  }
  assertEquals(readdirSync(dir), before, `${args.join(" ")} wrote into ${dir}`);
}

Deno.test("run and device: ε ≤ 0, noise < 0, clip ≤ 0, δ outside (0, 1) are usage errors", async () => {
  const dir = tempDir();
  const out = join(dir, "out");
  const node = join(dir, "node.json");
  const bad: [string[], string][] = [
    [["--epsilon", "0"], "expected a number greater than 0"],
    [["--epsilon", "-2"], "expected a number greater than 0"],
    [["--noise", "-0.5", "--clip", "1"], "expected a number from 0"],
    [["--clip", "0"], "expected a number greater than 0"],
    [["--clip", "-1"], "expected a number greater than 0"],
    [["--epsilon", "1", "--delta", "0"], "strictly between 0 and 1"],
    [["--epsilon", "1", "--delta", "1"], "strictly between 0 and 1"],
    [["--epsilon", "1", "--delta", "1.5"], "strictly between 0 and 1"],
    [["--nopeek", "-1"], "expected a number from 0"],
    [["--epsilon", "abc"], "expected a number"],
  ];
  for (const [flags, message] of bad) {
    await rejectsAsUsage(["run", "--out", out, ...flags], message, dir);
  }
  writeFileSync(node, "{}");
  for (const [flags, message] of bad) {
    await rejectsAsUsage(["device", "--node", node, ...flags], message, dir);
  }
});

Deno.test("run: bad combinations are usage errors naming the fix, before anything is written", async () => {
  const dir = tempDir();
  const out = join(dir, "out");
  const cases: [string[], string][] = [
    [["--noise", "1"], "--noise needs --clip"],
    [["--noise", "1", "--clip", "1", "--epsilon", "3"], "--noise or --epsilon, not both"],
    [["--delta", "1e-6"], "--delta needs --noise or --epsilon"],
    [["--epsilon", "1e-9"], "--epsilon 1e-9: no noise multiplier"],
    [["--clip", "1", "--mode", "fedavg"], "--mode fedavg sends none"],
    [["--experiment", "privacy"], "add --in-process"],
    [["--experiment", "privacy", "--in-process", "--clip", "1"], "runs its own protection"],
  ];
  for (const [flags, message] of cases) {
    await rejectsAsUsage(["run", "--out", out, ...flags], message, dir);
  }
});

Deno.test("config file keys and IOMT_SFL_* go through the same parsers", async () => {
  const dir = tempDir();
  const write = (content: unknown) => {
    const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify(content));
    return path;
  };
  const out = join(dir, "out");
  for (
    const [content, message] of [
      [{ run: { epsilon: 0 } }, '"epsilon": expected a number greater than 0'],
      [{ run: { noise: -1, clip: 1 } }, '"noise": expected a number from 0'],
      [{ run: { clip: 0 } }, '"clip": expected a number greater than 0'],
      [{ run: { epsilon: 2, delta: 1 } }, '"delta": expected a number strictly between 0 and 1'],
      [{ device: { nopeek: -3 } }, '"nopeek": expected a number from 0'],
    ] as const
  ) {
    const path = write(content);
    const command = "device" in content ? ["device", "--node", path] : ["run", "--out", out];
    const error = await assertRejects(() =>
      program().parseAsync(["--config", path, ...command], { from: "user" })
    );
    assert(error instanceof UsageError, String(error));
    assert(error.message.includes(message), error.message);
  }
  Deno.env.set("IOMT_SFL_EPSILON", "-1");
  try {
    const error = await assertRejects(() =>
      program().parseAsync(["run", "--out", out], { from: "user" })
    );
    assert(/expected a number greater than 0/.test(error.message), error.message);
  } finally {
    Deno.env.delete("IOMT_SFL_EPSILON");
  }
});

Deno.test("protectionOf: --epsilon calibrates the noise for rounds × local epochs", () => {
  const s = protectionOf({ epsilon: 10, delta: 1e-6 }, { rounds: 5, localEpochs: 2 })!;
  assertEquals(s.clipNorm, 1);
  assertEquals(s.delta, 1e-6);
  const spent = epsilonSpent(s, 10)!.epsilon;
  assert(spent <= 10 && spent > 9.99, `ε spent over the 10 releases: ${spent}`);
  assertEquals(protectionOf({}, { rounds: 5, localEpochs: 1 }), null);
  assertEquals(protectionOf({ clip: 2, noise: 0.3, nopeek: 0.1 }, { rounds: 1, localEpochs: 1 }), {
    delta: 1e-5,
    nopeekWeight: 0.1,
    clipNorm: 2,
    noiseMultiplier: 0.3,
  });
  assertThrows(
    () => protectionOf({ noise: 1 }, { rounds: 1, localEpochs: 1 }),
    UsageError,
    "--noise needs --clip",
  );
});
