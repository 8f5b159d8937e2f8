// The ML engine's side of update scoring on a validator: loss and accuracy of a device-side
// weight vector, paired with the round's edge-side global (round_open meta.edge_model_sha256),
// on the validation sample this validator holds. Injected into UpdateApp; without it the
// geometric rules alone decide (genesis requireEvaluation = false).
import type { LabeledMatrix } from "../../ml/data/types.ts";
import type { ModelConfig } from "../../ml/model/config.ts";
import { evaluateFlatInChunks } from "../../ml/train/evaluate.ts";
import type { UpdateEvaluator } from "./update_app.ts";

/** Rows scored between two turns of the event loop (~20-50 ms of work for the default model). */
export const EVALUATION_CHUNK_ROWS = 128;

/** Rows of the validation sample at most: every validator scores every update on all of them. */
export const VALIDATION_ROWS_MAX = 20_000;

export function splitModelEvaluator(config: ModelConfig, sample: LabeledMatrix): UpdateEvaluator {
  if (sample.rows < 1 || sample.rows > VALIDATION_ROWS_MAX) {
    throw new Error(
      `validation sample has ${sample.rows} rows, expected 1..${VALIDATION_ROWS_MAX}`,
    );
  }
  return (deviceWeights, { round, edgeWeights }) => {
    if (!edgeWeights) {
      return Promise.reject(new Error(`round ${round} names no edge model to evaluate with`));
    }
    return evaluateFlatInChunks(
      config,
      deviceWeights,
      edgeWeights,
      sample,
      EVALUATION_CHUNK_ROWS,
      () => new Promise((resolve) => setTimeout(resolve, 0)),
    ).then(({ loss, accuracy }) => ({ loss, accuracy }));
  };
}
