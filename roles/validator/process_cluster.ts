// A local cluster of validator processes on loopback (the e2e test and the ledger benchmark):
// writes keys and a genesis with free ports, starts `iomt-sfl validator` per replica, and can
// kill -9 and restart one. Every wait is bounded and says what it waited for.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createGenesis, DEFAULT_PARAMS } from "../../ledger/chain/genesis.ts";
import type { Genesis, GenesisParams } from "../../ledger/chain/types.ts";
import {
  keyFileFor,
  keyFromSeedHex,
  type LoadedKey,
  writeKeyFile,
} from "../../ledger/crypto/keyfile.ts";

export interface ProcessClusterOptions {
  dir: string;
  /** argv prefix that runs iomt-sfl, e.g. [path to dist/iomt-sfl]. */
  command: string[];
  chainId?: string;
  devices?: number;
  params?: Partial<GenesisParams>;
  logLevel?: string;
  /** Receives each stderr line of a validator (its log). */
  onLog?: (index: number, line: string) => void;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function seedHex(label: number): string {
  return label.toString(16).padStart(4, "0").repeat(16);
}

export class ProcessCluster {
  readonly processes: (ChildProcess | null)[] = [];
  readonly exits: (Promise<number> | null)[] = [];
  readonly logs: string[][] = [];

  private constructor(
    readonly options: ProcessClusterOptions,
    readonly genesis: Genesis,
    readonly genesisPath: string,
    readonly validatorKeys: LoadedKey[],
    readonly deviceKeys: LoadedKey[],
    readonly endpoints: string[],
  ) {}

  static async create(options: ProcessClusterOptions): Promise<ProcessCluster> {
    mkdirSync(options.dir, { recursive: true });
    const validators = await Promise.all(
      [0, 1, 2, 3].map((i) => keyFromSeedHex(seedHex(0x100 + i), "validator", `v${i}`)),
    );
    const devices = await Promise.all(
      Array.from(
        { length: options.devices ?? 4 },
        (_, i) => keyFromSeedHex(seedHex(0x1000 + i), "device", `dev-${i}`),
      ),
    );
    const ports: number[] = [];
    while (ports.length < 4) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    const endpoints = ports.map((port) => `http://127.0.0.1:${port}`);
    const genesis = createGenesis({
      chainId: options.chainId ?? "iomt-sfl-e2e",
      genesisTimeMs: Date.now() - 1000,
      validators: validators.map((k, i) => ({
        id: k.id,
        publicKey: k.publicKey,
        endpoint: endpoints[i],
      })),
      participants: devices.map((k) => ({
        id: k.id,
        publicKey: k.publicKey,
        role: "device" as const,
      })),
      params: { ...structuredClone(DEFAULT_PARAMS), ...options.params },
    });
    const genesisPath = join(options.dir, "genesis.json");
    writeFileSync(genesisPath, JSON.stringify(genesis, null, 2) + "\n");
    for (const key of validators) {
      writeKeyFile(join(options.dir, `${key.id}.key.json`), keyFileFor(key, "validator", key.id));
    }
    return new ProcessCluster(options, genesis, genesisPath, validators, devices, endpoints);
  }

  dbPath(index: number): string {
    return join(this.options.dir, `v${index}.db`);
  }

  start(index: number): void {
    if (this.processes[index]) throw new Error(`validator ${index} is already running`);
    const [program, ...prefix] = this.options.command;
    const child = spawn(program, [
      ...prefix,
      "--log-level",
      this.options.logLevel ?? "warn",
      "validator",
      "--genesis",
      this.genesisPath,
      "--key",
      join(this.options.dir, `v${index}.key.json`),
      "--db",
      this.dbPath(index),
      "--listen",
      this.endpoints[index].replace("http://", ""),
    ], { stdio: ["ignore", "ignore", "pipe"] });
    this.processes[index] = child;
    const lines = this.logs[index] ??= [];
    let buffered = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (lines.length >= 2000) lines.shift();
        lines.push(line);
        this.options.onLog?.(index, line);
      }
    });
    this.exits[index] = new Promise((resolve) =>
      child.on("exit", (code, signal) => resolve(code ?? (signal === "SIGKILL" ? 137 : 143)))
    );
  }

  async startAll(): Promise<void> {
    for (let i = 0; i < 4; i++) this.start(i);
    for (let i = 0; i < 4; i++) await this.waitReady(i);
  }

  async status(
    index: number,
  ): Promise<
    Record<string, unknown> & { height: number; view: number; primary: { index: number } }
  > {
    const response = await fetch(`${this.endpoints[index]}/v1/status`, {
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) throw new Error(`validator ${index}: status HTTP ${response.status}`);
    return await response.json();
  }

  async waitReady(index: number, timeoutMs = 20_000): Promise<void> {
    await this.waitFor(`validator ${index} to answer /v1/status`, async () => {
      try {
        await this.status(index);
        return true;
      } catch {
        return false;
      }
    }, timeoutMs);
  }

  async waitFor(
    what: string,
    condition: () => Promise<boolean>,
    timeoutMs = 30_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < 4; i++) {
        const child = this.processes[i];
        if (child && child.exitCode !== null) {
          throw new Error(
            `waiting for ${what}: validator ${i} exited with ${child.exitCode}:\n${
              (this.logs[i] ?? []).slice(-20).join("\n")
            }`,
          );
        }
      }
      if (await condition()) return;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** kill -9: no chance to flush or say goodbye. */
  async kill(index: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.processes[index];
    if (!child) return;
    child.kill(signal);
    await this.exits[index];
    this.processes[index] = null;
  }

  async stopAll(): Promise<void> {
    await Promise.all([0, 1, 2, 3].map(async (i) => {
      const child = this.processes[i];
      if (!child) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await this.exits[i];
      clearTimeout(timer);
      this.processes[i] = null;
    }));
  }
}
