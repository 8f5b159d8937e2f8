// Activation protection in `iomt-sfl run`: which protection a trial's devices apply, the ε each
// round spends, and `--experiment privacy` (unprotected vs clip + noise levels vs NoPeek, each
// audited by a curious edge on the activations it actually received).
import type { PreparedDataset } from "../../ml/data/prepare.ts";
import type { ModelConfig } from "../../ml/model/config.ts";
import type {
  AuditSummary,
  PrivacyUtilityRow,
  PrivacyUtilityTable,
} from "../../ml/privacy/audit.ts";
import { auditCapturedReleases, ReleaseCapture } from "../../ml/privacy/capture.ts";
import { fromPrepared } from "../../ml/privacy/dataset.ts";
import {
  describeProtection,
  epsilonSpent,
  type ProtectionSettings,
  releasesPerRow,
} from "../../ml/privacy/settings.ts";
import { type GlobalModel, initialModel } from "../../ml/train/loop.ts";
import type { Release } from "../../ml/train/split_step.ts";
import type { TrialSpec } from "../trial_spec.ts";
import type { RoundRow, TrialResult } from "./results.ts";

/** Split modes send activations; FedAvg (and --compare's baseline) applies no protection. */
export function trainingProtection(spec: TrialSpec): ProtectionSettings | undefined {
  return spec.protection && spec.mode !== "fedavg" && spec.mode !== "centralized"
    ? spec.protection
    : undefined;
}

export function protectionOfTrial(spec: TrialSpec): TrialResult["protection"] {
  const settings = trainingProtection(spec);
  return settings ? { name: describeProtection(settings), settings } : undefined;
}

/** The row with the (ε, δ) the trial's devices spent by the end of its round (multi-process:
 * the edge's report does not know the devices' protection; the accountant is deterministic). */
export function withEpsilon(row: RoundRow, spec: TrialSpec): RoundRow {
  const spent = epsilonSpent(
    trainingProtection(spec),
    releasesPerRow(row.round + 1, spec.localEpochs),
  );
  return spent ? { ...row, epsilon: spent.epsilon, delta: spent.delta } : row;
}

export const PRIVACY_AUDIT_DEFAULTS = { auxRows: 2000, targetRows: 1000, dcorRows: 500 } as const;

/** Captures the last round's releases inside runInProcess and audits them afterwards. */
export class PrivacyAuditHook {
  #capture: ReleaseCapture | null = null;
  #data: PreparedDataset | null = null;
  #config: ModelConfig | null = null;
  /** Global model at the start of the last round: what a colluding device held then. */
  #lastRoundStart: GlobalModel | null = null;

  constructor(readonly spec: TrialSpec, readonly sizes = PRIVACY_AUDIT_DEFAULTS) {}

  /** runInProcess, once the data is prepared and the model shape known. */
  prepared(data: PreparedDataset, config: ModelConfig): void {
    this.#data = data;
    this.#config = config;
    this.#lastRoundStart = initialModel(config, this.spec.seed);
    this.#capture = new ReleaseCapture(
      this.spec.rounds - 1,
      config.features,
      this.sizes.targetRows,
      this.spec.seed ^ 0x5eed,
    );
  }

  observe = (deviceIndex: number, release: Release): void => {
    this.#capture?.observe(deviceIndex, release);
  };

  /** `model` is the global model after `round`, i.e. the start of round + 1. */
  roundDone(round: number, model: GlobalModel): void {
    if (round + 1 === this.spec.rounds - 1) {
      this.#lastRoundStart = { device: model.device.slice(), edge: model.edge.slice() };
    }
  }

  /** The curious edge's audit of the last round's releases. */
  finish(dataName: string): AuditSummary {
    if (!this.#capture || !this.#data || !this.#config || !this.#lastRoundStart) {
      throw new Error("privacy audit: the trial did not run in this process");
    }
    return auditCapturedReleases({
      data: fromPrepared(dataName, this.#data),
      config: this.#config,
      deviceModel: this.#lastRoundStart.device,
      protection: trainingProtection(this.spec),
      capture: this.#capture,
      auxRows: this.sizes.auxRows,
      dcorRows: this.sizes.dcorRows,
      seed: this.spec.seed,
    });
  }
}

/** The settings of `--experiment privacy`: unprotected, clip 1 with two noise levels, NoPeek.
 * Few and short on purpose (the experiment trains one trial per setting). */
