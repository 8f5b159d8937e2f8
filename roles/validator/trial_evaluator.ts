// The validators' evaluator for a trial: every validator loads the same validation split (the
// file `run` prepared, or derived from the trial's data description and seed), so their loss and
// accuracy of an update agree within the tolerance the proposal check allows.
import { readFileSync } from "node:fs";
import { headRows } from "../../ml/data/types.ts";
import type { NodeConfig } from "../deployment.ts";
import { startTensorflow } from "../ml_runtime.ts";
import { modelConfigFor } from "../node_config.ts";
import { loadTrialData } from "../trial_data.ts";
import { splitModelEvaluator, VALIDATION_ROWS_MAX } from "./update_evaluator.ts";
import type { UpdateEvaluator } from "./update_app.ts";

/** Rows of the (already shuffled, stratified) validation split the validators score on. 500 keeps
 * the attackers of `run --experiment attacks` flagged (accuracy_too_low in round 1, precision and
 * recall 1.00) at half the CPU of 1,000: every validator scores every update every round. */
export const VALIDATION_SAMPLE_ROWS = 500;

export async function trialEvaluator(nodeConfigPath: string): Promise<UpdateEvaluator> {
  const config = JSON.parse(readFileSync(nodeConfigPath, "utf8")) as NodeConfig;
  if (!config.trial) throw new Error(`${nodeConfigPath}: no trial description`);
  await startTensorflow();
  const data = await loadTrialData(config, nodeConfigPath);
  const classes = config.trial.labelMode === "binary" ? 2 : data.validation.classNames.length;
  const model = modelConfigFor(config.trial, data.validation.featureNames.length, classes);
  if (data.validation.rows > VALIDATION_ROWS_MAX) {
    throw new Error(
      `validation split has ${data.validation.rows} rows, more than ${VALIDATION_ROWS_MAX}`,
    );
  }
  return splitModelEvaluator(model, headRows(data.validation, VALIDATION_SAMPLE_ROWS));
}
