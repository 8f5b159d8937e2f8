// Seeded uniform tensors in [-scale, scale) for the runtime-parity checks of the fused ops.
import type * as TF from "@tensorflow/tfjs";

export function randomTensorMaker(tf: typeof TF, random: () => number) {
  return (shape: number[], scale: number): TF.Tensor =>
    tf.tensor(
      Float32Array.from(
        { length: shape.reduce((a, b) => a * b, 1) },
        () => (random() * 2 - 1) * scale,
      ),
      shape,
    );
}