export const PRIVACY_EXPERIMENT_SETTINGS: readonly {
  label: string;
  protection?: ProtectionSettings;
}[] = [
  { label: "none" },
  { label: "clip1-noise0.1", protection: { clipNorm: 1, noiseMultiplier: 0.1, delta: 1e-5 } },
  { label: "clip1-noise0.5", protection: { clipNorm: 1, noiseMultiplier: 0.5, delta: 1e-5 } },
  { label: "nopeek0.5", protection: { nopeekWeight: 0.5, delta: 1e-5 } },
];

export function privacyExperiment(base: TrialSpec): { label: string; spec: TrialSpec }[] {
  return PRIVACY_EXPERIMENT_SETTINGS.map(({ label, protection }) => {
    const spec: TrialSpec = { ...base, attack: undefined };
    delete spec.protection;
    return { label, spec: protection ? { ...spec, protection } : spec };
  });
}

/** The experiment's results as the privacy-utility table (ml/privacy/report.ts renders it). */
export function privacyExperimentTable(
  results: readonly TrialResult[],
  data: string,
  spec: TrialSpec,
): PrivacyUtilityTable {
  const rows: PrivacyUtilityRow[] = results.map((r) => {
    const last = r.rows.at(-1);
    const a = r.privacyAudit;
    if (!last || !a) throw new Error(`privacy experiment: trial ${r.label} has no audit`);
    const s = r.protection?.settings;
    return {
      protection: r.protection?.name ?? "none",
      clipNorm: s?.clipNorm ?? null,
      noiseMultiplier: s?.noiseMultiplier ?? 0,
      nopeekWeight: s?.nopeekWeight ?? 0,
      epsilon: last.epsilon ?? null,
      f1: last.f1,
      auc: last.rocAuc,
      nmseMean: a.nmseMean,
      biometricWithin: a.biometricWithin,
      biometricBaseline: a.biometricBaseline,
      dcor: a.dcor,
      dcor2BiasCorrected: a.dcor2BiasCorrected,
      labelAuc: a.labelAuc,
    };
  });
  const audit = results[0]?.privacyAudit;
  return {
    dataset: data,
    epochs: spec.rounds * spec.localEpochs,
    delta: PRIVACY_EXPERIMENT_SETTINGS.find((s) => s.protection)?.protection?.delta ?? 1e-5,
    rows,
    caption:
      `${data}; ${spec.devices} devices, ${spec.rounds} rounds × ${spec.localEpochs} local ` +
      `epoch(s) per setting, seed ${spec.seed}. F1/AUC: last round, test split (detection runs ` +
      `the model locally, unprotected). Curious edge: decoder trained on ${
        audit?.auxRows ?? "?"
      } validation rows released through the last round's global device model and the same ` +
      `protection, scored on ${
        audit?.targetRows ?? "?"
      } rows sampled from the activations the edge received in the last round. ε per training ` +
      `row over the whole training at δ = 1e-5 (activation noise only)`,
  };
}

/** The protection section of a report: what the devices applied and the ε it cost per round. */
export function protectionNote(results: readonly TrialResult[]): string | null {
  const protectedTrials = results.filter((r) => r.protection);
  if (protectedTrials.length === 0) return null;
  const lines: string[] = [];
  for (const r of results) {
    const name = r.label ? `${r.label} (${r.mode})` : r.mode;
    if (!r.protection) {
      lines.push(
        `${name}: no activation protection${
          r.mode === "fedavg" ? " (FedAvg sends weights, no activations)" : ""
        }`,
      );
      continue;
    }
    const s = r.protection.settings;
    lines.push(
      `${name}: ${r.protection.name}` +
        (s.targetEpsilon ? ` (σ calibrated for target ε = ${s.targetEpsilon})` : ""),
    );
    const spent = r.rows.filter((row) => row.epsilon !== undefined);
    lines.push(
      spent.length
        ? `  ε spent per training row (δ = ${spent[0].delta}): ` +
          spent.map((row) => `round ${row.round + 1}: ${row.epsilon!.toFixed(2)}`).join(", ")
        : "  no noise: no (ε, δ) guarantee, empirical protection only",
    );
  }
  lines.push(
    "",
    "The guarantee covers the activation vectors computed from a row and sent to the edge (one release",
    "per row per local epoch, sensitivity 2C, no amplification by subsampling). Labels (sent in clear",
    "in vanilla split learning) and the device weights sent to the validators are not covered; see",
    "docs/privacy.md.",
  );
  return lines.join("\n");
}
