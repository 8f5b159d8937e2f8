// HTTP face of the edge for devices. Every route is an Ed25519-signed request from a device in
// genesis (net/signed_request.ts); bodies are bounded; errors use the API's one error shape.
import { Hono } from "hono";
import type { RequestVerifier } from "../../net/signed_request.ts";
import { ApiError, toErrorResponse } from "../../web/errors.ts";
import { readLimited } from "../../web/route.ts";
import { decodeMessage } from "../../ml/wire/frame.ts";
import { logger } from "../../util/log.ts";
import { EdgeNode, EdgeRefusal } from "./edge_node.ts";

const log = logger("edge/http");

/** A split step carries one batch: 1024 rows x 44 steps x 64 channels x 4 bytes ≈ 11.5 MB. */
export const STEP_BODY_BYTES_MAX = 16 * 1024 * 1024;
/** Device (and, for FedAvg, edge) weights: the default model is < 1 MB. */
export const DONE_BODY_BYTES_MAX = 64 * 1024 * 1024;

export interface EdgeAppOptions {
  node: EdgeNode;
  verifier: RequestVerifier;
  /** Maps a verified sender address to the device id used in the work queue. */
  deviceIdOf: (address: string) => string | undefined;
  onRejected?: (reason: string) => void;
}

export function createEdgeApp(options: EdgeAppOptions): Hono {
  const { node, verifier } = options;
  const app = new Hono();

  const authenticate = async (request: Request, body: Uint8Array): Promise<string> => {
    const url = new URL(request.url);
    const result = await verifier.verify(
      request.headers,
      request.method,
      url.pathname + url.search,
      body,
      ["device"],
    );
    if (!result.ok) {
      options.onRejected?.(result.reason);
      throw new ApiError(401, result.reason, result.message);
    }
    const deviceId = options.deviceIdOf(result.sender);
    if (!deviceId || !node.queue.has(deviceId)) {
      options.onRejected?.("unknown_device");
      throw new ApiError(
        403,
        "unknown_device",
        `sender ${result.sender} is not a device of this edge`,
      );
    }
    return deviceId;
  };

  app.get("/v1/edge/work", async (c) => {
    const deviceId = await authenticate(c.req.raw, new Uint8Array(0));
    const waitMs = Number(c.req.query("wait_ms") ?? "0");
    if (!Number.isInteger(waitMs) || waitMs < 0) {
      throw new ApiError(400, "invalid_input", "wait_ms must be an integer ≥ 0");
    }
    const item = await node.queue.next(deviceId, waitMs);
    if (!item) return c.body(null, 204);
    return c.json(item);
  });

  app.get("/v1/edge/models/:sha256", async (c) => {
    await authenticate(c.req.raw, new Uint8Array(0));
    const blob = node.blob(c.req.param("sha256"));
    if (!blob) {
      throw new ApiError(404, "not_found", "no model with that hash at this edge (rounds move on)");
    }
    return c.body(blob as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
    });
  });

  app.post("/v1/edge/step", async (c) => {
    const body = await readLimited(c.req.raw, STEP_BODY_BYTES_MAX);
    const deviceId = await authenticate(c.req.raw, body);
    const reply = await node.stepInTurn(deviceId, body);
    return c.body(reply as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
    });
  });

  app.post("/v1/edge/done", async (c) => {
    const body = await readLimited(c.req.raw, DONE_BODY_BYTES_MAX);
    const deviceId = await authenticate(c.req.raw, body);
    const taskId = c.req.query("task") ?? "";
    const round = Number(c.req.query("round"));
    const samples = Number(c.req.query("samples"));
    const steps = Number(c.req.query("steps"));
    const lossMicro = Number(c.req.query("loss_micro"));
    for (
      const [name, value] of [["round", round], ["samples", samples], ["steps", steps], [
        "loss_micro",
        lossMicro,
      ]] as const
    ) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new ApiError(400, "invalid_input", `${name} must be an integer ≥ 0`);
      }
    }
    const frames = decodeMessage(body, `done from ${deviceId}`);
    // parameters frame step 0: device-side weights; step 1 (FedAvg baseline only): edge-side.
    const parameters = (step: number) =>
      frames.find((f) =>
        f.kind === "parameters" && f.step === step && f.round === round && f.dtype === "float32"
      );
    const device = parameters(0);
    if (!device) {
      throw new ApiError(
        400,
        "invalid_input",
        "done needs a float32 parameters frame (step 0) for this round",
      );
    }
    const accepted = node.queue.complete(deviceId, {
      taskId,
      round,
      samples,
      steps,
      lossMean: lossMicro / 1e6,
      device: device.data as Float32Array,
      edge: parameters(1)?.data as Float32Array | undefined,
    });
    if (!accepted) {
      throw new ApiError(
        409,
        "round_over",
        `task ${taskId} of round ${round} is no longer expected`,
      );
    }
    return c.json({ accepted: true });
  });

  app.notFound(() => toErrorResponse(new ApiError(404, "not_found", "no such route")).response);
  app.onError((error) => {
    if (error instanceof EdgeRefusal) {
      options.onRejected?.(error.code);
      return toErrorResponse(
        new ApiError(error.code === "no_task" ? 409 : 400, error.code, error.message),
      ).response;
    }
    const { response, unexpected } = toErrorResponse(error);
    if (unexpected) log.error("edge request failed", { error: (error as Error).message });
    return response;
  });
  return app;
}
