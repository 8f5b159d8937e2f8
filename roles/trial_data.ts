// A trial's data, as each node of the trial gets it: from the prepared file `run` wrote into the
// deployment (one preparation for the whole trial), else derived from the trial's description
// (an `init` deployment, where every node prepares its own).
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { prepareDataset, type PreparedDataset } from "../ml/data/prepare.ts";
import {
  decodePreparedDataset,
  encodePreparedDataset,
  PREPARED_FILE_BYTES_MAX,
} from "../ml/data/prepared_file.ts";
import type { NodeConfig } from "./deployment.ts";
import { prepareOptionsOf, type TrialSpec } from "./trial_spec.ts";

/** File name of the prepared data in a deployment written by `run`. */
export const PREPARED_DATA_FILE = "trial-data.bin";

/** Prepares the trial's data once and encodes it for the deployment. */
export async function prepareTrialData(
  trial: TrialSpec,
): Promise<{ data: PreparedDataset; bytes: Uint8Array }> {
  const options = prepareOptionsOf(trial);
  const data = await prepareDataset(options);
  return { data, bytes: await encodePreparedDataset(data, options) };
}

/** The node's trial data. `nodeConfigPath` locates the deployment (configs live in nodes/). */
export async function loadTrialData(
  config: Pick<NodeConfig, "trial" | "prepared_data" | "id">,
  nodeConfigPath: string,
): Promise<PreparedDataset> {
  const options = prepareOptionsOf(config.trial);
  if (config.prepared_data === undefined) return await prepareDataset(options);
  const base = join(dirname(nodeConfigPath), "..");
  const path = isAbsolute(config.prepared_data)
    ? config.prepared_data
    : join(base, config.prepared_data);
  let bytes: Uint8Array;
  try {
    const size = statSync(path).size;
    if (size > PREPARED_FILE_BYTES_MAX) throw new Error(`${size} bytes is too large`);
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(
      `${config.id}: cannot read the trial's prepared data ${path}: ${(error as Error).message}`,
    );
  }
  return await decodePreparedDataset(bytes, options, `${config.id}: ${path}`);
}
