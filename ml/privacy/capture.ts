// The curious edge inside a real training (`iomt-sfl run --experiment privacy`): it keeps a
// sample of the activations the devices actually sent in one round (with the rows they came from,
// as ground truth for scoring only), builds its auxiliary sample the way a colluding device
// would (its own rows through the round's global device model and the same protection), and
// runs the audit's attacks on them (ml/privacy/audit.ts auditReleases).
import type { ModelConfig } from "../model/config.ts";
import { prng } from "../model/random.ts";
import { binaryLabels } from "../data/types.ts";
import type { Release } from "../train/split_step.ts";
import type { Matrix } from "./attack.ts";
import { auditReleases, type AuditSummary, auditSummary } from "./audit.ts";
import type { PrivacyData } from "./dataset.ts";
import { createProtection, protectionForRound } from "./protection.ts";
import type { ProtectionSettings } from "./settings.ts";
import { releasedActivations } from "./train.ts";
import { sampleRowIndexes } from "./dcor.ts";

export const CAPTURE_LIMITS = { rowsMax: 20_000 } as const;
/** Device index of the edge's simulated colluding device in the noise seed (no real device has
 * it), so its noise is independent of every device's. */
const AUX_DEVICE_INDEX = 0x0a0c_0a0c;

/** A uniform sample (reservoir, seeded) of the rows released in one round, over all devices. */
export class ReleaseCapture {
  readonly #random: () => number;
  #seen = 0;
  #width = -1;
  readonly #raw: Float32Array[] = [];
  readonly #acts: Float32Array[] = [];
  readonly #isAttack: number[] = [];

  constructor(
    readonly round: number,
    readonly features: number,
    readonly rowsMax: number,
    seed: number,
  ) {
    if (!Number.isInteger(rowsMax) || rowsMax < 2 || rowsMax > CAPTURE_LIMITS.rowsMax) {
      throw new RangeError(`release capture: ${rowsMax} rows outside 2..${CAPTURE_LIMITS.rowsMax}`);
    }
    this.#random = prng(seed);
  }

  /** The ReleaseObserver of trainRounds: keeps rows of `round` only. */
  observe = (_deviceIndex: number, release: Release): void => {
    if (release.round !== this.round) return;
    const width = release.activations.length / release.rows;
    if (this.#width === -1) this.#width = width;
    if (width !== this.#width || release.features.length !== release.rows * this.features) {
      throw new Error(
        `release capture: release of ${release.rows} rows with ${release.features.length} features, ${release.activations.length} activations`,
      );
    }
    for (let r = 0; r < release.rows; r++) {
      const raw = release.features.slice(r * this.features, (r + 1) * this.features);
      const acts = release.activations.slice(r * width, (r + 1) * width);
      const isAttack = release.labels[r] > 0 ? 1 : 0;
      const k = this.#seen++;
      if (k < this.rowsMax) {
        this.#raw.push(raw);
        this.#acts.push(acts);
        this.#isAttack.push(isAttack);
      } else {
        const j = Math.floor(this.#random() * (k + 1));
        if (j < this.rowsMax) {
          this.#raw[j] = raw;
          this.#acts[j] = acts;
          this.#isAttack[j] = isAttack;
        }
      }
    }
  };

  get rowsSeen(): number {
    return this.#seen;
  }

  sample(): { raw: Matrix; acts: Matrix; isAttack: Int32Array } {
    const rows = this.#raw.length;
    if (rows < 2) throw new Error(`release capture: ${rows} rows released in round ${this.round}`);
    const raw = new Float32Array(rows * this.features);
    const acts = new Float32Array(rows * this.#width);
    this.#raw.forEach((r, i) => raw.set(r, i * this.features));
    this.#acts.forEach((a, i) => acts.set(a, i * this.#width));
    return {
      raw: { data: raw, rows, columns: this.features },
      acts: { data: acts, rows, columns: this.#width },
      isAttack: Int32Array.from(this.#isAttack),
    };
  }
}

export interface CapturedAuditInput {
  data: PrivacyData;
  config: ModelConfig;
  /** The global device model the captured round started from (what every device, and so a
   * colluding one, holds). */
  deviceModel: Float32Array;
  protection: ProtectionSettings | null | undefined;
  capture: ReleaseCapture;
  auxRows: number;
  dcorRows: number;
  seed: number;
}

/** The curious edge's audit of the captured releases. Synchronous tfjs work. */
export function auditCapturedReleases(input: CapturedAuditInput): AuditSummary {
  const { data, config, capture } = input;
  const target = capture.sample();
  const features = config.features;
  const auxIdx = sampleRowIndexes(data.validation.rows, input.auxRows);
  const auxRaw = new Float32Array(auxIdx.length * features);
  const allAttack = binaryLabels(data.validation);
  const auxAttack = new Int32Array(auxIdx.length);
  auxIdx.forEach((r, i) => {
    auxRaw.set(data.validation.features.subarray(r * features, (r + 1) * features), i * features);
    auxAttack[i] = allAttack[r];
  });
  const protection =
    protectionForRound(input.protection, input.seed, capture.round, AUX_DEVICE_INDEX) ??
      createProtection({ seed: input.seed });
  const auxActs = releasedActivations(
    config,
    input.deviceModel,
    protection,
    auxRaw,
    auxIdx.length,
  );
  const audit = auditReleases(
    data,
    {
      raw: { data: auxRaw, rows: auxIdx.length, columns: features },
      acts: { data: auxActs.data, rows: auxIdx.length, columns: auxActs.width },
      isAttack: auxAttack,
    },
    target,
    { dcorRows: input.dcorRows, seed: input.seed },
  );
  return auditSummary(audit, capture.round);
}
