// The fused LSTM kernel must run on Bun (the compiled binary's runtime) and give bit-identical
// values and gradients to Deno's, within 1e-5 of the autodiff reference on both.
import { assertEquals } from "../../assert.ts";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { kernelFingerprint } from "./bun_kernel_check.ts";

const BUN = new URL("../../../tools/toolchain/node_modules/.bin/bun", import.meta.url).pathname;
const SCRIPT = new URL("./bun_kernel_check.ts", import.meta.url).pathname;

Deno.test({
  name: "bun: fused LSTM kernel values and gradients are identical to Deno's",
  ignore: !existsSync(BUN) && Deno.env.get("CI") !== "true",
}, async () => {
  const onDeno = await kernelFingerprint();
  assertEquals(JSON.parse(onDeno).maxDiffBelow1e5, true, "Deno: fused op off the reference");
  const onBun = execFileSync(BUN, ["run", SCRIPT], { encoding: "utf8" }).trim().split("\n").pop();
  assertEquals(onBun, onDeno, `rerun: ${BUN} run ${SCRIPT}`);
});
