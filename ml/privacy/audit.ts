// The privacy audit: train the split model with a protection, then play the honest-but-curious
// edge (reconstruction decoder, distance correlation, label inference) and put the numbers next to
// the detection quality the protection leaves. `privacyUtilityTable` runs it over a grid of
// protections; the `run` HTML report and docs/privacy.md show that table.
import { defaultModelConfig, type ModelConfig } from "../model/config.ts";
import { binaryLabels } from "../data/types.ts";
import type { LabeledMatrix } from "../data/types.ts";
import {
  type AttackOptions,
  DEFAULT_ATTACK,
  inferLabels,
  type LabelInference,
  labelInferenceMetrics,
  type Matrix,
  normalizedMse,
  reconstruct,
} from "./attack.ts";
import { distanceCorrelation, sampleRowIndexes } from "./dcor.ts";
import { type FeatureScale, type PrivacyData, unscale } from "./dataset.ts";
import {
  createProtection,
  type ProtectionDescription,
  type ProtectionOptions,
} from "./protection.ts";
import { evaluateProtected, releasedActivations, trainProtected } from "./train.ts";

/** Clinically meaningful tolerances, in the data set's units (WUSTL-EHMS-2020 columns). A value
 * "recovered" within these would be clinically as good as the true reading. */
export const BIOMETRIC_TOLERANCES: readonly { column: string; tolerance: number; unit: string }[] =
  [
    { column: "Temp", tolerance: 0.3, unit: "°C" },
    { column: "SpO2", tolerance: 2, unit: "%" },
    { column: "Pulse_Rate", tolerance: 5, unit: "bpm" },
    { column: "SYS", tolerance: 5, unit: "mmHg" },
    { column: "DIA", tolerance: 5, unit: "mmHg" },
    { column: "Heart_rate", tolerance: 5, unit: "bpm" },
    { column: "Resp_Rate", tolerance: 2, unit: "/min" },
  ];

export const AUDIT_LIMITS = {
  auxRowsMax: 20_000,
  targetRowsMax: 20_000,
  dcorRowsMax: 2048,
} as const;

export interface AuditOptions {
  protection: Omit<ProtectionOptions, "seed">;
  /** Model shape; default: the project's default split CNN-BiLSTM for the data's width. */
  model?: ModelConfig;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** δ of the reported (ε, δ). */
  delta: number;
  auxRows: number;
  targetRows: number;
  dcorRows: number;
  attack?: AttackOptions;
}

export const DEFAULT_AUDIT: Omit<AuditOptions, "protection"> = {
  epochs: 3,
  batchSize: 64,
  learningRate: 2e-3,
  seed: 0,
  delta: 1e-5,
  auxRows: 2000,
  targetRows: 1000,
  dcorRows: 500,
};

export interface BiometricRecovery {
  column: string;
  unit: string;
  tolerance: number;
  /** Share of target rows whose reconstruction is within ±tolerance of the truth. */
  withinTolerance: number;
  /** The same share for an edge that ignores the activations and guesses the auxiliary median. */
  baselineWithinTolerance: number;
  nmse: number;
}

export interface AuditResult {
  dataset: string;
  protection: ProtectionDescription;
  /** (ε, δ) of the activation noise for each training row over the whole training; null without
   * noise. Covers the activations only (see docs/privacy.md). */
  privacy: { epsilon: number; delta: number; order: number; releasesPerRow: number } | null;
  training: { epochs: number; steps: number; lossMean: number; rows: number; seconds: number };
  utility: { f1: number; auc: number; accuracy: number; threshold: number; testRows: number };
  samples: { auxRows: number; targetRows: number; dcorRows: number };
  reconstruction: {
    /** Mean normalized MSE over non-constant features (1 = no better than the mean). */
    nmseMean: number;
    features: { name: string; nmse: number }[];
    biometrics: BiometricRecovery[];
  };
  /** Distance correlation between raw target rows and the activations the edge received
   * (V-statistic, biased upward in high dimension), and the bias-corrected dCor² (~0 when
   * independent). */
  dcor: number;
  dcor2BiasCorrected: number;
  labelInference: LabelInference & { labelsSent: boolean; note: string };
  seconds: number;
}

