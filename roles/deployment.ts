// `iomt-sfl init`: a deployment directory with a genesis, one key file (0600) and one config per
import process from "node:process";
// node, and the commands that start each node. Written to a temporary directory and renamed, so
// a failure leaves nothing half-written.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createGenesis, DEFAULT_PARAMS } from "../ledger/chain/genesis.ts";
import type { Genesis } from "../ledger/chain/types.ts";
import { generateKeyPair } from "../ledger/crypto/ed25519.ts";
import { keyFileFor, type KeyRole, writeKeyFile } from "../ledger/crypto/keyfile.ts";
import type { TrialSpec } from "./trial_spec.ts";
import { PREPARED_DATA_FILE } from "./trial_data.ts";

export const VALIDATORS_MAX = 100;
export const DEVICES_MAX = 1000;
export const EDGES_MAX = 16;
/** Genesis id of the operator's key (keys/admin.json). */
export const ADMIN_KEY_ID = "admin";

export interface DeploymentSpec {
  outDir: string;
  chainId: string;
  devices: number;
  edges: number;
  validators: number;
  /** Hosts (names or IPs) the validators and edges are spread over, round robin. */
  hosts: string[];
  validatorBasePort: number;
  edgeBasePort: number;
  /** Explicit ports (e.g. free ports found by `run`); otherwise base port + index. */
  validatorPorts?: number[];
  edgePorts?: number[];
  trial: TrialSpec;
  /** Token for admin API actions; written into every node config. */
  adminToken: string;
  /** The trial's data prepared once (`run`); every node loads it instead of preparing its own. */
  preparedData?: Uint8Array;
}

export interface NodeConfig {
  role: "validator" | "edge" | "device";
  id: string;
  /** Paths are relative to the deployment directory. */
  key: string;
  genesis: string;
  listen?: string;
  db?: string;
  edge_url?: string;
  /** Device: its index in the trial's partition of the data. */
  device_index?: number;
  trial: TrialSpec;
  admin_token: string;
  /** Bearer token for the read-only API/UI of the node; absent: public. */
  read_token?: string;
  /** The trial's prepared data file (written by `run`), relative to the deployment. */
  prepared_data?: string;
}

export interface Deployment {
  dir: string;
  genesis: Genesis;
  nodes: NodeConfig[];
  /** One shell command per node, in start order (validators, edges, devices). */
  commands: string[];
  /** The operator's key file (admin role in genesis). */
  adminKey: string;
}

export function validatorEndpoint(spec: DeploymentSpec, index: number): string {
  return `http://${hostFor(spec, index)}:${
    spec.validatorPorts?.[index] ?? spec.validatorBasePort + index
  }`;
}

export function edgeEndpoint(spec: DeploymentSpec, index: number): string {
  return `http://${hostFor(spec, spec.validators + index)}:${
    spec.edgePorts?.[index] ?? spec.edgeBasePort + index
  }`;
}

function hostFor(spec: DeploymentSpec, slot: number): string {
  return spec.hosts[slot % spec.hosts.length];
}

