// Run under Bun by bun_kernel_test.ts (and imported by it under Deno): the fused LSTM op on the
// WebAssembly kernel, its gradients, and its distance to the autodiff reference, with the kernel on
// one thread and on two (its worker thread started, and used). Prints one JSON line that must be
// identical on both runtimes.
import { createHash } from "node:crypto";
import type * as TF from "@tensorflow/tfjs";
import { initTensorflow } from "../../../ml/tf/backend.ts";
import { randomTensorMaker } from "./random_tensor.ts";

export async function kernelFingerprint(): Promise<string> {
  const { tf } = await initTensorflow({ backend: "wasm" });
  const { lstmKernel, setLstmThreads } = await import("../../../ml/kernels/lstm_kernel.ts");
  const runs = [];
  for (const threads of [1, 2]) {
    setLstmThreads(threads);
    const kernel = lstmKernel();
    const ready = kernel.waitForThreads();
    const fingerprint = await fingerprintOnce(tf);
    runs.push({ ...JSON.parse(fingerprint), threads: ready, threadCalls: kernel.threadCalls > 0 });
    kernel.close();
  }
  setLstmThreads(1);
  return JSON.stringify({
    workerComputesSame: await workerComputesSame(),
    fused: runs[0].fused,
    maxDiffBelow1e5: runs[0].maxDiffBelow1e5,
    threads: runs.map((r) => r.threads),
    workerUsed: runs.map((r) => r.threadCalls),
    sameOnTwoThreads: runs[1].fused === runs[0].fused,
  });
}

/** The default model's edge at batch 256 on a kernel whose worker computes every call handed to it
 * (no reclaiming) against one thread: bit-identical? */
async function workerComputesSame(): Promise<boolean> {
  const { LstmKernel } = await import("../../../ml/kernels/lstm_kernel.ts");
  const { prng } = await import("../../../ml/model/random.ts");
  const s = { batch: 256, steps: 22, inputs: 32, units: 64, directions: 2 };
  const random = prng(3);
  const make = (n: number) => Float32Array.from({ length: n }, () => random() - 0.5);
  const [x, W, U, b, dy] = [256 * 22 * 32, 2 * 32 * 256, 2 * 64 * 256, 2 * 256, 256 * 128].map(
    make,
  );
  const outputs = [1, 2].map((threads) => {
    const kernel = new LstmKernel({ threads, reclaim: false });
    if (kernel.waitForThreads() !== threads) throw new Error(`${threads} threads did not start`);
    const f = kernel.forward(s, x, W, U, b, true);
    const g = kernel.backward(f.tape!, dy);
    const only = kernel.forward(s, x, W, U, b, false);
    const used = kernel.threadCalls;
    kernel.close();
    if (threads === 2 && used !== 3) throw new Error(`worker ran ${used} of 3 calls`);
    return [f.h, g.dx, g.dW, g.dU, g.db, only.h];
  });
  return outputs[0].every((a, k) => a.every((v, i) => Object.is(v, outputs[1][k][i])));
}

async function fingerprintOnce(tf: typeof TF): Promise<string> {
  const { fusedRnn, referenceRnn } = await import("../../../ml/model/fused_rnn.ts");
  const { prng } = await import("../../../ml/model/random.ts");
  const hash = createHash("sha256");
  let maxDiff = 0;
  for (const [R, B, T, D, H] of [[2, 7, 5, 3, 3], [1, 33, 9, 4, 6], [2, 64, 22, 32, 64]]) {
    const make = randomTensorMaker(tf, prng(B * 131 + H));
    const x = make([B, T, D], 1);
    const W = make([R, D, 4 * H], 0.3);
    const U = make([R, H, 4 * H], 0.3);
    const b = make([R, 4 * H], 0.3);
    const dy = make([B, R * H], 1 / B);
    const run = (op: typeof fusedRnn) =>
      tf.tidy(() => {
        const value = op(x as TF.Tensor3D, W as TF.Tensor3D, U as TF.Tensor3D, b as TF.Tensor2D);
        const grads = tf.grads((a, w, u, c) =>
          op(a as TF.Tensor3D, w as TF.Tensor3D, u as TF.Tensor3D, c as TF.Tensor2D)
        )([x, W, U, b], dy);
        return [value, ...grads];
      });
    const fused = run(fusedRnn);
    const reference = run(referenceRnn);
    fused.forEach((t, k) => {
      const f = t.dataSync() as Float32Array;
      const r = reference[k].dataSync() as Float32Array;
      for (let i = 0; i < f.length; i++) maxDiff = Math.max(maxDiff, Math.abs(f[i] - r[i]));
      hash.update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
    });
    tf.dispose([...fused, ...reference, x, W, U, b, dy]);
  }
  return JSON.stringify({ fused: hash.digest("hex"), maxDiffBelow1e5: maxDiff <= 1e-5 });
}

if (import.meta.main) console.log(await kernelFingerprint());
