// Loads a node's config file (written by `iomt-sfl init` or `run`), its key and the genesis, and
// checks that they belong together. Every problem names the node, the file and the fix.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { type ChainContext, chainContext, parseGenesis } from "../ledger/chain/genesis.ts";
import { type LoadedKey, parseKeyFile } from "../ledger/crypto/keyfile.ts";
import { defaultModelConfig, type ModelConfig } from "../ml/model/config.ts";
import type { NodeConfig } from "./deployment.ts";
import type { TrialSpec } from "./trial_spec.ts";

const NODE_CONFIG_BYTES_MAX = 256 * 1024;

export interface LoadedNode {
  config: NodeConfig;
  /** Directory the config's relative paths are resolved against. */
  baseDir: string;
  key: LoadedKey;
  chain: ChainContext;
  resolve(path: string): string;
}

export class NodeConfigError extends Error {
  override name = "NodeConfigError";
}

export async function loadNode(path: string, role: NodeConfig["role"]): Promise<LoadedNode> {
  const text = readText(path, "node config");
  let config: NodeConfig;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new NodeConfigError(`${path}: not JSON (${(error as Error).message})`);
  }
  if (config.role !== role) {
    throw new NodeConfigError(
      `${path}: this is a ${config.role} config; start it with \`iomt-sfl ${config.role} --node ${path}\``,
    );
  }
  // Node configs live in <deployment>/nodes/; their paths are relative to <deployment>.
  const baseDir = join(dirname(path), "..");
  const resolve = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
  const genesisPath = resolve(config.genesis);
  let chain: ChainContext;
  try {
    chain = chainContext(parseGenesis(readText(genesisPath, "genesis")));
  } catch (error) {
    throw new NodeConfigError(`${config.id}: genesis ${genesisPath}: ${(error as Error).message}`);
  }
  const keyPath = resolve(config.key);
  const key = await parseKeyFile(readText(keyPath, "key file"), keyPath);
  const known = chain.keys.get(key.address);
  if (!known) {
    throw new NodeConfigError(
      `${config.id}: key ${keyPath} (address ${key.address}) is not in genesis ${genesisPath}; ` +
        `use the key file that \`iomt-sfl init\` wrote for this node, or add its public key to the genesis`,
    );
  }
  if (known.role !== role || known.id !== config.id) {
    throw new NodeConfigError(
      `${config.id}: key ${keyPath} belongs to ${known.role} "${known.id}" in genesis, not ${role} "${config.id}"`,
    );
  }
  return { config, baseDir, key, chain, resolve };
}

function readText(path: string, what: string): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new NodeConfigError(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
  if (bytes.length > NODE_CONFIG_BYTES_MAX * 64) {
    throw new NodeConfigError(`${what} ${path} is too large`);
  }
  return new TextDecoder().decode(bytes);
}

/** The model every node of a trial builds: default shape for the data, with the trial's overrides.
 * A split trial's activation clipping is part of the device function on every node. */
export function modelConfigFor(trial: TrialSpec, features: number, classes: number): ModelConfig {
  const clip = trial.mode !== "fedavg" && trial.mode !== "centralized"
    ? trial.protection?.clipNorm
    : undefined;
  return {
    ...defaultModelConfig(features, classes),
    ...trial.model,
    features,
    classes,
    ...(clip !== undefined ? { activationClipNorm: clip } : {}),
  };
}
