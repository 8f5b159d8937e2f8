// Shared helpers for end-to-end tests: they run the compiled binary, never the sources.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The compiled binary under test; `IOMT_SFL_TEST_BINARY` points the e2e tests at another build. */
export const BINARY_PATH = Deno.env.get("IOMT_SFL_TEST_BINARY") ?? `${REPO_ROOT}dist/iomt-sfl`;

export function requireBinary(): string {
  if (!existsSync(BINARY_PATH)) {
    throw new Error(
      `${BINARY_PATH} is missing: build it with ./compile.sh (test.sh does this first)`,
    );
  }
  return BINARY_PATH;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the binary to completion with a hard time bound. */
export async function runBinary(
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    clearEnv?: boolean;
    timeoutMs?: number;
    command?: string[];
  } = {},
): Promise<RunResult> {
  const binary = requireBinary();
  const [program, ...prefix] = options.command ?? [binary];
  const child = new Deno.Command(program, {
    args: [...prefix, ...args],
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const output = await child.output();
  clearTimeout(timer);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Wraps a command to run in a new network namespace that has only loopback (brought up). */
export function inLoopbackOnlyNamespace(command: string[]): string[] {
  return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', ...command];
}

/** True where `unshare -n` works (root); CI must have it. */
export async function loopbackNamespaceAvailable(): Promise<boolean> {
  const probe = await new Deno.Command("unshare", {
    args: ["-n", "sh", "-c", "ip link set lo up"],
    stderr: "null",
  })
    .output().catch(() => null);
  const ok = probe?.code === 0;
  if (!ok && Deno.env.get("CI") === "true") {
    throw new Error("unshare -n and ip are required in CI (run as root)");
  }
  return ok;
}

/** Reads stderr lines until one matches; bounded. */
export async function waitForLine(
  lines: AsyncIterator<string>,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const next = await Promise.race([
      lines.next(),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), deadline - Date.now())),
    ]);
    if (!next || next.done) break;
    const match = pattern.exec(next.value);
    if (match) return match;
  }
  throw new Error(`no stderr line matched ${pattern} within ${timeoutMs} ms`);
}

export async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
}

/** Rows of `run`'s results table for `mode` (the table before "where the time went"). */
export function roundRows(stdout: string, mode: string): number {
  const table = stdout.split("where the time went")[0];
  return table.split("\n").filter((l) => new RegExp(`^${mode}\\s+\\d`).test(l)).length;
}

/** `iomt-sfl ledger verify --json` of validator `index` in a `run`/`init` deployment folder. */
export async function verifyDeploymentLedger(
  deployment: string,
  index: number,
): Promise<RunResult & { report: { ok: boolean; verified_height: number } | null }> {
  const result = await runBinary([
    "ledger",
    "verify",
    "--db",
    `${deployment}/data/validator-${index}.db`,
    "--genesis",
    `${deployment}/genesis.json`,
    "--json",
  ]);
  let report = null;
  try {
    report = JSON.parse(result.stdout);
  } catch { /* the assertion on the exit code names the output */ }
  return { ...result, report };
}