function rowsOf(
  m: LabeledMatrix,
  indexes: Int32Array,
): { features: Float32Array; isAttack: Int32Array } {
  const f = m.featureNames.length;
  const features = new Float32Array(indexes.length * f);
  const all = binaryLabels(m);
  const isAttack = new Int32Array(indexes.length);
  indexes.forEach((r, i) => {
    features.set(m.features.subarray(r * f, (r + 1) * f), i * f);
    isAttack[i] = all[r];
  });
  return { features, isAttack };
}

function checkAudit(options: AuditOptions): void {
  const intIn = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`audit: ${name} ${v} outside ${min}..${max}`);
    }
  };
  intIn("auxiliary rows", options.auxRows, 10, AUDIT_LIMITS.auxRowsMax);
  intIn("target rows", options.targetRows, 10, AUDIT_LIMITS.targetRowsMax);
  intIn("distance correlation rows", options.dcorRows, 2, AUDIT_LIMITS.dcorRowsMax);
  if (!(options.delta > 0 && options.delta < 1)) {
    throw new RangeError(`audit: delta ${options.delta} must be in (0, 1)`);
  }
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function biometricRecovery(
  scales: readonly FeatureScale[],
  aux: Matrix,
  truth: Matrix,
  guess: Float32Array,
  nmse: Float64Array,
): BiometricRecovery[] {
  const out: BiometricRecovery[] = [];
  for (const { column, tolerance, unit } of BIOMETRIC_TOLERANCES) {
    const scale = scales.find((s) => s.name === column);
    if (!scale) continue; // dropped as constant/leaky, or not in this data set
    const c = scale.index;
    const auxValues = Float64Array.from(
      { length: aux.rows },
      (_, r) => unscale(scale, aux.data[r * aux.columns + c]),
    );
    const guessMedian = median(auxValues);
    let within = 0, baseline = 0;
    for (let r = 0; r < truth.rows; r++) {
      const t = unscale(scale, truth.data[r * truth.columns + c]);
      // Half a unit of float32 rounding would flip borderline cases; compare with a tiny slack.
      if (Math.abs(unscale(scale, guess[r * truth.columns + c]) - t) <= tolerance + 1e-6) within++;
      if (Math.abs(guessMedian - t) <= tolerance + 1e-6) baseline++;
    }
    out.push({
      column,
      unit,
      tolerance,
      withinTolerance: within / truth.rows,
      baselineWithinTolerance: baseline / truth.rows,
      nmse: nmse[c],
    });
  }
  return out;
}

/** One audit: train with the protection, attack, measure. Synchronous tfjs work; call after
 * initTensorflow(). */
export function runAudit(data: PrivacyData, options: AuditOptions): AuditResult {
  checkAudit(options);
  const started = performance.now();
  const features = data.train.featureNames.length;
  const model = options.model ?? defaultModelConfig(features, 2);
  const protection = createProtection({ ...options.protection, seed: options.seed });

  const trainStarted = performance.now();
  const trained = trainProtected(data.train, protection, {
    model,
    epochs: options.epochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    seed: options.seed,
  });
  const trainSeconds = (performance.now() - trainStarted) / 1000;
  const utility = evaluateProtected(model, trained, protection, data.validation, data.test);

  // Auxiliary sample: validation rows (never trained on); target: training rows, whose
  // activations the edge really received. Disjoint by construction of the split.
  const auxIdx = sampleRowIndexes(data.validation.rows, options.auxRows);
  const targetIdx = sampleRowIndexes(data.train.rows, options.targetRows);
  const aux = rowsOf(data.validation, auxIdx);
  const target = rowsOf(data.train, targetIdx);
  const auxActs = releasedActivations(
    model,
    trained.device,
    protection,
    aux.features,
    auxIdx.length,
  );
  const targetActs = releasedActivations(
    model,
    trained.device,
    protection,
    target.features,
    targetIdx.length,
  );
  const auxActsM: Matrix = { data: auxActs.data, rows: auxIdx.length, columns: auxActs.width };
  const targetActsM: Matrix = {
    data: targetActs.data,
    rows: targetIdx.length,
    columns: targetActs.width,
  };
  const auxRaw: Matrix = { data: aux.features, rows: auxIdx.length, columns: features };
  const targetRaw: Matrix = { data: target.features, rows: targetIdx.length, columns: features };

  const leak = auditReleases(
    data,
    { raw: auxRaw, acts: auxActsM, isAttack: aux.isAttack },
    { raw: targetRaw, acts: targetActsM, isAttack: target.isAttack },
    { dcorRows: options.dcorRows, seed: options.seed, attack: options.attack },
  );
  const account = protection.account(trained.releasesPerRow, options.delta);

  return {
    dataset: data.name,
    protection: protection.describe(),
    privacy: account ? { ...account, releasesPerRow: trained.releasesPerRow } : null,
    training: {
      epochs: options.epochs,
      steps: trained.steps,
      lossMean: trained.lossMean,
      rows: data.train.rows,
      seconds: trainSeconds,
    },
    utility: {
      f1: utility.f1,
      auc: utility.rocAuc,
      accuracy: utility.accuracy,
      threshold: utility.threshold,
      testRows: data.test.rows,
    },
    samples: leak.samples,
    reconstruction: leak.reconstruction,
    dcor: leak.dcor,
    dcor2BiasCorrected: leak.dcor2BiasCorrected,
    labelInference: leak.labelInference,
    seconds: (performance.now() - started) / 1000,
  };
}

