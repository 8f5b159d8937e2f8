// Binary frames for what crosses the device <-> edge wire: smashed activations, labels and
// activation gradients. Little-endian; strict decoding (every field checked, limits enforced,
// float payloads checked for NaN/Inf) because the peer is not trusted.
//
//  offset  size  field
//  0       4     magic "SFLW"
//  4       1     version (1)
//  5       1     kind   (1 activations, 2 labels, 3 gradients, 4 parameters)
//  6       1     dtype  (1 float32, 2 int32)
//  7       1     rank   (1..4)
//  8       4     round  (u32)
//  12      4     step   (u32)
//  16      4*r   shape  (u32 each, > 0)
//  16+4r   4*n   payload, n = product(shape)

export const FRAME_MAGIC = 0x574c4653; // "SFLW" read as little-endian u32
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES_MIN = 16;
export const FRAME_RANK_MAX = 4;

export const FrameKind = { activations: 1, labels: 2, gradients: 3, parameters: 4 } as const;
export type FrameKindName = keyof typeof FrameKind;
const KIND_NAMES = new Map(Object.entries(FrameKind).map(([k, v]) => [v, k as FrameKindName]));

export interface FrameLimits {
  /** Elements in one frame's payload. */
  elementsMax: number;
  /** Frames in one message. */
  framesMax: number;
}
export const DEFAULT_FRAME_LIMITS: FrameLimits = { elementsMax: 1 << 24, framesMax: 8 };

export type Frame =
  | {
    kind: FrameKindName;
    round: number;
    step: number;
    shape: number[];
    dtype: "float32";
    data: Float32Array;
  }
  | {
    kind: FrameKindName;
    round: number;
    step: number;
    shape: number[];
    dtype: "int32";
    data: Int32Array;
  };

/** Thrown for any malformed or unacceptable frame; `where` names the peer/context. */
export class FrameError extends Error {
  override name = "FrameError";
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("wire codec assumes a little-endian host");
}

function checkU32(value: number, what: string) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new FrameError(`${what}=${value} is not a u32`);
  }
}

export function frameBytes(frame: Frame): number {
  return FRAME_HEADER_BYTES_MIN + 4 * frame.shape.length + 4 * frame.data.length;
}

/** Encodes frames back to back into one message. Float payloads must be finite. */
export function encodeMessage(
  frames: readonly Frame[],
  limits: FrameLimits = DEFAULT_FRAME_LIMITS,
): Uint8Array {
  if (frames.length === 0 || frames.length > limits.framesMax) {
    throw new FrameError(`message has ${frames.length} frames, limit 1..${limits.framesMax}`);
  }
  const total = frames.reduce((n, f) => n + frameBytes(f), 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const frame of frames) {
    const rank = frame.shape.length;
    if (rank < 1 || rank > FRAME_RANK_MAX) {
      throw new FrameError(`${frame.kind}: rank ${rank}, limit 1..${FRAME_RANK_MAX}`);
    }
    const count = frame.shape.reduce((a, b) => a * b, 1);
    if (!frame.shape.every((d) => Number.isInteger(d) && d > 0) || count !== frame.data.length) {
      throw new FrameError(
        `${frame.kind}: shape [${frame.shape}] does not match ${frame.data.length} values`,
      );
    }
    if (count > limits.elementsMax) {
      throw new FrameError(`${frame.kind}: ${count} elements, limit ${limits.elementsMax}`);
    }
    checkU32(frame.round, "round");
    checkU32(frame.step, "step");
    if (frame.dtype === "float32") assertFinite(frame.data, `encode ${frame.kind}`);
    view.setUint32(offset, FRAME_MAGIC, true);
    view.setUint8(offset + 4, FRAME_VERSION);
    view.setUint8(offset + 5, FrameKind[frame.kind]);
    view.setUint8(offset + 6, frame.dtype === "float32" ? 1 : 2);
    view.setUint8(offset + 7, rank);
    view.setUint32(offset + 8, frame.round, true);
    view.setUint32(offset + 12, frame.step, true);
    frame.shape.forEach((d, i) => view.setUint32(offset + 16 + 4 * i, d, true));
    offset += 16 + 4 * rank;
    out.set(
      new Uint8Array(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength),
      offset,
    );
    offset += frame.data.byteLength;
  }
  return out;
}

export interface DecodeOptions {
  /** Payloads as views into `bytes` where they are 4-byte aligned (always, for a message that
   * starts aligned: headers and payloads are multiples of 4 bytes) instead of copies. For a caller
   * that uses the frames at once and does not modify `bytes` while it holds them. */
  views?: boolean;
}

