// Progress of a trial on stderr: redrawn bars on a terminal, one line per event otherwise (CI
// logs, pipes). stdout stays free for the final table.
import process from "node:process";

const BAR_WIDTH = 24;

function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.round((done / total) * BAR_WIDTH) : 0;
  return `[${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${done}/${total}`;
}

export class Progress {
  readonly #tty = Boolean(process.stderr.isTTY);
  #roundsDone = 0;
  #devicesDone = new Map<string, string>();
  #round = -1;
  #drawn = 0;

  constructor(readonly label: string, readonly rounds: number, readonly devices: number) {}

  roundStarted(round: number): void {
    this.#round = round;
    this.#devicesDone.clear();
    if (!this.#tty) {
      this.#line(
        `${this.label}: round ${round + 1}/${this.rounds} started (${this.devices} devices)`,
      );
    }
    this.#draw();
  }

  deviceDone(id: string, round: number, steps: number, seconds: number): void {
    if (round !== this.#round) this.roundStarted(round);
    this.#devicesDone.set(id, `${steps} steps ${seconds.toFixed(1)} s`);
    if (!this.#tty) {
      this.#line(
        `${this.label}: round ${round + 1} ${id} done (${steps} steps, ${seconds.toFixed(1)} s)`,
      );
    }
    this.#draw();
  }

  roundDone(round: number, summary: string): void {
    this.#roundsDone = round + 1;
    this.#clear();
    this.#line(`${this.label}: round ${round + 1}/${this.rounds} ${summary}`);
    this.#draw();
  }

  finish(): void {
    this.#clear();
  }

  #line(text: string) {
    this.#clear();
    process.stderr.write(text + "\n");
  }

  #clear() {
    if (!this.#tty || this.#drawn === 0) return;
    process.stderr.write(`\x1b[${this.#drawn}A\x1b[J`);
    this.#drawn = 0;
  }

  #draw() {
    if (!this.#tty) return;
    this.#clear();
    const lines = [
      `${this.label} rounds  ${bar(this.#roundsDone, this.rounds)}`,
      `round ${this.#round + 1} devices ${bar(this.#devicesDone.size, this.devices)}`,
    ];
    process.stderr.write(lines.join("\n") + "\n");
    this.#drawn = lines.length;
  }
}
