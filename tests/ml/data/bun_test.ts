// The data path must behave identically on Bun: same synthetic bytes, same features.
import { assertEquals } from "../../assert.ts";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fingerprint } from "./bun_check.ts";

const BUN = new URL("../../../tools/toolchain/node_modules/.bin/bun", import.meta.url).pathname;
const SCRIPT = new URL("./bun_check.ts", import.meta.url).pathname;

Deno.test({
  name: "bun: synthetic data and prepared features are identical to Deno's",
  ignore: !existsSync(BUN) && Deno.env.get("CI") !== "true",
}, async () => {
  const onBun = execFileSync(BUN, ["run", SCRIPT], { encoding: "utf8" }).trim();
  assertEquals(onBun, await fingerprint(), `rerun: ${BUN} run ${SCRIPT}`);
});
