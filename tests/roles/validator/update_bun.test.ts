// Update consensus must run under Bun too (the release binary is built with bun build --compile),
// and reach the same decisions, aggregate and state root as under Deno.
import { assert, assertEquals } from "../../assert.ts";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const root = new URL("../../../", import.meta.url).pathname;
const bun = `${root}tools/toolchain/node_modules/.bin/bun`;
const script = "tests/roles/validator/update_runtime_check.ts";

function run(command: string, args: string[]): { ok: string; summary: string } {
  const result = spawnSync(command, args, { cwd: root, encoding: "utf8", timeout: 90_000 });
  assertEquals(
    result.status,
    0,
    `${command} exited ${result.status}\n${result.stdout}\n${result.stderr}`,
  );
  const lines = result.stdout.trim().split("\n");
  return { ok: lines[lines.length - 2], summary: lines[lines.length - 1] };
}

Deno.test({
  name: "update consensus: Bun reaches the same decisions and state root as Deno",
  ignore: !existsSync(bun) && Deno.env.get("CI") !== "true",
  fn() {
    const onBun = run(bun, ["run", script]);
    const onDeno = run(Deno.execPath(), ["run", "--allow-all", script]);
    assertEquals(onBun.ok, "bun: update consensus ok");
    assertEquals(onDeno.ok, "deno: update consensus ok");
    assertEquals(onBun.summary, onDeno.summary);
    const { decisions } = JSON.parse(onDeno.summary);
    assert(decisions.includes("dev-6:cosine_too_low"), onDeno.summary);
    assert(decisions.some((d: string) => d.startsWith("dev-7:norm_too_large")), onDeno.summary);
  },
});
