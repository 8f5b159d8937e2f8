// Server-sent events from a NodeView subscription. Bounded on both sides: the app caps the number
// of open streams, and each stream holds at most `queueMax` unsent events; a client that falls
// further behind is disconnected (EventSource reconnects and the UI refetches), so a stalled
// browser cannot grow the server's memory.
import type { NodeEvent, NodeView } from "./node_view.ts";

export interface SseOptions {
  heartbeatMs: number;
  queueMax: number;
  /** Called once when the stream ends for any reason. */
  onClose(): void;
}

const encoder = new TextEncoder();

function payload(event: NodeEvent): unknown {
  switch (event.type) {
    case "status":
      return event.status;
    case "round":
      return event.round;
    case "block":
      return event.block;
    case "device":
      return event.device;
    case "validator":
      return event.validators;
  }
}

export function frame(id: number, type: string, data: unknown): Uint8Array {
  // JSON never contains a raw newline, so one `data:` line is always enough.
  return encoder.encode(`id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** Subscribes first (so a refused subscription throws before any bytes are sent), then streams. */
export function eventStream(
  subscribe: NonNullable<NodeView["subscribe"]>,
  hello: unknown,
  options: SseOptions,
): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let nextId = 1;
  let timer: ReturnType<typeof setInterval> | undefined;

  const close = () => {
    if (closed) return;
    closed = true;
    if (timer !== undefined) clearInterval(timer);
    unsubscribe();
    options.onClose();
  };
  // A client that goes away cancels the body stream (Deno and Bun both do), which runs cancel();
  // request.signal is not used because Deno's legacy mode also aborts it on normal completion.
  const drop = () => {
    close();
    try {
      controller.close();
    } catch { /* already closed or errored */ }
  };
  const send = (bytes: Uint8Array) => {
    if (closed) return;
    if ((controller.desiredSize ?? 1) <= 0) {
      drop(); // too far behind: drop this client rather than buffer without bound
      return;
    }
    controller.enqueue(bytes);
  };

  const unsubscribe = subscribe((event) => send(frame(nextId++, event.type, payload(event))));

  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        c.enqueue(encoder.encode("retry: 3000\n\n"));
        c.enqueue(frame(nextId++, "hello", hello));
        timer = setInterval(() => send(encoder.encode(": ping\n\n")), options.heartbeatMs);
      },
      cancel() {
        close();
      },
    },
    new CountQueuingStrategy({ highWaterMark: options.queueMax }),
  );
}
