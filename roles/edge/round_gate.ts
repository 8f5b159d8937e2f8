// An operator's start/stop of rounds (admin API). Stopping never cuts a round in half: the round
// in progress completes (its updates are scored and aggregated as usual) and the trial then holds
// before the next round until an operator starts it again, optionally for a fixed number of rounds.
// Pure: no timers, no I/O; the caller awaits `beforeRound` and logs what it waits for.
import type { AdminActions } from "../../web/node_view.ts";

export type GateState =
  /** Rounds follow each other. */
  | "running"
  /** A stop was requested; the round in progress completes, then the trial pauses. */
  | "stopping"
  /** Waiting for an operator's start before the next round. */
  | "paused";

export interface GateResult {
  accepted: boolean;
  message: string;
}

/** Rounds one start may run; more than a trial can have is a typo, not a plan. */
export const GATE_ROUNDS_MAX = 10_000;

export class RoundGate {
  #state: GateState = "running";
  /** Rounds left before pausing again; null: no limit. */
  #budget: number | null = null;
  #inRound = false;
  #wake: (() => void) | null = null;
  readonly #onChange: (state: GateState) => void;

  constructor(onChange: (state: GateState) => void = () => {}) {
    this.#onChange = onChange;
  }

  get state(): GateState {
    return this.#state;
  }

  /** True when the next beforeRound will wait for an operator's start. */
  get holdsNextRound(): boolean {
    return this.#state !== "running" || this.#budget === 0;
  }

  /** Pauses before the next round; the round in progress (if any) completes. */
  stop(): GateResult {
    if (this.#state !== "running") {
      return { accepted: false, message: `rounds are already ${this.#state}` };
    }
    this.#set(this.#inRound ? "stopping" : "paused");
    return {
      accepted: true,
      message: this.#inRound
        ? "stopping: the round in progress completes, then the trial pauses"
        : "paused before the next round",
    };
  }

  /** Resumes rounds; with `rounds`, pauses again after that many. */
  start(rounds?: number): GateResult {
    if (
      rounds !== undefined &&
      !(Number.isInteger(rounds) && rounds >= 1 && rounds <= GATE_ROUNDS_MAX)
    ) {
      return { accepted: false, message: `rounds must be an integer in 1..${GATE_ROUNDS_MAX}` };
    }
    if (this.#state === "running" && rounds === undefined && this.#budget === null) {
      return { accepted: false, message: "rounds are already running" };
    }
    this.#budget = rounds ?? null;
    this.#set("running");
    this.#wake?.();
    return {
      accepted: true,
      message: rounds === undefined
        ? "rounds resumed"
        : `running ${rounds} more round(s), then pausing`,
    };
  }

  /** Resolves when round `round` may start; `waiting` is called once if it has to wait. */
  async beforeRound(
    round: number,
    waiting: (round: number) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    this.#inRound = false;
    if (this.#state === "stopping") this.#set("paused");
    if (this.#budget === 0) {
      this.#budget = null;
      this.#set("paused");
    }
    if (this.#state === "paused") {
      waiting(round);
      while (this.#state === "paused") {
        signal?.throwIfAborted();
        await new Promise<void>((resolve, reject) => {
          this.#wake = resolve;
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
        this.#wake = null;
      }
    }
    if (this.#budget !== null) this.#budget--;
    this.#inRound = true;
  }

  #set(state: GateState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#onChange(state);
  }
}

/** The admin API of whoever runs rounds behind `gate`: start and stop; quarantine and readmit
 * are refused with `noLedger` (they are ledger transactions this node cannot sign). */
export function gateAdminActions(gate: RoundGate, noLedger: string): AdminActions {
  const refused = () => Promise.resolve({ accepted: false, message: noLedger });
  return {
    startRound: (request) => Promise.resolve(gate.start(request.rounds)),
    stopRound: () => Promise.resolve(gate.stop()),
    quarantine: refused,
    readmit: refused,
  };
}
