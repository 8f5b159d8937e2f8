// `iomt-sfl data inspect|generate`: look at a flow data set the way training will see it, and
// write the embedded synthetic IoMT set as CSV.
import { Command, Option } from "@commander-js/extra-typings";
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import process from "node:process";
import { Readable } from "node:stream";
import { logger } from "../../util/log.ts";
import { commaList, intInRange, numberInRange, oneOf } from "../options.ts";
import { UsageError } from "../usage_error.ts";
import { FORMAT_NAMES } from "../../ml/data/formats.ts";
import { PARTITIONS } from "../../ml/data/split.ts";
import type { DataReport } from "../../ml/data/prepare.ts";

const FORMAT_CHOICES = ["auto", ...FORMAT_NAMES] as const;
const LABEL_MODES = ["binary", "multiclass"] as const;
const SPLIT_MODES = ["stratified", "time"] as const;
const ENCODINGS = ["onehot", "hash"] as const;
const SEED_MAX = 0xffff_ffff;

export function dataCommand(): Command {
  const command = new Command("data").description(
    "inspect flow data sets and generate the synthetic IoMT set",
  );
  command
    .command("inspect")
    .description(
      "load a data set as training would: detected format, rows, classes, dropped columns with reasons, " +
        "leak warnings, missing values, bad rows, split and per-device class counts",
    )
    .argument("<path>", "CSV / Zeek log file, a directory of CSVs (CICIoMT2024), or - for stdin")
    .addOption(
      new Option("--format <format>", `input format: ${FORMAT_CHOICES.join(", ")}`).argParser(
        oneOf(FORMAT_CHOICES),
      ).default("auto" as (typeof FORMAT_CHOICES)[number]),
    )
    .option("--label <column>", "label column (required for generic CSV)")
    .option("--drop <columns>", "extra columns to drop, comma-separated", commaList)
    .option(
      "--keep <columns>",
      "identity columns to keep although dropped by default (e.g. SrcMac)",
      commaList,
    )
    .option(
      "--normal-label <value>",
      "class value meaning normal traffic (default: normal, benign, 0)",
    )
    .option("--labels <file>", "Zeek: CSV with uid,label[,detailed-label] columns")
    .option(
      "--allow-leaky <columns>",
      "keep these columns even if the leak guard flags them",
      commaList,
    )
    .addOption(
      new Option("--label-mode <mode>", "binary or multiclass").argParser(oneOf(LABEL_MODES))
        .default("multiclass" as (typeof LABEL_MODES)[number]),
    )
    .addOption(
      new Option("--split <mode>", "stratified (seeded) or time (ordered)").argParser(
        oneOf(SPLIT_MODES),
      ).default("stratified" as (typeof SPLIT_MODES)[number]),
    )
    .option("--validation <fraction>", "validation share of rows", numberInRange(0, 0.5), 0.15)
    .option("--test <fraction>", "test share of rows", numberInRange(0, 0.5), 0.15)
    .option(
      "--devices <n>",
      "devices to partition the training rows across",
      intInRange(1, 10_000),
      1,
    )
    .addOption(
      new Option("--partition <kind>", `device partition: ${PARTITIONS.join(", ")}`).argParser(
        oneOf(PARTITIONS),
      ).default("iid" as (typeof PARTITIONS)[number]),
    )
    .option(
      "--alpha <alpha>",
      "Dirichlet concentration for dirichlet/quantity partitions",
      numberInRange(0, 1000, { exclusiveMin: true }),
      0.5,
    )
    .addOption(
      new Option(
        "--categorical <encoding>",
        "categorical columns: onehot (top 16 + other) or hash (32 buckets)",
      )
        .argParser(oneOf(ENCODINGS)).default("onehot" as (typeof ENCODINGS)[number]),
    )
    .option("--seed <n>", "seed for splits and partitions", intInRange(0, SEED_MAX), 0)
    .option("--rows-max <n>", "read at most this many rows", intInRange(1, 1_000_000_000))
    .option(
      "--skip-bad-rows",
      "skip (and count) ragged rows, text in numeric columns, missing labels",
    )
    .option("--json", "print the report as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  $ iomt-sfl data inspect ../shared/datasets/wustl-ehms-2020.csv\n" +
        "  $ iomt-sfl data inspect ../shared/datasets/wustl-ehms-2020.csv --keep SrcMac --json\n" +
        "  $ iomt-sfl data inspect conn.log --labels labels.csv --devices 5 --partition dirichlet --alpha 0.3\n" +
        "  $ iomt-sfl data inspect flows.csv --format generic --label class --drop host\n" +
        "Exit codes: 0 ok, 1 bad data (the message names file, line and column), 2 usage error.",
    )
    .action(async (path, options) => {
      if (options.validation + options.test >= 1) {
        throw new UsageError("--validation + --test must be below 1");
      }
      if (path !== "-" && !existsSync(path)) {
        throw new UsageError(`no such file or directory: ${path}`);
      }
      if (options.labels !== undefined && !existsSync(options.labels)) {
        throw new UsageError(`--labels: no such file: ${options.labels}`);
      }
      if (options.format === "generic" && options.label === undefined) {
        throw new UsageError("--format generic needs --label COLUMN");
      }
      const { inspectDataset } = await import("../../ml/data/prepare.ts");
      const log = logger("data");
      const started = performance.now();
      const input = path === "-"
        ? {
          stream: Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
          name: "<stdin>",
        }
        : { path };
      const report = await inspectDataset({
        source: {
          input,
          format: options.format,
          labelColumn: options.label,
          drop: options.drop,
          keep: options.keep,
          normalLabel: options.normalLabel,
          labelsFile: options.labels,
          rowsMax: options.rowsMax,
        },
        labelMode: options.labelMode,
        split: { mode: options.split, validation: options.validation, test: options.test },
        devices: { count: options.devices, partition: options.partition, alpha: options.alpha },
        seed: options.seed,
        allowLeaky: options.allowLeaky,
        skipBadRows: options.skipBadRows ?? false,
        categoricalEncoding: options.categorical,
      });
      log.info("inspected", {
        path,
        format: report.format,
        rows: report.rows,
        ms: Math.round(performance.now() - started),
      });
      for (const leak of report.leaks) {
        log.warn("leaky column", {
          column: leak.column,
          score: Number(leak.score.toFixed(4)),
          kept: report.leaksAllowed.includes(leak.column),
        });
      }
      if (report.badRows.skipped > 0) {
        log.warn("skipped bad rows", { count: report.badRows.skipped, ...report.badRows.byKind });
      }
      console.log(options.json ? JSON.stringify(report, null, 2) : formatReport(report));
    });

  command
    .command("generate")
    .description("write the embedded synthetic IoMT data set (WUSTL-EHMS schema, 6 classes) as CSV")
    .requiredOption("--rows <n>", "rows to generate", intInRange(1, 50_000_000))
    .option(
      "--seed <n>",
      "generator seed; the same seed gives a byte-identical file",
      intInRange(0, SEED_MAX),
      0,
    )
    .requiredOption("--out <file>", "CSV file to write (atomically: temp file + rename)")
    .option("--force", "overwrite an existing file")
    .addHelpText(
      "after",
      "\nExamples:\n  $ iomt-sfl data generate --rows 100000 --seed 1 --out iomt-synthetic.csv",
    )
    .action(async (options) => {
      if (existsSync(options.out) && !options.force) {
        throw new UsageError(`--out: ${options.out} already exists (use --force to overwrite)`);
      }
      const dir = dirname(options.out);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        throw new UsageError(`--out: directory ${dir} does not exist`);
      }
      const { writeSyntheticCsv } = await import("../../ml/data/synthetic.ts");
      const started = performance.now();
      const written = writeSyntheticCsv(options.out, { rows: options.rows, seed: options.seed });
      const seconds = (performance.now() - started) / 1000;
      logger("data").info("wrote synthetic data", {
        path: options.out,
        rows: written.rows,
        bytes: written.bytes,
        seed: options.seed,
        rows_per_s: Math.round(written.rows / seconds),
      });
      console.log(
        `${options.out}: ${written.rows} rows, ${written.bytes} bytes, seed ${options.seed}`,
      );
    });
  return command;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => (row[c] ?? "").length)));
  return rows.map((row) =>
    row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]))).join("  ")
  ).join("\n");
}

