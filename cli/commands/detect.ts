// `iomt-sfl detect --model DIR FILE|-`: score flow records (CSV or Zeek conn.log, a file, a
// directory or stdin) with a saved model and print alerts. Results go to stdout (text or JSON
// lines with --json); the summary goes to the log on stderr. tfjs loads inside the action only.
import { Command, Option } from "@commander-js/extra-typings";
import process from "node:process";
import { Readable } from "node:stream";
import { logger } from "../../util/log.ts";
import { existingPath, intInRange, numberInRange } from "../options.ts";
import { UsageError } from "../usage_error.ts";

export function detectCommand(): Command {
  const command = new Command("detect");
  command
    .description(
      "score flow records with a trained model and print an alert per flow whose P(attack) reaches " +
        "the model's threshold (chosen on the validation split at training time)",
    )
    .argument("<input>", "CSV or Zeek log file, a directory of CSVs, or - for stdin")
    .requiredOption(
      "--model <dir>",
      "model directory written by training",
      existingPath("directory"),
    )
    .option("--json", "print JSON lines instead of text", false)
    .option("--all", "print every flow, not only alerts", false)
    .option("--threshold <p>", "override the model's decision threshold", numberInRange(0, 1))
    .option("--format <format>", "input format (default: the format the model was trained on)")
    .addOption(
      new Option("--batch-rows <n>", "flows scored per batch").argParser(intInRange(1, 65_536))
        .default(1024),
    )
    .option(
      "--skip-bad-rows",
      "skip malformed rows (counted in the summary) instead of failing",
      false,
    )
    .option(
      "--labels <file>",
      "Zeek: CSV with uid,label columns (then the summary reports metrics)",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ iomt-sfl detect --model iomt-data/models/latest flows.csv
  $ zeek-cut < conn.log | iomt-sfl detect --model iomt-data/models/latest --json -`,
    )
    .action(async (input, options) => {
      const log = logger("ml");
      if (input === "-" && process.stdin.isTTY) {
        throw new UsageError("detect: '-' reads flows from stdin, but stdin is a terminal");
      }
      const { initTensorflowForCommand } = await import("../../ml/tf/auto.ts");
      const { loadModel } = await import("../../ml/artifact/model_artifact.ts");
      const { detectFlows } = await import("../../ml/artifact/detector.ts");
      const { existsSync, statSync } = await import("node:fs");
      if (input !== "-" && !existsSync(input)) {
        throw new UsageError(`detect: no such file or directory: ${input}`);
      }
      await initTensorflowForCommand();
      const artifact = await loadModel(options.model);
      const source = input === "-"
        ? {
          stream: Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
          name: "<stdin>",
        }
        : statSync(input).isDirectory()
        ? { directory: input }
        : { path: input };
      // `detect ... | head`: a closed stdout ends the scan quietly instead of failing with EPIPE.
      let closed = false;
      process.stdout.on("error", () => void (closed = true));
      const write = (line: string) => {
        if (closed) throw new OutputClosed();
        try {
          process.stdout.write(line + "\n");
        } catch (error) {
          if ((error as { code?: string }).code !== "EPIPE") throw error;
          closed = true;
          throw new OutputClosed();
        }
      };
      const summary = await detectFlows(artifact, source, {
        threshold: options.threshold,
        all: options.all,
        format: options.format,
        batchRows: options.batchRows,
        skipBadRows: options.skipBadRows,
        labelsFile: options.labels,
      }, (d) => {
        if (options.json) write(JSON.stringify(d));
        else {
          write(
            `${d.alert ? "ALERT" : "ok   "} ${d.file}:${d.line} score=${
              d.score.toFixed(4)
            } class=${d.class}` +
              (d.label !== undefined ? ` label=${d.label}` : ""),
          );
        }
      }).catch((error) => {
        if (error instanceof OutputClosed) return null;
        throw error;
      });
      if (!summary) return;
      const m = summary.metrics;
      log.info("detect finished", {
        rows: summary.rows,
        alerts: summary.alerts,
        rowsPerSecond: Math.round(summary.rowsPerSecond),
        badRowsSkipped: summary.badRowsSkipped,
        ...(m
          ? {
            accuracy: +m.accuracy.toFixed(4),
            f1: +m.f1.toFixed(4),
            fpr: +m.fpr.toFixed(4),
            auc: +m.rocAuc.toFixed(4),
          }
          : {}),
      });
    });
  return command;
}

class OutputClosed extends Error {
  override name = "OutputClosed";
}
