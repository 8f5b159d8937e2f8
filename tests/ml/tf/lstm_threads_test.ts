// initTensorflow's lstmThreads option sets the LSTM kernel's thread count (IOMT_SFL_LSTM_THREADS,
// when set, wins over it; the subprocess test checks that).
import assert from "node:assert/strict";
import { initTensorflow } from "../../../ml/tf/backend.ts";
import { LSTM_THREADS_ENV, lstmKernel, lstmThreads } from "../../../ml/kernels/lstm_kernel.ts";

Deno.test({
  name: "initTensorflow({ lstmThreads }) sets the LSTM kernel's threads",
  // On one core 2 is lowered to 1 (setLstmThreads).
  ignore: Boolean(Deno.env.get(LSTM_THREADS_ENV)) || navigator.hardwareConcurrency < 2,
  fn: async () => {
    try {
      await initTensorflow({ backend: "wasm", lstmThreads: 2 });
      assert.equal(lstmThreads(), 2);
      assert.equal(lstmKernel().waitForThreads(), 2, "the kernel's worker thread did not start");
      await initTensorflow({ backend: "wasm", lstmThreads: 1 });
      assert.equal(lstmThreads(), 1);
      assert.equal(lstmKernel().threads, 1);
      await assert.rejects(
        () => initTensorflow({ backend: "wasm", lstmThreads: 4 }),
        /threads=4: the LSTM kernel's threads must be 1 or 2/,
      );
    } finally {
      await initTensorflow({ backend: "wasm", lstmThreads: 1 });
    }
  },
});

Deno.test("IOMT_SFL_LSTM_THREADS wins over the lstmThreads option", async () => {
  const script = `
    import { initTensorflow } from ${
    JSON.stringify(new URL("../../../ml/tf/backend.ts", import.meta.url).href)
  };
    import { lstmThreads } from ${
    JSON.stringify(new URL("../../../ml/kernels/lstm_kernel.ts", import.meta.url).href)
  };
    await initTensorflow({ backend: "wasm", lstmThreads: 2 });
    console.log(lstmThreads());
  `;
  const run = (value: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      env: { [LSTM_THREADS_ENV]: value },
      cwd: new URL("../../../", import.meta.url).pathname,
    }).output();
  const ok = await run("1");
  assert.equal(
    new TextDecoder().decode(ok.stdout).trim(),
    "1",
    new TextDecoder().decode(ok.stderr),
  );
  const bad = await run("3");
  assert.notEqual(bad.code, 0);
  assert.match(new TextDecoder().decode(bad.stderr), /IOMT_SFL_LSTM_THREADS=3/);
});
