// Text, Markdown and HTML renderings of audit results and of the privacy-utility table. Pure
// string functions (no tfjs), so the `run` HTML report can include the table cheaply.
import type { AuditResult, PrivacyUtilityTable } from "./audit.ts";

const pct = (
  v: number | null,
) => (v === null || !Number.isFinite(v) ? "—" : `${(100 * v).toFixed(1)}%`);
const num = (
  v: number | null,
  digits = 3,
) => (v === null || !Number.isFinite(v) ? "—" : v.toFixed(digits));
const eps = (v: number | null) => (v === null ? "∞ (no noise)" : v.toFixed(2));

const TABLE_HEADER = [
  "protection",
  "ε",
  "F1",
  "AUC",
  "recon. nMSE",
  "biometrics within tol. (median guess)",
  "dCor",
  "dCor² bias-corr.",
  "label AUC from acts",
];

function tableCells(table: PrivacyUtilityTable): string[][] {
  return table.rows.map((r) => [
    r.protection,
    eps(r.epsilon),
    num(r.f1),
    num(r.auc),
    num(r.nmseMean),
    r.biometricWithin === null ? "—" : `${pct(r.biometricWithin)} (${pct(r.biometricBaseline)})`,
    num(r.dcor),
    num(r.dcor2BiasCorrected ?? null),
    num(r.labelAuc),
  ]);
}

function tableCaption(table: PrivacyUtilityTable): string {
  if (table.caption) return table.caption;
  return `${table.dataset}; ${table.epochs} training epochs per setting; ε at δ = ${table.delta} per training row ` +
    `over the whole training (activation noise only)`;
}

export function tableMarkdown(table: PrivacyUtilityTable): string {
  const lines = [
    `| ${TABLE_HEADER.join(" | ")} |`,
    `|${TABLE_HEADER.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...tableCells(table).map((cells) => `| ${cells.join(" | ")} |`),
  ];
  return `${tableCaption(table)}\n\n${lines.join("\n")}\n`;
}

export function tableText(table: PrivacyUtilityTable): string {
  const cells = [TABLE_HEADER, ...tableCells(table)];
  const widths = TABLE_HEADER.map((_, c) => Math.max(...cells.map((row) => [...row[c]].length)));
  const line = (row: string[]) =>
    row.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  ");
  return [tableCaption(table), "", ...cells.map(line)].join("\n") + "\n";
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** A self-contained <section> for the `run` HTML report. */
export function tableHtml(table: PrivacyUtilityTable): string {
  const head = TABLE_HEADER.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = tableCells(table).map((cells) =>
    `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`
  ).join("\n");
  return `<section class="privacy-utility">
<h2>Privacy and utility</h2>
<p>${
    escapeHtml(tableCaption(table))
  }. Reconstruction by an edge-trained decoder on an auxiliary sample;
nMSE 1 = no better than guessing the mean. Labels are sent to the edge in vanilla split learning.</p>
<table>
<thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody>
</table>
</section>`;
}

/** The human report of one audit (stdout of `iomt-sfl privacy audit`). */
export function auditText(r: AuditResult): string {
  const lines = [
    `Privacy audit — ${r.dataset}`,
    `protection: ${r.protection.name}` +
    (r.protection.noiseMultiplier > 0 ? ` (noise std ${r.protection.noiseStd} per element)` : ""),
    r.privacy
      ? `guarantee: (ε = ${
        r.privacy.epsilon.toFixed(2)
      }, δ = ${r.privacy.delta}) per training row for its activations, ` +
        `${r.privacy.releasesPerRow} releases (RDP order ${r.privacy.order}); labels and device weights not covered`
      : "guarantee: none (no noise); the numbers below are empirical leakage only",
    `training: ${r.training.epochs} epochs, ${r.training.steps} steps on ${r.training.rows} rows, mean loss ${
      num(r.training.lossMean)
    }, ${r.training.seconds.toFixed(1)} s`,
    `detection (test, ${r.utility.testRows} rows, protection applied at inference): F1 ${
      num(r.utility.f1)
    }, AUC ${num(r.utility.auc)}, ` +
    `accuracy ${pct(r.utility.accuracy)}`,
    "",
    `Curious edge, decoder trained on ${r.samples.auxRows} auxiliary rows, evaluated on ${r.samples.targetRows} training rows:`,
    `  mean normalized MSE over features: ${
      num(r.reconstruction.nmseMean)
    } (1 = no better than the mean, 0 = exact)`,
    `  distance correlation raw rows vs activations (${r.samples.dcorRows} rows): ${num(r.dcor)} ` +
    `(bias-corrected dCor² ${num(r.dcor2BiasCorrected)}; ~0 when independent)`,
    "",
    "  biometric      tolerance    recovered   median guess   nMSE",
    ...r.reconstruction.biometrics.map((b) =>
      `  ${b.column.padEnd(13)}  ±${String(b.tolerance).padEnd(4)} ${b.unit.padEnd(5)}  ${
        pct(b.withinTolerance).padStart(8)
      }   ${pct(b.baselineWithinTolerance).padStart(12)}   ${num(b.nmse)}`
    ),
    "",
    `  label inference from activations alone: AUC ${num(r.labelInference.auc)}, accuracy ${
      pct(r.labelInference.accuracy)
    } ` +
    `(majority guess ${pct(r.labelInference.majorityAccuracy)})`,
    `  note: ${r.labelInference.note}`,
    "",
    "  worst-protected features (lowest nMSE):",
    ...[...r.reconstruction.features].filter((f) => Number.isFinite(f.nmse)).sort((a, b) =>
      a.nmse - b.nmse
    ).slice(0, 8)
      .map((f) => `    ${f.name.padEnd(24)} ${num(f.nmse)}`),
  ];
  return lines.join("\n") + "\n";
}
