// Outbound HTTP with a bound on everything: a timeout per attempt, a number of attempts, and a
// capped backoff. Each attempt builds a fresh request (signed requests need a fresh nonce).
import { logger } from "../util/log.ts";

const log = logger("http");

/** fetch, or an in-process app's fetch for `run --in-process`. */
export type Fetcher = (request: Request) => Promise<Response>;

export const globalFetcher: Fetcher = (request) => fetch(request);

export interface RetryPolicy {
  attempts: number;
  timeoutMs: number;
  backoffMs: number;
  backoffMsMax: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 5,
  timeoutMs: 30_000,
  backoffMs: 200,
  backoffMsMax: 5_000,
};

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * Sends until a response that is not a 5xx/429 arrives or attempts run out. 4xx responses are
 * returned (the caller decides); network errors and timeouts are retried.
 */
export async function sendWithRetry(
  fetcher: Fetcher,
  makeRequest: (signal: AbortSignal) => Promise<Request>,
  what: string,
  policy: RetryPolicy = DEFAULT_RETRY,
  signal?: AbortSignal,
): Promise<Response> {
  let lastError = "";
  let backoffMs = policy.backoffMs;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    signal?.throwIfAborted();
    const controller = new AbortController();
    const abortOuter = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", abortOuter, { once: true });
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${policy.timeoutMs} ms`)),
      policy.timeoutMs,
    );
    try {
      const response = await fetcher(await makeRequest(controller.signal));
      if (response.status < 500 && response.status !== 429) return response;
      lastError = `HTTP ${response.status}: ${await errorMessage(response)}`;
    } catch (error) {
      signal?.throwIfAborted();
      lastError = (error as Error).message;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abortOuter);
    }
    if (attempt < policy.attempts) {
      log.debug(
        `${what}: attempt ${attempt}/${policy.attempts} failed, retrying in ${backoffMs} ms`,
        { error: lastError },
      );
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, policy.backoffMsMax);
    }
  }
  throw new Error(`${what}: failed after ${policy.attempts} attempts: ${lastError}`);
}

/** The message of an API error body `{error: {code, message}}`, or the start of the text. */
export async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  try {
    const parsed = JSON.parse(text);
    if (parsed?.error?.message) return `${parsed.error.code}: ${parsed.error.message}`;
  } catch { /* not JSON */ }
  return text.slice(0, 200);
}

/** Throws an HttpError for any non-2xx response. */
export async function expectOk(response: Response, what: string): Promise<Response> {
  if (response.ok) return response;
  const text = await response.text().catch(() => "");
  let code = "http_error";
  let message = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text);
    code = parsed?.error?.code ?? code;
    message = parsed?.error?.message ?? message;
  } catch { /* not JSON */ }
  throw new HttpError(
    response.status,
    code,
    `${what}: HTTP ${response.status} ${code}: ${message}`,
  );
}
