// The privacy-utility table of docs/privacy.md, on the synthetic default and on WUSTL-EHMS-2020:
//   deno run --allow-all bench/privacy.ts [--epochs 2] [--rows 10000] [--out privacy-table.json]
//                                         [--only synthetic|wustl] [--noise-levels 0.05,0.1]
// Prints one Markdown table per data set (stdout) and writes all results as JSON with --out.
// WUSTL-EHMS is read from ../shared/datasets/ and skipped with a message when absent.
import { existsSync, writeFileSync } from "node:fs";
import process from "node:process";
import os from "node:os";
import {
  type AuditResult,
  DEFAULT_AUDIT,
  type PrivacyUtilityTable,
  privacyUtilityTable,
} from "../ml/privacy/audit.ts";
import { loadPrivacyData, type PrivacySource } from "../ml/privacy/dataset.ts";
import { tableMarkdown } from "../ml/privacy/report.ts";
import { initTensorflow } from "../ml/tf/backend.ts";

export const WUSTL_PATH =
  new URL("../../shared/datasets/wustl-ehms-2020.csv", import.meta.url).pathname;

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}

export async function benchPrivacy(): Promise<void> {
  const epochs = Number(flag("epochs", "2"));
  const rows = Number(flag("rows", "10000"));
  const out = flag("out", "");
  const only = flag("only", "");
  // --noise-levels 0.05,0.1,0.2: a finer noise grid (plus the unprotected row) instead of the
  // default settings, to locate where utility breaks down.
  const levels = flag("noise-levels", "");
  const settings = levels
    ? [{}, ...levels.split(",").map((v) => ({ clipNorm: 1, noiseMultiplier: Number(v) }))]
    : undefined;
  await initTensorflow();
  const sources: [string, PrivacySource][] = [["synthetic", { synthetic: { rows, seed: 1 } }]];
  if (existsSync(WUSTL_PATH)) sources.push(["wustl", { path: WUSTL_PATH }]);
  else console.error(`skipping WUSTL-EHMS-2020: ${WUSTL_PATH} not found`);
  const tables: PrivacyUtilityTable[] = [];
  const results: AuditResult[] = [];
  for (const [key, source] of sources) {
    if (only && only !== key) continue;
    const data = await loadPrivacyData(source, 0);
    const started = performance.now();
    const table = privacyUtilityTable(
      data,
      { ...DEFAULT_AUDIT, epochs },
      settings,
      (row, result) => {
        const worst = [...result.reconstruction.features].filter((f) => Number.isFinite(f.nmse))
          .sort((a, b) => b.nmse - a.nmse).slice(0, 3).map((f) => `${f.name}=${f.nmse.toFixed(3)}`);
        console.error(
          `${key}: ${row.protection} done in ${result.seconds.toFixed(0)} s ${
            JSON.stringify(row)
          } highest nMSE: ${worst}`,
        );
        results.push(result);
      },
    );
    tables.push(table);
    console.log(tableMarkdown(table));
    console.log(
      `(${((performance.now() - started) / 1000).toFixed(0)} s on ${
        os.cpus()[0]?.model ?? "?"
      } x${os.cpus().length}, ` +
        `load ${os.loadavg()[0].toFixed(1)})\n`,
    );
  }
  if (out) writeFileSync(out, JSON.stringify({ tables, results }, null, 2) + "\n");
}

if (import.meta.main) await benchPrivacy();
