// `iomt-sfl privacy audit`: how much a curious edge learns from the smashed activations, with and
// without protection (clipping + Gaussian noise with an (ε, δ) accountant, NoPeek). Results go to
// stdout (text, or JSON with --json); progress to the log on stderr. tfjs loads in the action only.
import { Command } from "@commander-js/extra-typings";
import { logger } from "../../util/log.ts";
import { existingPath, intInRange, numberInRange } from "../options.ts";
import { UsageError } from "../usage_error.ts";

const SEED_MAX = 0xffff_ffff;

export function privacyCommand(): Command {
  const command = new Command("privacy").description(
    "measure what the edge can learn from the activations devices send, and what protection costs",
  );
  command
    .command("audit")
    .description(
      "train the split model (optionally protected), then play an honest-but-curious edge: decode raw " +
        "rows from activations, measure distance correlation and label inference, beside F1/AUC",
    )
    .option(
      "--data <path>",
      "flow data set (default: the embedded synthetic IoMT set)",
      existingPath("file"),
    )
    .option(
      "--rows <n>",
      "synthetic rows when no --data is given",
      intInRange(1000, 1_000_000),
      10_000,
    )
    .option(
      "--seed <n>",
      "seed of the split, the model, the noise and the attack",
      intInRange(0, SEED_MAX),
      0,
    )
    .option("--epochs <n>", "training epochs before the attack", intInRange(1, 100), 2)
    .option(
      "--clip <norm>",
      "clip each row's activations to this L2 norm",
      numberInRange(0, 1e6, { exclusiveMin: true }),
    )
    .option(
      "--noise <sigma>",
      "Gaussian noise multiplier (std = sigma * clip norm); needs --clip",
      numberInRange(0, 1e4),
    )
    .option(
      "--epsilon <eps>",
      "target ε for the whole training: calibrates --noise (clip norm 1 unless --clip)",
      numberInRange(0, 1e6, { exclusiveMin: true }),
    )
    .option(
      "--delta <delta>",
      "δ of the (ε, δ) guarantee",
      numberInRange(0, 0.1, { exclusiveMin: true }),
      1e-5,
    )
    .option(
      "--nopeek <alpha>",
      "weight of the NoPeek distance-correlation loss",
      numberInRange(0, 100),
    )
    .option(
      "--aux-rows <n>",
      "auxiliary (attacker) rows, from the validation split",
      intInRange(10, 20_000),
      2000,
    )
    .option("--target-rows <n>", "attacked training rows", intInRange(10, 20_000), 1000)
    .option(
      "--table",
      "run the privacy-utility grid (noise 0/0.5/1/2 with clip, NoPeek 0.1/0.5)",
      false,
    )
    .option("--json", "print JSON instead of text", false)
    .addHelpText(
      "after",
      `
Examples:
  $ iomt-sfl privacy audit
  $ iomt-sfl privacy audit --clip 1 --noise 1 --json
  $ iomt-sfl privacy audit --epsilon 8 --delta 1e-5 --epochs 3
  $ iomt-sfl privacy audit --data wustl-ehms-2020.csv --table`,
    )
    .action(async (options) => {
      const log = logger("privacy");
      if (options.noise !== undefined && options.epsilon !== undefined) {
        throw new UsageError("privacy audit: give --noise or --epsilon, not both");
      }
      if ((options.noise ?? 0) > 0 && options.clip === undefined) {
        throw new UsageError(
          "privacy audit: --noise needs --clip (without clipping the sensitivity is unbounded)",
        );
      }
      if (
        options.table &&
        (options.noise !== undefined || options.epsilon !== undefined ||
          options.nopeek !== undefined)
      ) {
        throw new UsageError(
          "privacy audit: --table runs its own grid; drop --noise/--epsilon/--nopeek",
        );
      }
      const { RDP_ORDERS, calibrateNoiseMultiplier } = await import("../../ml/privacy/rdp.ts");
      let noise = options.noise;
      let clip = options.clip;
      if (options.epsilon !== undefined) {
        clip ??= 1;
        try {
          // Each training row is released once per epoch with sensitivity 2 * clip: the accountant
          // sees epochs steps of noise multiplier sigma / 2 at sampling rate 1.
          noise = 2 * calibrateNoiseMultiplier(
            {
              epsilon: options.epsilon,
              delta: options.delta,
              samplingRate: 1,
              steps: options.epochs,
            },
            1e-4,
            RDP_ORDERS,
          );
        } catch (error) {
          throw new UsageError(
            `privacy audit: --epsilon ${options.epsilon}: ${(error as Error).message}`,
          );
        }
        log.info("calibrated noise", {
          epsilon: options.epsilon,
          delta: options.delta,
          epochs: options.epochs,
          noise,
        });
      }
      const { initTensorflowForCommand } = await import("../../ml/tf/auto.ts");
      const { loadPrivacyData } = await import("../../ml/privacy/dataset.ts");
      const { DEFAULT_AUDIT, privacyUtilityTable, runAudit } = await import(
        "../../ml/privacy/audit.ts"
      );
      const { auditText, tableText } = await import("../../ml/privacy/report.ts");
      await initTensorflowForCommand();
      const source = options.data
        ? { path: options.data }
        : { synthetic: { rows: options.rows, seed: options.seed } };
      const data = await loadPrivacyData(source, options.seed);
      log.info("data", {
        dataset: data.name,
        train: data.train.rows,
        validation: data.validation.rows,
        test: data.test.rows,
      });
      const audit = {
        ...DEFAULT_AUDIT,
        epochs: options.epochs,
        seed: options.seed,
        delta: options.delta,
        auxRows: options.auxRows,
        targetRows: options.targetRows,
      };
      if (options.table) {
        const table = privacyUtilityTable(data, audit, undefined, (row, result) => {
          log.info("setting done", {
            protection: row.protection,
            seconds: Math.round(result.seconds),
            f1: row.f1,
            nmse: row.nmseMean,
          });
        });
        console.log(options.json ? JSON.stringify(table, null, 2) : tableText(table));
        return;
      }
      const protection = { clipNorm: clip, noiseMultiplier: noise, nopeekWeight: options.nopeek };
      const result = runAudit(data, { ...audit, protection });
      log.info("audit done", { seconds: Math.round(result.seconds) });
      console.log(options.json ? JSON.stringify(result, null, 2) : auditText(result));
    });
  return command;
}
