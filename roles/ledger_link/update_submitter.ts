// The device's side of update consensus: after local training, upload the device-side weights as
// a content-addressed blob to every validator, then submit a signed model_update naming its
// SHA-256 and wait until it is committed (so the edge's round_close is ordered after it). And
// before training: take the round's global model only with a commit certificate.
import { encodeWeights } from "../../ledger/app/blob.ts";
import { type Logger, logger } from "../../util/log.ts";
import type { ValidatorClient } from "../validator/client.ts";
import { type CertifiedModel, certifiedRoundModel } from "./certified.ts";

export interface DeviceUpdate {
  /** Loop round (0-based), as the edge's work item names it. */
  round: number;
  weights: Float32Array;
  samples: number;
}

export interface UpdateSubmitterOptions {
  /** Signs as the device (a genesis participant with role "device"). */
  client: ValidatorClient;
  roundOffset?: number;
  /** Wait for the tx to commit before the device reports done (default true). */
  waitForCommit?: boolean;
  commitTimeoutMs?: number;
  /** Test and `run --attack` hook: what this device actually submits instead of its update. */
  /** `global` is the certified model of the round when checkModel ran, else null. */
  transform?: (
    update: DeviceUpdate,
    global: Float32Array | null,
  ) => Float32Array | Promise<Float32Array>;
  log?: Logger;
}

export interface SubmittedUpdate {
  round: number;
  txId: string;
  blobSha256: string;
  height: number | null;
}

export class UpdateSubmitter {
  readonly #options: UpdateSubmitterOptions;
  readonly #log: Logger;
  /** Certified global weights by loop round (the last two). */
  readonly #certified = new Map<number, Float32Array>();

  constructor(options: UpdateSubmitterOptions) {
    this.#options = options;
    this.#log = options.log ?? logger("device/ledger");
  }

  ledgerRound(loopRound: number): number {
    return loopRound + 1 + (this.#options.roundOffset ?? 0);
  }

  /** DeviceNode's `onUpdate` hook. */
  readonly onUpdate = async (update: DeviceUpdate): Promise<void> => {
    await this.submit(update);
  };

  async submit(update: DeviceUpdate): Promise<SubmittedUpdate> {
    const client = this.#options.client;
    const round = this.ledgerRound(update.round);
    const weights = this.#options.transform
      ? await this.#options.transform(update, this.#certified.get(update.round) ?? null)
      : update.weights;
    const bytes = encodeWeights(weights);
    const { sha256 } = await client.putBlob(bytes);
    const { id } = await client.submit("model_update", {
      round,
      sample_count: update.samples,
      blob_sha256: sha256,
      blob_size_bytes: bytes.length,
      base_round: round,
    });
    let height: number | null = null;
    if (this.#options.waitForCommit ?? true) {
      height = (await client.waitForTx(id, this.#options.commitTimeoutMs ?? 60_000)).height;
    }
    this.#log.info(`update for ledger round ${round} submitted`, {
      blob: sha256.slice(0, 16),
      height,
    });
    return { round, txId: id, blobSha256: sha256, height };
  }

  /** The round's global device model, only with a valid certificate (see certified.ts). A device
   * refuses work whose model hash is not the certified one. */
  async certifiedModel(loopRound: number, offeredSha256?: string): Promise<CertifiedModel> {
    return await certifiedRoundModel(
      this.#options.client,
      this.ledgerRound(loopRound),
      offeredSha256,
    );
  }

  /** DeviceNode's `checkModel` hook: throws unless the offered model is the certified one. */
  readonly checkModel = async (work: { round: number; deviceModelSha256: string }) => {
    const model = await this.certifiedModel(work.round, work.deviceModelSha256);
    this.#certified.set(work.round, model.weights);
    for (const round of this.#certified.keys()) {
      if (round < work.round - 1) this.#certified.delete(round);
    }
  };
}
