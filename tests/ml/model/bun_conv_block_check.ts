// Run under Bun by conv_block_test.ts (and imported by it under Deno): the fused device CNN block's
// values and gradients (kernel 3 and 4, 1 and 32 input channels) and their distance to the tfjs
// composition. Prints one JSON line that must be identical on both runtimes.
import { createHash } from "node:crypto";
import type * as TF from "@tensorflow/tfjs";
import { initTensorflow } from "../../../ml/tf/backend.ts";
import { randomTensorMaker } from "./random_tensor.ts";

export async function convBlockFingerprint(): Promise<string> {
  const { tf } = await initTensorflow({ backend: "wasm" });
  const { convBlock, referenceConvBlock } = await import("../../../ml/model/conv_block.ts");
  const { prng } = await import("../../../ml/model/random.ts");
  const hash = createHash("sha256");
  let maxDiff = 0;
  for (const [B, L, C, K, F] of [[7, 51, 1, 3, 32], [5, 33, 32, 4, 8]]) {
    const make = randomTensorMaker(tf, prng(B * 131 + K));
    const x = make([B, L, C], 1);
    const kernel = make([K, C, F], 0.5);
    const bias = make([F], 0.2);
    const dy = make([B, Math.floor(L / 2), F], 1 / B);
    const run = (op: typeof convBlock) =>
      tf.tidy(() => {
        const value = op(x as TF.Tensor3D, kernel as TF.Tensor3D, bias as TF.Tensor1D);
        const grads = tf.grads((a, w, c) =>
          op(a as TF.Tensor3D, w as TF.Tensor3D, c as TF.Tensor1D)
        )([x, kernel, bias], dy);
        return [value, ...grads].map((t) => t.dataSync() as Float32Array);
      });
    const fused = run(convBlock);
    const reference = run(referenceConvBlock);
    fused.forEach((a, k) => {
      hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - reference[k][i]));
      }
    });
    tf.dispose([x, kernel, bias, dy]);
  }
  return JSON.stringify({ fused: hash.digest("hex"), maxDiffBelow1e5: maxDiff <= 1e-5 });
}

if (import.meta.main) console.log(await convBlockFingerprint());
