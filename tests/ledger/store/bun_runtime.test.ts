// The ledger must also run under Bun (the release binary is built with bun build --compile).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const root = new URL("../../../", import.meta.url).pathname;
const bun = `${root}tools/toolchain/node_modules/.bin/bun`;

Deno.test({
  name: "ledger runtime check passes under Bun (WebCrypto Ed25519, libSQL store, verify)",
  ignore: !existsSync(bun) && Deno.env.get("CI") !== "true",
  fn() {
    const result = spawnSync(bun, ["run", "tests/ledger/store/runtime_check.ts"], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(
      result.status,
      0,
      `bun exited ${result.status}\n${result.stdout}\n${result.stderr}`,
    );
    assert.match(result.stdout, /^bun: ledger runtime check ok/);
  },
});
