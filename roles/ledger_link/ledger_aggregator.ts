// The edge's side of update consensus. The edge coordinates rounds, but the validators decide
// which device updates count:
//   before devices train   round_open {round, global_model_sha256, meta.edge_model_sha256}
//                          (both global blobs uploaded to every validator first), committed
//   after devices reported round_close {round}, committed; then wait (bounded) for the
//                          validators' round_result, read from a certified block
//   new global model       device side: the record's aggregate, fetched by hash and checked;
//                          edge side (SplitFed v1): the edge copies of the *accepted* devices
//                          only, averaged by samples; unchanged when none was accepted
// Ledger rounds start at 1; the training loop's rounds at 0 (ledger round = loop round + 1 +
// roundOffset).
import { encodeWeights, modelHash } from "../../ledger/app/blob.ts";
import type { RoundRecord } from "../../ledger/app/record.ts";
import { weightedAverage } from "../../ml/model/params.ts";
import type { DeviceExecutor } from "../../ml/train/executor.ts";
import type { LocalResult, LocalTask } from "../../ml/train/local.ts";
import type { Aggregator, GlobalModel } from "../../ml/train/loop.ts";
import { type Logger, logger } from "../../util/log.ts";
import type { ValidatorClient } from "../validator/client.ts";
import { fetchModelBytes, waitForRoundResult } from "./certified.ts";

export interface LedgerAggregatorOptions {
  /** Signs as the edge (a genesis participant with role "edge"). */
  client: ValidatorClient;
  /** Genesis participant id of each loop device index. */
  deviceIds: readonly string[];
  /** Ledger round of loop round 0 is 1 + roundOffset (a coordinator resuming a chain). */
  roundOffset?: number;
  /** How long to wait for a tx to commit and for the round_result. */
  commitTimeoutMs?: number;
  resultTimeoutMs?: number;
  pollMs?: number;
  fetch?: typeof fetch;
  log?: Logger;
}

export interface LedgerRoundOutcome {
  round: number;
  record: RoundRecord;
  resultHeight: number;
  acceptedDevices: string[];
  modelSha256: string;
}

export class LedgerAggregator {
  readonly #options: LedgerAggregatorOptions;
  readonly #log: Logger;
  /** Committed round results, oldest first. */
  readonly outcomes: LedgerRoundOutcome[] = [];
  #openedRound: number | null = null;

  constructor(options: LedgerAggregatorOptions) {
    this.#options = options;
    this.#log = options.log ?? logger("edge/ledger");
  }

  ledgerRound(loopRound: number): number {
    return loopRound + 1 + (this.#options.roundOffset ?? 0);
  }

  /** Wraps the edge's executor: opens the ledger round before the devices get their tasks. */
  executor(inner: DeviceExecutor): DeviceExecutor {
    return {
      run: async (tasks: readonly LocalTask[]) => {
        if (tasks.length > 0) await this.openRound(tasks[0].round, tasks[0].device, tasks[0].edge);
        return await inner.run(tasks);
      },
      close: () => inner.close(),
      sharedEdge: inner.sharedEdge,
    };
  }

  /** Before the first round: a quorum of validators must answer (they may still be starting). */
  async awaitValidators(timeoutMs: number): Promise<void> {
    await this.#options.client.awaitQuorum(
      timeoutMs,
      (missing) =>
        this.#log.info(`waiting for validators to answer: ${missing.join(" ")}`, { timeoutMs }),
    );
  }

  /** Uploads the round's global blobs and commits round_open. */
  async openRound(loopRound: number, device: Float32Array, edge: Float32Array): Promise<void> {
    const round = this.ledgerRound(loopRound);
    if (this.#openedRound === round) return;
    const client = this.#options.client;
    // A coordinator restarted mid-round finds its round already open on the ledger: adopt it.
    const newest = await client.globalModel().catch(() => null);
    if (newest && newest.round === round) {
      if (newest.sha256 !== modelHash(device)) {
        throw new Error(
          `ledger round ${round} is already ${newest.source} with model ${
            newest.sha256.slice(0, 16)
          }, ` +
            `not this edge's ${
              modelHash(device).slice(0, 16)
            }; the edge state does not match the ledger`,
        );
      }
      if (newest.source === "round_open") {
        this.#openedRound = round;
        this.#log.warn(
          `ledger round ${round} was already open (coordinator restarted); continuing it`,
        );
        return;
      }
    }
    const deviceBlob = await client.putBlob(encodeWeights(device));
    const edgeBlob = await client.putBlob(encodeWeights(edge));
    const { id } = await client.submit("round_open", {
      round,
      global_model_sha256: deviceBlob.sha256,
      meta: { edge_model_sha256: edgeBlob.sha256 },
    });
    const committed = await client.waitForTx(id, this.#options.commitTimeoutMs ?? 60_000);
    this.#openedRound = round;
    this.#log.info(`ledger round ${round} open`, {
      height: committed.height,
      global: deviceBlob.sha256.slice(0, 16),
    });
  }

  /** The `Aggregator` for trainRounds. */
  readonly aggregate: Aggregator = async (
    updates: readonly LocalResult[],
    loopRound: number,
    current: GlobalModel,
  ): Promise<GlobalModel> => {
    const round = this.ledgerRound(loopRound);
    const client = this.#options.client;
    if (this.#openedRound !== round) {
      throw new Error(`ledger round ${round} was not opened by this aggregator`);
    }
    const { id } = await client.submit("round_close", { round });
    const closed = await client.waitForTx(id, this.#options.commitTimeoutMs ?? 60_000);
    const timeoutMs = this.#options.resultTimeoutMs ?? 120_000;
    this.#log.info(
      `ledger round ${round} closed at block ${closed.height}; waiting up to ${timeoutMs} ms for ` +
        `the validators' certified round_result (scores, decisions, aggregate)`,
    );
    const result = await waitForRoundResult(client, round, closed.height + 1, {
      timeoutMs,
      pollMs: this.#options.pollMs,
      fetch: this.#options.fetch,
    });
    const device = result.modelSha256 === modelHash(current.device)
      ? current.device
      : await fetchModelBytes(client, result.modelSha256, current.device.length);
    const accepted = new Set(
      result.record.updates.filter((u) => u.accepted).map((u) => u.deviceId),
    );
    const kept = updates.filter((u) => accepted.has(this.#options.deviceIds[u.deviceIndex]));
    const edge = kept.length > 0
      ? weightedAverage(kept.map((u) => u.edge), kept.map((u) => u.samples))
      : current.edge;
    const outcome: LedgerRoundOutcome = {
      round,
      record: result.record,
      resultHeight: result.height,
      acceptedDevices: [...accepted].sort(),
      modelSha256: result.modelSha256,
    };
    this.outcomes.push(outcome);
    const rejected = result.record.updates.filter((u) => !u.accepted);
    this.#log.info(`ledger round ${round} result`, {
      height: result.height,
      accepted: accepted.size,
      rejected: rejected.map((u) => `${u.deviceId}:${u.reasons.join("+")}`).join(" "),
      edgeCopiesAveraged: kept.length,
      model: result.modelSha256.slice(0, 16),
    });
    return { device, edge };
  };
}
