// The edge's durable round state: after each aggregated round, the global model (both halves)
// and the number of rounds done, written atomically, so that a restarted edge resumes with the
// next round instead of starting over; a round whose report was not out yet is reported on
// resume. Checked on read: hashes must match the bytes.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeWeights, encodeWeights, modelHash } from "../../ledger/app/blob.ts";
import type { GlobalModel, RoundTraining } from "../../ml/train/loop.ts";

const STATE_FILE = "edge-state.json";

interface StateFile {
  v: 1;
  /** Rounds completed; the next round to run is this number (0-based). */
  roundsDone: number;
  device_sha256: string;
  edge_sha256: string;
  /** Guards against resuming another trial's state. */
  trial_key: string;
  /** The last round's training figures while its evaluation (and report) is still to come. */
  unreported?: RoundTraining & { extra?: unknown };
}

export interface EdgeResume {
  roundsDone: number;
  model: GlobalModel;
  /** Round roundsDone - 1 was aggregated but its report never went out: evaluate `model`. */
  unreported?: RoundTraining & { extra?: unknown };
}

/** `unreported`: set when the round is aggregated, cleared once its report is out. */
export function saveEdgeState(
  dir: string,
  trialKey: string,
  roundsDone: number,
  model: GlobalModel,
  unreported?: RoundTraining & { extra?: unknown },
): void {
  if (unreported && unreported.round !== roundsDone - 1) {
    throw new Error(`edge state: unreported round ${unreported.round} is not the last one done`);
  }
  mkdirSync(dir, { recursive: true });
  const deviceSha = modelHash(model.device), edgeSha = modelHash(model.edge);
  writeAtomic(join(dir, `${deviceSha}.bin`), encodeWeights(model.device));
  writeAtomic(join(dir, `${edgeSha}.bin`), encodeWeights(model.edge));
  const state: StateFile = {
    v: 1,
    roundsDone,
    device_sha256: deviceSha,
    edge_sha256: edgeSha,
    trial_key: trialKey,
    ...(unreported ? { unreported } : {}),
  };
  writeAtomic(join(dir, STATE_FILE), new TextEncoder().encode(JSON.stringify(state)));
}

/** The saved state, or null when there is none; throws on a corrupt or foreign state. */
export function loadEdgeState(dir: string, trialKey: string): EdgeResume | null {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path)) return null;
  const state = JSON.parse(readFileSync(path, "utf8")) as StateFile;
  if (state.v !== 1 || !Number.isInteger(state.roundsDone) || state.roundsDone < 0) {
    throw new Error(`${path}: not an edge state file`);
  }
  if (state.trial_key !== trialKey) {
    throw new Error(`${path} belongs to another trial configuration; move it away to start over`);
  }
  const read = (sha: string) => {
    const weights = decodeWeights(readFileSync(join(dir, `${sha}.bin`)));
    if (modelHash(weights) !== sha) throw new Error(`${dir}/${sha}.bin does not match its hash`);
    return weights;
  };
  if (state.unreported && state.unreported.round !== state.roundsDone - 1) {
    throw new Error(`${path}: unreported round ${state.unreported.round} is not the last one done`);
  }
  return {
    roundsDone: state.roundsDone,
    model: { device: read(state.device_sha256), edge: read(state.edge_sha256) },
    ...(state.unreported ? { unreported: state.unreported } : {}),
  };
}

function writeAtomic(path: string, bytes: Uint8Array) {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, path);
}
