// The fused LSTM kernel must run on Bun (the compiled binary's runtime) and give bit-identical
// values and gradients to Deno's, within 1e-5 of the autodiff reference on both, on one thread and
// on two.
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
  const deno = JSON.parse(onDeno);
  assertEquals(deno.maxDiffBelow1e5, true, "Deno: fused op off the reference");
  assertEquals(deno.threads, [1, 2], "Deno: the kernel's worker thread did not start");
  assertEquals(deno.workerUsed, [false, true], "Deno: the worker thread was not used");
  assertEquals(deno.sameOnTwoThreads, true, "Deno: two threads differ from one");
  assertEquals(deno.workerComputesSame, true, "Deno: the worker's results differ");
  const onBun = execFileSync(BUN, ["run", SCRIPT], { encoding: "utf8" }).trim().split("\n").pop();
  assertEquals(onBun, onDeno, `rerun: ${BUN} run ${SCRIPT}`);
});