/** Decodes a whole message; rejects trailing bytes, unknown fields, limits, NaN/Inf payloads. */
export function decodeMessage(
  bytes: Uint8Array,
  where: string,
  limits: FrameLimits = DEFAULT_FRAME_LIMITS,
  options: DecodeOptions = {},
): Frame[] {
  if (!(bytes instanceof Uint8Array)) throw new FrameError(`${where}: message is not bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: Frame[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (frames.length >= limits.framesMax) {
      throw new FrameError(`${where}: more than ${limits.framesMax} frames`);
    }
    const at = `${where}: frame ${frames.length} at byte ${offset}`;
    if (bytes.length - offset < FRAME_HEADER_BYTES_MIN) {
      throw new FrameError(`${at}: truncated header`);
    }
    if (view.getUint32(offset, true) !== FRAME_MAGIC) throw new FrameError(`${at}: bad magic`);
    const version = view.getUint8(offset + 4);
    if (version !== FRAME_VERSION) throw new FrameError(`${at}: unsupported version ${version}`);
    const kind = KIND_NAMES.get(view.getUint8(offset + 5) as 1);
    if (!kind) throw new FrameError(`${at}: unknown kind ${view.getUint8(offset + 5)}`);
    const dtypeCode = view.getUint8(offset + 6);
    if (dtypeCode !== 1 && dtypeCode !== 2) {
      throw new FrameError(`${at}: unknown dtype ${dtypeCode}`);
    }
    const rank = view.getUint8(offset + 7);
    if (rank < 1 || rank > FRAME_RANK_MAX) {
      throw new FrameError(`${at}: rank ${rank}, limit 1..${FRAME_RANK_MAX}`);
    }
    if (bytes.length - offset < 16 + 4 * rank) throw new FrameError(`${at}: truncated shape`);
    const round = view.getUint32(offset + 8, true);
    const step = view.getUint32(offset + 12, true);
    const shape: number[] = [];
    let count = 1;
    for (let i = 0; i < rank; i++) {
      const d = view.getUint32(offset + 16 + 4 * i, true);
      if (d === 0) throw new FrameError(`${at}: zero dimension in shape`);
      count *= d;
      if (count > limits.elementsMax) {
        throw new FrameError(`${at}: more than ${limits.elementsMax} elements`);
      }
      shape.push(d);
    }
    offset += 16 + 4 * rank;
    const payloadBytes = 4 * count;
    if (bytes.length - offset < payloadBytes) {
      throw new FrameError(
        `${at}: payload has ${bytes.length - offset} bytes, shape [${shape}] needs ${payloadBytes}`,
      );
    }
    const start = bytes.byteOffset + offset;
    // Otherwise slice() copies into a fresh, 4-byte aligned buffer.
    const [buffer, byteOffset] = options.views && start % 4 === 0
      ? [bytes.buffer, start]
      : [bytes.slice(offset, offset + payloadBytes).buffer, 0];
    offset += payloadBytes;
    if (dtypeCode === 1) {
      const data = new Float32Array(buffer, byteOffset, count);
      assertFinite(data, `${at} (${kind})`);
      frames.push({ kind, round, step, shape, dtype: "float32", data });
    } else {
      const data = new Int32Array(buffer, byteOffset, count);
      frames.push({ kind, round, step, shape, dtype: "int32", data });
    }
  }
  if (frames.length === 0) throw new FrameError(`${where}: empty message`);
  return frames;
}

function assertFinite(data: Float32Array, where: string) {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) throw new FrameError(`${where}: non-finite value ${v} at element ${i}`);
  }
}

/** Finds the one frame of `kind` and checks round/step/rank; throws naming `where`. */
export function expectFrame(
  frames: readonly Frame[],
  kind: FrameKindName,
  expected: { round: number; step: number; rank: number; dtype: "float32" | "int32" },
  where: string,
): Frame {
  const matching = frames.filter((f) => f.kind === kind);
  if (matching.length !== 1) {
    throw new FrameError(`${where}: expected one ${kind} frame, got ${matching.length}`);
  }
  const frame = matching[0];
  if (frame.round !== expected.round || frame.step !== expected.step) {
    throw new FrameError(
      `${where}: ${kind} frame is for round ${frame.round} step ${frame.step}, expected round ${expected.round} step ${expected.step}`,
    );
  }
  if (frame.shape.length !== expected.rank || frame.dtype !== expected.dtype) {
    throw new FrameError(
      `${where}: ${kind} frame is ${frame.dtype}[${frame.shape}], expected rank ${expected.rank} ${expected.dtype}`,
    );
  }
  return frame;
}