/** The human-readable report of `data inspect`. */
export function formatReport(report: DataReport): string {
  const out: string[] = [];
  out.push(
    `source     ${
      report.files.length === 1
        ? report.files[0]
        : `${report.files.length} files (${report.files[0]} ...)`
    }`,
  );
  out.push(`format     ${report.format} (${report.formatReason})`);
  out.push(
    `rows       ${report.rows}   columns ${report.columns}   features ${report.featureCount} (from ${report.features.length} columns)`,
  );
  out.push(
    `label      ${report.labelColumn} (${report.labelMode})${
      report.timeColumn ? `   time column ${report.timeColumn}` : ""
    }`,
  );
  out.push("");
  out.push("classes");
  out.push(
    table([
      ["class", "rows", "share"],
      ...Object.entries(report.classCounts).map((
        [name, count],
      ) => [name, String(count), `${((100 * count) / report.rows).toFixed(1)}%`]),
    ]),
  );
  out.push("");
  out.push(`dropped columns (${report.dropped.length})`);
  out.push(
    report.dropped.length === 0
      ? "  (none)"
      : table(report.dropped.map((d) => ["  " + d.column, d.reason])),
  );
  out.push("");
  out.push(
    `leak guard (a column that alone predicts the label with balanced accuracy or AUC >= ${report.leakGuard.threshold})`,
  );
  out.push(`  ${report.leakGuard.note}`);
  if (!report.leakGuard.measured) out.push("  WARNING: leaks not checked");
  else if (report.leaks.length === 0) out.push("  no leaky column");
  else {
    out.push(table([
      ["  column", "score", "bal.acc(bin)", "bal.acc(all)", "AUC", "action"],
      ...report.leaks.map((l) => [
        "  " + l.column,
        l.score.toFixed(4),
        l.binaryBalancedAccuracy.toFixed(4),
        l.multiclassBalancedAccuracy.toFixed(4),
        l.auc.toFixed(4),
        report.leaksAllowed.includes(l.column) ? "KEPT (--allow-leaky)" : "excluded",
      ]),
    ]));
  }
  out.push("");
  const missing = Object.entries(report.missing).filter(([, n]) => n > 0);
  out.push(`missing values (${missing.length} columns with any)`);
  out.push(
    missing.length === 0
      ? "  (none)"
      : table(missing.map(([column, n]) => ["  " + column, String(n)])),
  );
  out.push("");
  out.push(
    `bad rows skipped: ${report.badRows.skipped}${
      report.badRows.skipped > 0 ? " " + JSON.stringify(report.badRows.byKind) : ""
    }`,
  );
  for (const example of report.badRows.examples) out.push(`  e.g. ${example}`);
  out.push("");
  const s = report.split;
  out.push(
    `split (${s.mode}, seed ${s.seed}): train ${s.rows.train}, validation ${s.rows.validation}, test ${s.rows.test}`,
  );
  out.push(table([
    ["  split", ...report.classNames],
    ["  train", ...s.classCounts.train.map(String)],
    ["  validation", ...s.classCounts.validation.map(String)],
    ["  test", ...s.classCounts.test.map(String)],
  ]));
  out.push("");
  const d = report.devices;
  out.push(
    `devices (${d.rows.length}, ${d.partition}${d.alpha !== null ? `, alpha ${d.alpha}` : ""})`,
  );
  out.push(table([
    ["  device", "rows", ...report.classNames],
    ...d.classCounts.map((counts, i) => [`  ${i}`, String(d.rows[i]), ...counts.map(String)]),
  ]));
  return out.join("\n");
}
