// Run under Bun by bun_kernel_test.ts (and imported by it under Deno): the fused LSTM op on the
// WebAssembly kernel, its gradients, and its distance to the autodiff reference. Prints one JSON
// line that must be identical on both runtimes.
import { createHash } from "node:crypto";
import type * as TF from "@tensorflow/tfjs";
import { initTensorflow } from "../../../ml/tf/backend.ts";

export async function kernelFingerprint(): Promise<string> {
  const { tf } = await initTensorflow({ backend: "wasm" });
  const { fusedRnn, referenceRnn } = await import("../../../ml/model/fused_rnn.ts");
  const { prng } = await import("../../../ml/model/random.ts");
  const hash = createHash("sha256");
  let maxDiff = 0;
  for (const [R, B, T, D, H] of [[2, 7, 5, 3, 3], [1, 33, 9, 4, 6], [2, 64, 22, 32, 64]]) {
    const random = prng(B * 131 + H);
    const make = (shape: number[], scale: number) =>
      tf.tensor(
        Float32Array.from(
          { length: shape.reduce((a, b) => a * b, 1) },
          () => (random() * 2 - 1) * scale,
        ),
        shape,
      );
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
