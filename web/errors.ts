// The one error shape every failure uses: `{error: {code, message, details}}`.
import { ViewError, type ViewErrorCode } from "./node_view.ts";

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 500 | 501 | 503;

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export function errorResponse(
  status: ErrorStatus,
  code: string,
  message: string,
  details: unknown = null,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ error: { code, message, details } }), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

const VIEW_STATUS: Record<ViewErrorCode, ErrorStatus> = {
  not_found: 404,
  conflict: 409,
  invalid_input: 400,
  unavailable: 503,
  not_available: 501,
};

/** Maps anything thrown by a handler to a response; unknown errors never leak their message. */
export function toErrorResponse(err: unknown): { response: Response; unexpected: boolean } {
  if (err instanceof ApiError) {
    return {
      response: errorResponse(err.status, err.code, err.message, err.details, err.headers),
      unexpected: false,
    };
  }
  if (err instanceof ViewError) {
    return {
      response: errorResponse(VIEW_STATUS[err.code], err.code, err.message, err.details),
      unexpected: false,
    };
  }
  return {
    response: errorResponse(500, "internal", "internal error; see the node's log"),
    unexpected: true,
  };
}

export const notAvailable = (what: string) =>
  new ApiError(501, "not_available", `${what} is not available on this node's role`);
