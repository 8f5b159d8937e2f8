// A hand-driven cluster for unit tests: messages queue up until the test delivers them, so a
// test can drop, reorder or tamper with exactly the messages a paper section is about.
import { defaultConfig, type ReplicaConfig } from "../../../ledger/pbft/config.ts";
import { createReplica, type Replica } from "../../../ledger/pbft/replica.ts";
import type {
  ApplicationEffect,
  ClientRequest,
  CommitOutput,
  Output,
  ProtocolMessage,
  ProtocolSnapshot,
  Rejection,
  ReplicaEvent,
  TimerName,
} from "../../../ledger/pbft/types.ts";
import { buildBlock, validateBlock } from "../../../ledger/sim/app.ts";
import { FakeSignatureScheme } from "../../../ledger/sim/fake_signatures.ts";

export interface InFlight {
  from: number;
  to: number;
  message: ProtocolMessage;
}

export interface ClusterOptions {
  replicaCount?: number;
  config?: Partial<ReplicaConfig>;
  /** Answer application effects automatically (default true). */
  autoApplication?: boolean;
  /** Application verdict for validations (default: the simulator's honest validation). */
  validate?: (replica: number, effect: Extract<ApplicationEffect, { type: "validate" }>) => boolean;
}

export class Cluster {
  readonly signatures = new FakeSignatureScheme("test-chain");
  readonly replicas: Replica[] = [];
  readonly configs: ReplicaConfig[] = [];
  readonly network: InFlight[] = [];
  readonly commits: CommitOutput[][] = [];
  readonly rejections: Rejection[][] = [];
  readonly logs: string[][] = [];
  readonly snapshots: (ProtocolSnapshot | null)[] = [];
  readonly timers: Map<TimerName, number>[] = [];
  readonly pendingApplication: { replica: number; effect: ApplicationEffect }[] = [];
  readonly down = new Set<number>();

  constructor(readonly options: ClusterOptions = {}) {
    const n = options.replicaCount ?? 4;
    for (let i = 0; i < n; i++) {
      const config = defaultConfig({
        chainId: "test-chain",
        replicaCount: n,
        self: i,
        checkpointIntervalHeights: 2,
        watermarkWindowHeights: 4,
        batchSizeMax: 2,
        payloadBytesMax: 4096,
        viewChangeProofBytesMax: 1 << 20,
        ...options.config,
      });
      this.configs.push(config);
      this.replicas.push(createReplica(config));
      this.commits.push([]);
      this.rejections.push([]);
      this.logs.push([]);
      this.snapshots.push(null);
      this.timers.push(new Map());
    }
    for (let i = 0; i < n; i++) this.step(i, { type: "start" });
  }

  get size(): number {
    return this.replicas.length;
  }

  step(replica: number, event: ReplicaEvent): Output {
    const output = this.replicas[replica].step(event);
    this.apply(replica, output);
    return output;
  }

  sign<T extends ProtocolMessage>(replica: number, message: T): T {
    return { ...message, replica, signature: this.signatures.sign(replica, message) };
  }

  private apply(replica: number, output: Output): void {
    if (output.persist) this.snapshots[replica] = output.persist;
    this.commits[replica].push(...output.commits);
    this.rejections[replica].push(...output.rejections);
    this.logs[replica].push(...output.logs);
    for (const { to, message } of output.messages) {
      const signed = message.signature ? message : this.sign(replica, message);
      const targets = to === "all" ? [...this.replicas.keys()] : [to];
      for (const target of targets) {
        this.network.push({ from: replica, to: target, message: signed });
      }
    }
    for (const timer of output.timers) {
      if (timer.type === "set") this.timers[replica].set(timer.timer, timer.generation);
      else this.timers[replica].delete(timer.timer);
    }
    for (const effect of output.application) {
      this.pendingApplication.push({ replica, effect });
    }
    if (this.options.autoApplication ?? true) this.answerApplication();
  }

  answerApplication(): void {
    while (this.pendingApplication.length > 0) {
      const { replica, effect } = this.pendingApplication.shift()!;
      if (effect.type === "propose") {
        const block = buildBlock(effect.height, effect.parentBlockHash, effect.requests);
        this.step(replica, {
          type: "proposal-built",
          height: effect.height,
          view: effect.view,
          ...block,
        });
      } else {
        const ok = this.options.validate?.(replica, effect) ??
          validateBlock(
            effect.height,
            effect.parentBlockHash,
            effect.payload,
            effect.blockHash,
            effect.requestIds,
          );
        this.step(replica, {
          type: "proposal-validated",
          validationId: effect.validationId,
          height: effect.height,
          view: effect.view,
          blockHash: effect.blockHash,
          ok,
        });
      }
    }
  }

  /** Deliver queued messages (FIFO) until none remain or `rounds` is exhausted. Messages to or
   * from a down replica, or rejected by `keep`, are dropped. */
  deliverAll(keep: (inFlight: InFlight) => boolean = () => true, rounds = 10_000): number {
    let delivered = 0;
    while (this.network.length > 0 && rounds-- > 0) {
      const inFlight = this.network.shift()!;
      if (this.down.has(inFlight.to) || this.down.has(inFlight.from) || !keep(inFlight)) continue;
      this.deliver(inFlight);
      delivered++;
    }
    return delivered;
  }

  deliver({ to, message }: InFlight): void {
    if (!this.signatures.verify(message)) throw new Error("test delivered a badly signed message");
    this.step(to, { type: "message", from: message.replica, message });
  }

  request(clientId: string, nonce: number, to: number[] = [...this.replicas.keys()]): void {
    const request: ClientRequest = { clientId, nonce, body: new Uint8Array([nonce & 0xff]) };
    for (const replica of to) this.step(replica, { type: "client-request", request });
  }

  fireTimer(replica: number, timer: TimerName): void {
    const generation = this.timers[replica].get(timer);
    if (generation === undefined) throw new Error(`timer ${timer} not armed on ${replica}`);
    this.step(replica, { type: "timer-fired", timer, generation });
  }

  /** Fire the batch timer on whichever replica has it armed (the primary). */
  flushBatches(): void {
    for (let i = 0; i < this.size; i++) {
      if (this.timers[i].has("batch") && !this.down.has(i)) this.fireTimer(i, "batch");
    }
  }

  restart(replica: number): void {
    const snapshot = this.snapshots[replica];
    const committedTail = this.commits[replica];
    this.replicas[replica] = createReplica(
      this.configs[replica],
      snapshot ? { snapshot, committedTail } : undefined,
    );
    this.timers[replica].clear();
    this.down.delete(replica);
    this.step(replica, { type: "start" });
  }

  committedHeights(replica: number): number[] {
    return this.commits[replica].map((commit) => commit.height);
  }

  rejectionReasons(replica: number): string[] {
    return this.rejections[replica].map((rejection) => `${rejection.what}: ${rejection.reason}`);
  }

  /** Drain status chatter so tests see only what they provoke. */
  dropStatus(inFlight: InFlight): boolean {
    return inFlight.message.kind !== "status";
  }
}