/** What a curious edge learns from releases it holds: (raw row, released activation) pairs of an
 * auxiliary sample it can produce itself, and the released activations of target rows. */
export interface AuditSample {
  /** Scaled feature rows [rows, features]. */
  raw: Matrix;
  /** Released activations [rows, width], as the edge received them. */
  acts: Matrix;
  /** 1 = attack. */
  isAttack: Int32Array;
}

export interface ReleaseAudit {
  samples: { auxRows: number; targetRows: number; dcorRows: number };
  reconstruction: AuditResult["reconstruction"];
  dcor: number;
  dcor2BiasCorrected: number;
  labelInference: AuditResult["labelInference"];
}

/** The curious edge's attacks on releases: reconstruction decoder (per-feature nMSE, biometrics
 * within clinical tolerance), distance correlation raw ↔ released, label inference. */
export function auditReleases(
  data: Pick<PrivacyData, "train" | "scales">,
  aux: AuditSample,
  target: AuditSample,
  options: { dcorRows: number; seed: number; attack?: AttackOptions },
): ReleaseAudit {
  const features = data.train.featureNames.length;
  for (const [name, s] of [["auxiliary", aux], ["target", target]] as const) {
    if (
      s.raw.columns !== features || s.raw.rows !== s.acts.rows ||
      s.isAttack.length !== s.raw.rows || s.raw.rows < 2
    ) {
      throw new RangeError(
        `audit: ${name} sample of ${s.raw.rows} rows x ${s.raw.columns} features, ${s.acts.rows} activation rows, ${s.isAttack.length} labels (model has ${features} features)`,
      );
    }
  }
  if (aux.acts.columns !== target.acts.columns) {
    throw new RangeError(
      `audit: activations of width ${aux.acts.columns} (auxiliary) vs ${target.acts.columns} (target)`,
    );
  }
  const attack = {
    ...DEFAULT_ATTACK,
    ...options.attack,
    seed: options.attack?.seed ?? options.seed + 101,
  };
  const guess = reconstruct(aux.acts, aux.raw, target.acts, attack);
  const nmse = normalizedMse(target.raw, guess);
  const finite = Array.from(nmse).filter((v) => Number.isFinite(v));
  const nmseMean = finite.reduce((a, b) => a + b, 0) / Math.max(finite.length, 1);

  const dIdx = sampleRowIndexes(target.raw.rows, options.dcorRows);
  const pick = (m: Matrix) => {
    const out = new Float32Array(dIdx.length * m.columns);
    dIdx.forEach((r, i) =>
      out.set(m.data.subarray(r * m.columns, (r + 1) * m.columns), i * m.columns)
    );
    return { data: out, rows: dIdx.length, columns: m.columns };
  };
  const { dcor, dcor2BiasCorrected } = distanceCorrelation(pick(target.raw), pick(target.acts));
  const labelScores = inferLabels(aux.acts, aux.isAttack, target.acts, attack);
  const labelInference = labelInferenceMetrics(labelScores, target.isAttack, aux.isAttack);
  return {
    samples: { auxRows: aux.raw.rows, targetRows: target.raw.rows, dcorRows: dIdx.length },
    reconstruction: {
      nmseMean,
      features: data.train.featureNames.map((name, c) => ({ name, nmse: nmse[c] })),
      biometrics: biometricRecovery(data.scales, aux.raw, target.raw, guess, nmse),
    },
    dcor,
    dcor2BiasCorrected,
    labelInference: {
      ...labelInference,
      labelsSent: true,
      note:
        "vanilla split learning sends every label to the edge in plaintext; this measures what " +
        "the activations alone reveal (the edge's knowledge in a U-shaped split, where the device keeps the head)",
    },
  };
}

