// The only module that touches `Deno.*` or `Bun.*`. Everything else in iomt-sfl is written
// against web-standard or `node:` APIs so that it runs unchanged under `deno run`, `deno test`,
// `bun run` and the `bun build --compile` binary.
import process from "node:process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export type RuntimeName = "deno" | "bun";

interface BunServer {
  port: number;
  hostname: string;
  stop(closeActiveConnections?: boolean): void | Promise<void>;
}
interface BunGlobal {
  serve(options: {
    fetch: (request: Request) => Response | Promise<Response>;
    hostname: string;
    port: number;
    idleTimeout?: number;
    maxRequestBodySize?: number;
    error?: (error: Error) => Response;
  }): BunServer;
  main: string;
  version: string;
}

const globals = globalThis as unknown as { Bun?: BunGlobal; Deno?: typeof Deno };

export function runtimeName(): RuntimeName {
  if (globals.Bun) return "bun";
  if (globals.Deno) return "deno";
  throw new Error("iomt-sfl runs on Deno or Bun; this runtime is neither");
}

export function runtimeVersion(): string {
  return globals.Bun ? `bun ${globals.Bun.version}` : `deno ${globals.Deno!.version.deno}`;
}

/** True inside the single binary made by compile.sh (bun build --compile). */
export function isCompiledBinary(): boolean {
  // Bun puts the bundled entry point on its virtual file system.
  return Boolean(globals.Bun && globals.Bun.main.startsWith("/$bunfs/"));
}

/** The command that starts this same program again with other arguments (for `run`). */
export function selfCommand(args: readonly string[]): { command: string; args: string[] } {
  if (isCompiledBinary()) return { command: process.execPath, args: [...args] };
  const mainPath = join(dirname(fileURLToPath(import.meta.url)), "..", "main.ts");
  if (globals.Bun) return { command: process.execPath, args: [mainPath, ...args] };
  return { command: process.execPath, args: ["run", "--allow-all", mainPath, ...args] };
}

export interface ServeOptions {
  fetch: (request: Request) => Response | Promise<Response>;
  hostname: string;
  /** 0 picks a free port; the chosen one is in the returned handle. */
  port: number;
  /** Hard cap enforced by the runtime; routes enforce their own smaller limits. */
  maxRequestBodyBytes: number;
}

export interface ServerHandle {
  hostname: string;
  port: number;
  close(): Promise<void>;
}

/** Starts an HTTP server. Rejects with a clear message when the address is in use. */
export async function serve(options: ServeOptions): Promise<ServerHandle> {
  const where = `${options.hostname}:${options.port}`;
  try {
    if (globals.Bun) {
      const server = globals.Bun.serve({
        fetch: options.fetch,
        hostname: options.hostname,
        port: options.port,
        // SSE streams stay open for minutes; Bun's default idle timeout is 10 s.
        idleTimeout: 0,
        maxRequestBodySize: options.maxRequestBodyBytes,
      });
      return {
        hostname: options.hostname,
        port: server.port,
        close: async () => {
          await server.stop(true);
        },
      };
    }
    const controller = new AbortController();
    let resolveListening: (port: number) => void;
    const listening = new Promise<number>((resolve) => (resolveListening = resolve));
    const server = globals.Deno!.serve({
      hostname: options.hostname,
      port: options.port,
      signal: controller.signal,
      onListen: (address) => resolveListening(address.port),
    }, options.fetch);
    const port = await listening;
    return {
      hostname: options.hostname,
      port,
      close: async () => {
        controller.abort();
        await server.finished;
      },
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/in use|EADDRINUSE/i.test(message)) {
      throw new Error(
        `address ${where} is already in use; choose another --listen port or stop the other process`,
      );
    }
    throw new Error(`cannot listen on ${where}: ${message}`);
  }
}

export type SignalName = "SIGINT" | "SIGTERM" | "SIGHUP";

/** Registers a handler for a termination signal; returns a function that removes it. */
export function onSignal(signal: SignalName, handler: () => void): () => void {
  if (globals.Deno) {
    globals.Deno.addSignalListener(signal, handler);
    return () => globals.Deno!.removeSignalListener(signal, handler);
  }
  process.on(signal, handler);
  return () => process.off(signal, handler);
}

/** Starts a module worker (a separate isolate with its own tfjs/wasm instance). */
export function startWorker(moduleUrl: URL, name: string): Worker {
  return new Worker(moduleUrl.href, { type: "module", name });
}

/** Peak resident set size of this process in bytes, where the OS reports it. */
export function peakRssBytes(): number {
  // node:process resourceUsage().maxRSS is in KiB on Linux in both runtimes.
  try {
    return process.resourceUsage().maxRSS * 1024;
  } catch {
    return process.memoryUsage().rss;
  }
}
