// The order in which the edge computes the split steps its devices have sent. Steps run one at a
// time (the BiLSTM work is synchronous); when several are waiting, the device furthest into its
// round goes first. Served in arrival order, all devices advanced together and finished in the
// last second of the round, so their updates reached the validators in one burst at the end and
// every validator scored ten models after round_close. Furthest-first finishes devices one after
// another through the round, and the validators score each update while the others still train.
// In SplitFed v1 every device has its own server-side copy, so the order changes no number.

/** A queued step: `priority` larger runs first; equal priorities run in arrival order. */
interface Waiting<T> {
  key: string;
  priority: number;
  arrival: number;
  run: () => T;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export class StepScheduler<T> {
  readonly #waiting: Waiting<T>[] = [];
  #arrivals = 0;
  #pumping = false;

  /** `waitingMax`: bound on queued steps (a device has at most one in flight). */
  constructor(
    readonly waitingMax: number,
    readonly yieldToIo: () => Promise<void> = () =>
      new Promise((resolve) => setTimeout(resolve, 0)),
  ) {
    if (!Number.isInteger(waitingMax) || waitingMax < 1) {
      throw new Error(`step scheduler: waitingMax ${waitingMax} must be an integer ≥ 1`);
    }
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `run` when it is this key's turn. One waiting step per key; more is refused. */
  submit(key: string, priority: number, run: () => T): Promise<T> {
    if (this.#waiting.some((w) => w.key === key)) {
      return Promise.reject(new StepSchedulerFull(`a step from ${key} is already waiting`));
    }
    if (this.#waiting.length >= this.waitingMax) {
      return Promise.reject(new StepSchedulerFull(`${this.waitingMax} steps already waiting`));
    }
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ key, priority, arrival: this.#arrivals++, run, resolve, reject });
      if (!this.#pumping) void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      // Let the steps that arrive in the same turn queue up before the first choice.
      await this.yieldToIo();
      while (this.#waiting.length > 0) {
        let best = 0;
        for (let i = 1; i < this.#waiting.length; i++) {
          const a = this.#waiting[i], b = this.#waiting[best];
          if (a.priority > b.priority || (a.priority === b.priority && a.arrival < b.arrival)) {
            best = i;
          }
        }
        const [next] = this.#waiting.splice(best, 1);
        try {
          next.resolve(next.run());
        } catch (error) {
          next.reject(error);
        }
        // Requests that arrived during the step enter the queue before the next choice.
        await this.yieldToIo();
      }
    } finally {
      this.#pumping = false;
    }
  }
}

export class StepSchedulerFull extends Error {
  override name = "StepSchedulerFull";
}