/** The audit's figures in a trial's results (report.json): the privacy-utility row's columns. */
export interface AuditSummary {
  auxRows: number;
  targetRows: number;
  /** Round whose releases were attacked (0-based). */
  round: number;
  nmseMean: number;
  biometricWithin: number | null;
  biometricBaseline: number | null;
  biometrics: BiometricRecovery[];
  dcor: number;
  dcor2BiasCorrected: number;
  labelAuc: number;
}

export function auditSummary(audit: ReleaseAudit, round: number): AuditSummary {
  const bio = audit.reconstruction.biometrics;
  const mean = (f: (b: BiometricRecovery) => number) =>
    bio.length ? bio.reduce((s, b) => s + f(b), 0) / bio.length : null;
  return {
    auxRows: audit.samples.auxRows,
    targetRows: audit.samples.targetRows,
    round,
    nmseMean: audit.reconstruction.nmseMean,
    biometricWithin: mean((b) => b.withinTolerance),
    biometricBaseline: mean((b) => b.baselineWithinTolerance),
    biometrics: bio,
    dcor: audit.dcor,
    dcor2BiasCorrected: audit.dcor2BiasCorrected,
    labelAuc: audit.labelInference.auc,
  };
}

/** The protections of the privacy-utility table: noise levels with clipping, NoPeek weights. */
export function tableSettings(clipNorm = 1): Omit<ProtectionOptions, "seed">[] {
  return [
    {},
    { clipNorm, noiseMultiplier: 0 },
    { clipNorm, noiseMultiplier: 0.5 },
    { clipNorm, noiseMultiplier: 1 },
    { clipNorm, noiseMultiplier: 2 },
    { nopeekWeight: 0.1 },
    { nopeekWeight: 0.5 },
  ];
}

export interface PrivacyUtilityRow {
  protection: string;
  clipNorm: number | null;
  noiseMultiplier: number;
  nopeekWeight: number;
  epsilon: number | null;
  f1: number;
  auc: number;
  nmseMean: number;
  /** Mean over biometric columns of the share recovered within tolerance, and its baseline. */
  biometricWithin: number | null;
  biometricBaseline: number | null;
  dcor: number;
  /** Absent in tables measured before it was added. */
  dcor2BiasCorrected?: number;
  labelAuc: number;
}

export interface PrivacyUtilityTable {
  dataset: string;
  epochs: number;
  delta: number;
  rows: PrivacyUtilityRow[];
  /** Replaces the default caption (the `run` experiment describes its own settings). */
  caption?: string;
}

export function tableRow(result: AuditResult): PrivacyUtilityRow {
  const bio = result.reconstruction.biometrics;
  const mean = (f: (b: BiometricRecovery) => number) =>
    bio.length ? bio.reduce((s, b) => s + f(b), 0) / bio.length : null;
  return {
    protection: result.protection.name,
    clipNorm: result.protection.clipNorm,
    noiseMultiplier: result.protection.noiseMultiplier,
    nopeekWeight: result.protection.nopeekWeight,
    epsilon: result.privacy?.epsilon ?? null,
    f1: result.utility.f1,
    auc: result.utility.auc,
    nmseMean: result.reconstruction.nmseMean,
    biometricWithin: mean((b) => b.withinTolerance),
    biometricBaseline: mean((b) => b.baselineWithinTolerance),
    dcor: result.dcor,
    dcor2BiasCorrected: result.dcor2BiasCorrected,
    labelAuc: result.labelInference.auc,
  };
}

/** Runs the audit for every setting; `onRow` sees each result as it finishes (progress logs). */
export function privacyUtilityTable(
  data: PrivacyData,
  options: Omit<AuditOptions, "protection">,
  settings = tableSettings(),
  onRow?: (row: PrivacyUtilityRow, result: AuditResult) => void,
): PrivacyUtilityTable {
  const rows: PrivacyUtilityRow[] = [];
  for (const protection of settings) {
    const result = runAudit(data, { ...options, protection });
    const row = tableRow(result);
    rows.push(row);
    onRow?.(row, result);
  }
  return { dataset: data.name, epochs: options.epochs, delta: options.delta, rows };
}
