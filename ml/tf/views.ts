// Zero-copy reads of a tensor's values. On the wasm backend dataSync() copies the tensor out of
// the wasm heap into a fresh ArrayBuffer: ~0.8 ms for a [256, 22, 32] float32 tensor on this VM,
// most of it the page faults of the new allocation, several times per split step. A view into the
// heap costs nothing, but it is only valid until the next tfjs allocation (which may grow, and so
// detach, the heap) or until the tensor is disposed: read or copy it at once, never keep it.
import * as tf from "@tensorflow/tfjs";

interface HeapBackend {
  typedArrayFromHeap(info: { dataId: object; shape: number[]; dtype: tf.DataType }): tf.TypedArray;
}

/** The float32 values of `t`: a view into the wasm heap on the wasm backend (see above: use it
 * before any other tfjs call), a dataSync() copy on other backends. */
export function floatsView(t: tf.Tensor, what: string): Float32Array {
  if (t.dtype !== "float32") throw new Error(`${what} is ${t.dtype}, expected float32`);
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  if (tf.getBackend() === "wasm" && typeof backend.typedArrayFromHeap === "function") {
    const view = backend.typedArrayFromHeap(t);
    if (!(view instanceof Float32Array) || view.length !== t.size) {
      throw new Error(`${what}: heap view of ${view?.length} values for a tensor of ${t.size}`);
    }
    return view;
  }
  return t.dataSync() as Float32Array;
}
