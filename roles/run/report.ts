// report.json and a self-contained report.html (charts drawn by the embedded uPlot; no network,
// no files beside it). Both are written to a temporary name and renamed: never half-written.
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import { formatTable, type TrialResult } from "./results.ts";
import type { PrivacyUtilityTable } from "../../ml/privacy/audit.ts";

export interface ReportInput {
  title: string;
  createdAt: string;
  version: string;
  data: string;
  settings: Record<string, string | number | boolean>;
  results: TrialResult[];
  /** Extra sections as preformatted text; `html` (a trusted, escaped <section>, e.g.
   * ml/privacy/report.ts tableHtml) replaces the text in report.html. */
  notes?: { heading: string; text: string; html?: string }[];
  /** `--experiment privacy`: the table's numbers for report.json. */
  privacyUtility?: PrivacyUtilityTable;
}

export function writeReports(outDir: string, input: ReportInput): { json: string; html: string } {
  const json = join(outDir, "report.json");
  const html = join(outDir, "report.html");
  atomicWrite(json, JSON.stringify(input, null, 2) + "\n");
  atomicWrite(html, renderHtml(input));
  return { json, html };
}

function atomicWrite(path: string, text: string) {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** JSON inside <script>: no "</script" or "<!--" can end it early. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c");

export function renderHtml(input: ReportInput): string {
  const last = input.results.map((r) => ({ mode: r.mode, row: r.rows.at(-1) }));
  const settings = Object.entries(input.settings)
    .map(([k, v]) =>
      `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`
    ).join("");
  const confusions = last.filter((l) => l.row).map(({ mode, row }) => {
    const [[tn, fp], [fn, tp]] = row!.confusion;
    return `<figure><figcaption>${escapeHtml(mode)}, round ${
      row!.round + 1
    } (test split)</figcaption>
<table class="cm"><tr><td></td><th scope="col">predicted normal</th><th scope="col">predicted attack</th></tr>
<tr><th scope="row">normal</th><td>${tn}</td><td>${fp}</td></tr>
<tr><th scope="row">attack</th><td>${fn}</td><td>${tp}</td></tr></table></figure>`;
  }).join("");
  const notes = (input.notes ?? []).map((n) =>
    n.html ?? `<h2>${escapeHtml(n.heading)}</h2><pre>${escapeHtml(n.text)}</pre>`
  ).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)}</title>
<style>${uplotCss}
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}pre{background:#f4f6f8;padding:.75rem;overflow:auto;font-size:13px}
table{border-collapse:collapse}th,td{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #dde}th[scope=row]{text-align:left}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}.cm td{min-width:6rem}
figure{display:inline-block;margin:0 2rem 1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}
</style></head><body>
<h1>${escapeHtml(input.title)}</h1>
<p>${escapeHtml(input.data)} — iomt-sfl ${escapeHtml(input.version)}, ${
    escapeHtml(input.createdAt)
  }</p>
<h2>Per-round metrics (held-out test split; threshold chosen on the validation split)</h2>
<pre>${escapeHtml(formatTable(input.results))}</pre>
<div class="charts" id="charts"></div>
<h2>Confusion matrix, last round</h2>${confusions}
<h2>Settings</h2><table>${settings}</table>
${notes}
<script type="application/json" id="report-data">${scriptJson(input.results)}</script>
<script>${uplotJs}</script>
<script>
(function () {
  var results = JSON.parse(document.getElementById("report-data").textContent);
  var colors = { splitfed: "#1f6feb", fedavg: "#d1242f" };
  var metrics = [["f1", "F1"], ["accuracy", "Accuracy"], ["fpr", "False positive rate"], ["validationLoss", "Validation loss"]];
  var rounds = 0;
  results.forEach(function (r) { rounds = Math.max(rounds, r.rows.length); });
  var xs = []; for (var i = 1; i <= rounds; i++) xs.push(i);
  metrics.forEach(function (m) {
    var data = [xs], series = [{ label: "round" }];
    results.forEach(function (r) {
      data.push(xs.map(function (_, i) { return r.rows[i] ? r.rows[i][m[0]] : null; }));
      series.push({ label: r.mode, stroke: colors[r.mode] || "#555", width: 2, points: { show: true } });
    });
    var box = document.createElement("div");
    document.getElementById("charts").appendChild(box);
    new uPlot({ title: m[1], width: 500, height: 260, series: series,
      scales: { x: { time: false } }, axes: [{ label: "round", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}] }, data, box);
  });
})();
</script></body></html>
`;
}
