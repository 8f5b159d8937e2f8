// Child processes of `iomt-sfl run`. Every child gets a stdin pipe from the parent and exits
// when that pipe closes, so that no child outlives its parent, even when the parent is killed
// with SIGKILL and cannot forward anything. SIGINT/SIGTERM in the parent are forwarded.
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import process from "node:process";
import { onSignal, selfCommand } from "../runtime/adapter.ts";
import { logger } from "../util/log.ts";

const log = logger("supervisor");

/** Set in a child's environment; the child then exits when its stdin closes. */
export const PARENT_WATCH_ENV = "IOMT_SFL_PARENT_WATCH";
/** How long children get to exit after SIGTERM before SIGKILL. */
export const CHILD_STOP_GRACE_MS = 5_000;
export const CHILDREN_MAX = 512;

export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code (or 128 + signal number) when the child ends. */
  readonly exited: Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

export interface SpawnSelfOptions {
  env?: Record<string, string>;
  /** Receives each line the child writes to stderr (its log). */
  onStderrLine?: (line: string) => void;
  onStdoutLine?: (line: string) => void;
  /** Scheduling niceness 0..19 (higher yields the CPU to others); absent: the parent's. */
  niceness?: number;
}

export class Supervisor {
  readonly #children = new Map<number, { handle: ChildHandle; process: ChildProcess }>();
  readonly #removeSignalHandlers: Array<() => void> = [];
  #stopping: Promise<void> | null = null;

  constructor(options: { forwardSignals: boolean } = { forwardSignals: true }) {
    if (options.forwardSignals) {
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        this.#removeSignalHandlers.push(onSignal(signal, () => {
          log.warn(`received ${signal}: stopping ${this.#children.size} child process(es)`);
          void this.stopAll().then(() => process.exit(signal === "SIGINT" ? 130 : 143));
        }));
      }
    }
  }

  get size(): number {
    return this.#children.size;
  }

  /** Starts `iomt-sfl <args>` (the same binary or script) as a supervised child. */
  spawnSelf(name: string, args: readonly string[], options: SpawnSelfOptions = {}): ChildHandle {
    if (this.#children.size >= CHILDREN_MAX) {
      throw new Error(`more than ${CHILDREN_MAX} child processes`);
    }
    if (this.#stopping) throw new Error("supervisor is stopping");
    const { command, args: fullArgs } = selfCommand(args);
    const child = spawn(command, fullArgs, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...options.env, [PARENT_WATCH_ENV]: "1" },
    });
    if (child.pid === undefined) throw new Error(`cannot start ${name}: ${command}`);
    const pid = child.pid;
    if (options.niceness !== undefined) {
      if (!Number.isInteger(options.niceness) || options.niceness < 0 || options.niceness > 19) {
        throw new Error(`${name}: niceness ${options.niceness} outside 0..19`);
      }
      try {
        os.setPriority(pid, options.niceness);
      } catch (error) {
        // Only a scheduling preference: the child runs either way.
        log.debug(`${name}: cannot set niceness ${options.niceness}`, {
          error: (error as Error).message,
        });
      }
    }
    forwardLines(child.stdout!, options.onStdoutLine);
    forwardLines(
      child.stderr!,
      options.onStderrLine ?? ((line) => process.stderr.write(`${line}\n`)),
    );
    const exited = new Promise<number>((resolve) => {
      child.on("exit", (code, signal) => {
        this.#children.delete(pid);
        resolve(code ?? 128 + signalNumber(signal));
      });
      child.on("error", (error) => {
        log.error(`${name} failed to start`, { error: error.message });
        this.#children.delete(pid);
        resolve(127);
      });
    });
    const handle: ChildHandle = {
      name,
      pid,
      exited,
      kill: (signal = "SIGTERM") => {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      },
    };
    this.#children.set(pid, { handle, process: child });
    return handle;
  }

  /**
   * Like spawnSelf, but starts the child again (after `delayMs`) when it dies while the
   * supervisor is not stopping, at most `restartsMax` times: a crashed validator resumes from
   * its database, a device rejoins the next round, the edge resumes its round state.
   * `exited` resolves with the last exit code once no restart follows.
   */
  spawnSelfRestarting(
    name: string,
    args: readonly string[],
    options: SpawnSelfOptions & {
      restartsMax: number;
      delayMs: number;
      onRestart?: (attempt: number, code: number) => void;
    },
  ): { readonly exited: Promise<number>; current(): ChildHandle } {
    let handle = this.spawnSelf(name, args, options);
    const exited = (async () => {
      for (let attempt = 1;; attempt++) {
        const code = await handle.exited;
        if (this.#stopping || code === 0 || attempt > options.restartsMax) return code;
        log.warn(
          `${name} exited with code ${code}; restarting (${attempt}/${options.restartsMax})`,
        );
        options.onRestart?.(attempt, code);
        await new Promise((resolve) => setTimeout(resolve, options.delayMs));
        if (this.#stopping) return code;
        handle = this.spawnSelf(name, args, options);
      }
    })();
    return { exited, current: () => handle };
  }

  /** SIGTERM every child, SIGKILL the ones still alive after the grace period. */
  stopAll(graceMs = CHILD_STOP_GRACE_MS): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      const children = [...this.#children.values()];
      for (const { handle } of children) handle.kill("SIGTERM");
      const deadline = new Promise<"timeout">((resolve) => {
        const timer = setTimeout(() => resolve("timeout"), graceMs);
        (timer as unknown as { unref?: () => void }).unref?.();
      });
      const all = Promise.all(children.map(({ handle }) => handle.exited));
      if (await Promise.race([all, deadline]) === "timeout") {
        for (const { handle } of this.#children.values()) {
          log.warn(`${handle.name} (pid ${handle.pid}) ignored SIGTERM for ${graceMs} ms: SIGKILL`);
          handle.kill("SIGKILL");
        }
        await all;
      }
      for (const remove of this.#removeSignalHandlers) remove();
    })();
    return this.#stopping;
  }
}

/**
 * In a child started by a Supervisor: exit as soon as the parent is gone (its end of our stdin
 * closes). Call once at startup of every long-running role.
 */
export function exitWhenParentDies(onParentGone: () => void = () => process.exit(1)): void {
  if (process.env[PARENT_WATCH_ENV] !== "1") return;
  process.stdin.on("data", () => {/* the parent never writes; reading keeps the pipe watched */});
  process.stdin.on("end", () => {
    log.info("parent process is gone or stopping us (stdin closed): exiting");
    onParentGone();
  });
  process.stdin.on("error", () => onParentGone());
}

function forwardLines(stream: NodeJS.ReadableStream, onLine?: (line: string) => void) {
  let buffered = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      onLine?.(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
    // A child that never ends its line cannot grow our memory without bound.
    if (buffered.length > 64 * 1024) {
      onLine?.(buffered);
      buffered = "";
    }
  });
  stream.on("end", () => {
    if (buffered) onLine?.(buffered);
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return signal ? numbers[signal] ?? 0 : 0;
}