/** Creates the deployment; refuses an existing non-empty directory. */
export async function writeDeployment(spec: DeploymentSpec): Promise<Deployment> {
  checkSpec(spec);
  const dir = resolve(spec.outDir);
  if (existsSync(dir)) throw new Error(`${dir} already exists; choose a new --out directory`);
  mkdirSync(dirname(dir), { recursive: true });
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, "keys"), { recursive: true });
  mkdirSync(join(staging, "nodes"), { recursive: true });
  try {
    const makeKey = async (role: KeyRole, id: string) => {
      const pair = await generateKeyPair();
      writeKeyFile(join(staging, "keys", `${id}.json`), keyFileFor(pair, role, id));
      return { id, publicKey: pair.publicKey };
    };
    const validators = [];
    for (let i = 0; i < spec.validators; i++) {
      validators.push({
        ...(await makeKey("validator", `validator-${i}`)),
        endpoint: validatorEndpoint(spec, i),
      });
    }
    const participants = [];
    for (let e = 0; e < spec.edges; e++) {
      participants.push({ ...(await makeKey("edge", `edge-${e}`)), role: "edge" as const });
    }
    for (let d = 0; d < spec.devices; d++) {
      participants.push({ ...(await makeKey("device", `device-${d}`)), role: "device" as const });
    }
    // The operator's key: signs quarantine/readmit transactions (`iomt-sfl ledger quarantine`).
    participants.push({ ...(await makeKey("admin", ADMIN_KEY_ID)), role: "admin" as const });
    const edgeEndpoints: Record<string, string> = {};
    for (let e = 0; e < spec.edges; e++) edgeEndpoints[`edge-${e}`] = edgeEndpoint(spec, e);
    const genesis = createGenesis({
      chainId: spec.chainId,
      genesisTimeMs: Date.now(),
      validators,
      participants,
      params: {
        ...structuredClone(DEFAULT_PARAMS),
        // With one coordinating edge the validators decide every round (ledger/app); more edges
        // would need one round sequence each, which the ledger does not have yet.
        ext: {
          edge_endpoints: edgeEndpoints,
          ledger_rounds: spec.edges === 1 && spec.trial.defence !== false,
        },
      },
    });
    writeFileSync(join(staging, "genesis.json"), JSON.stringify(genesis, null, 2) + "\n");

    const nodes: NodeConfig[] = [];
    if (spec.preparedData) writeFileSync(join(staging, PREPARED_DATA_FILE), spec.preparedData);
    const base = {
      genesis: "genesis.json",
      trial: spec.trial,
      admin_token: spec.adminToken,
      ...(spec.preparedData ? { prepared_data: PREPARED_DATA_FILE } : {}),
    };
    for (let i = 0; i < spec.validators; i++) {
      const id = `validator-${i}`;
      nodes.push({
        ...base,
        role: "validator",
        id,
        key: `keys/${id}.json`,
        listen: listenOf(validatorEndpoint(spec, i)),
        db: `data/${id}.db`,
      });
    }
    for (let e = 0; e < spec.edges; e++) {
      const id = `edge-${e}`;
      nodes.push({
        ...base,
        role: "edge",
        id,
        key: `keys/${id}.json`,
        listen: listenOf(edgeEndpoint(spec, e)),
      });
    }
    for (let d = 0; d < spec.devices; d++) {
      const id = `device-${d}`;
      // Devices are assigned to edges round robin.
      nodes.push({
        ...base,
        role: "device",
        id,
        key: `keys/${id}.json`,
        edge_url: edgeEndpoint(spec, d % spec.edges),
        device_index: d,
      });
    }
    const commands = nodes.map((node) =>
      node.role === "validator"
        ? `iomt-sfl validator --genesis ${join(dir, node.genesis)} --key ${join(dir, node.key)} ` +
          `--db ${join(dir, node.db!)} --listen ${node.listen}`
        : `iomt-sfl ${node.role} --node ${join(dir, "nodes", `${node.id}.json`)}`
    );
    for (const node of nodes) {
      writeFileSync(
        join(staging, "nodes", `${node.id}.json`),
        JSON.stringify(node, null, 2) + "\n",
        { mode: 0o600 },
      );
    }
    writeFileSync(join(staging, "START.txt"), startText(commands, dir));
    mkdirSync(join(staging, "data"));
    renameSync(staging, dir);
    return { dir, genesis, nodes, commands, adminKey: join(dir, "keys", `${ADMIN_KEY_ID}.json`) };
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

function listenOf(endpoint: string): string {
  const url = new URL(endpoint);
  return `${url.hostname}:${url.port}`;
}

function checkSpec(spec: DeploymentSpec): void {
  const n = spec.validators;
  if (n < 1 || n > VALIDATORS_MAX || (n - 1) % 3 !== 0) {
    throw new Error(
      `--validators ${n}: PBFT needs n = 3f + 1 (1, 4, 7, 10, ...) up to ${VALIDATORS_MAX}`,
    );
  }
  if (spec.devices < 1 || spec.devices > DEVICES_MAX) {
    throw new Error(`--devices ${spec.devices}: expected 1..${DEVICES_MAX}`);
  }
  if (spec.edges < 1 || spec.edges > EDGES_MAX) {
    throw new Error(`--edges ${spec.edges}: expected 1..${EDGES_MAX}`);
  }
  if (spec.hosts.length === 0) throw new Error("--hosts: at least one host");
}

function startText(commands: string[], dir: string): string {
  const admin = `--genesis ${join(dir, "genesis.json")} --key ${join(dir, "keys", "admin.json")}`;
  return [
    "Start each node on its host (validators first, then edges, then devices):",
    "",
    ...commands.map((c) => `  ${c}`),
    "",
    "Each node's config (nodes/*.json) names its key file, the genesis, its listen address and",
    "its data. Key files are secret (mode 0600): copy each only to the host of its node.",
    "",
    "The operator's key (keys/admin.json) stays with the operator; with it:",
    `  iomt-sfl ledger quarantine ${admin} device-0 --reason "..."`,
    `  iomt-sfl ledger readmit ${admin} device-0`,
    "Rounds are stopped and started at the edge's API with the admin token of the node configs:",
    "  POST /api/v1/admin/rounds/stop, POST /api/v1/admin/rounds/start",
    "",
  ].join("\n");
}
