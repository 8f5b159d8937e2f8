// Deterministic simulation of n PBFT replicas: the seeded PRNG owns the network, the clock, the
// application's latency and every fault. Safety is checked on every commit; liveness once the
// fault period ends.
import { requestKey } from "../pbft/certificates.ts";
import { defaultConfig, type ReplicaConfig } from "../pbft/config.ts";
import { unsoundQuorumForTesting } from "../pbft/quorum.ts";
import { createReplica, type Replica } from "../pbft/replica.ts";
import type {
  ClientRequest,
  CommittedEntry,
  Output,
  ProtocolMessage,
  ProtocolSnapshot,
  ReplicaEvent,
} from "../pbft/types.ts";
import { buildBlock, validateBlock } from "./app.ts";
import { type ByzantineWrapper, createByzantineWrapper, type Outgoing } from "./byzantine.ts";
import { SafetyChecker, SafetyViolation } from "./checker.ts";
import { FakeSignatureScheme } from "./fake_signatures.ts";
import { Prng } from "./prng.ts";
import { EventQueue } from "./event_queue.ts";
import {
  describeScenario,
  type Scenario,
  scenarioFromSeed,
  type ScenarioOverrides,
} from "./scenario.ts";

export interface SimulationOptions {
  readonly seed: number;
  readonly overrides?: ScenarioOverrides;
  /** Test only: every replica uses this (unsound) quorum size, to prove the checker finds forks. */
  readonly unsafeQuorumSize?: number;
  /** Test only: the checker skips commit-certificate checks and relies on fork detection. */
  readonly skipCertificateChecks?: boolean;
  /** Ticks after the fault period within which every request must commit everywhere. */
  readonly livenessBudgetTicks?: number;
  readonly traceLinesMax?: number;
  /** Also trace every rejection and log line (verbose replays). */
  readonly traceRejections?: boolean;
}

export interface SimulationFailure {
  readonly kind: "safety" | "liveness" | "crash";
  readonly message: string;
  readonly tick: number;
}

export interface SimulationStats {
  ticks: number;
  events: number;
  messagesSent: number;
  messagesDropped: number;
  forgedRejected: number;
  commits: number;
  viewChanges: number;
  restarts: number;
  transfers: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly description: string;
  readonly failure: SimulationFailure | null;
  readonly stats: SimulationStats;
  readonly trace: readonly string[];
}

const CHAIN_ID = "sim-chain";
const GENESIS = "0".repeat(64);
const CLIENT_RETRY_TICKS = 60;
const STEP_EVENTS_MAX = 400_000;

type SimEvent =
  | { kind: "start"; replica: number }
  | { kind: "deliver"; to: number; origin: number; message: ProtocolMessage }
  | { kind: "replica-event"; replica: number; incarnation: number; event: ReplicaEvent }
  | { kind: "request"; index: number }
  | { kind: "client-retry" }
  | { kind: "crash"; replica: number; downTicks: number }
  | { kind: "restart"; replica: number };

interface SimNode {
  readonly index: number;
  readonly config: ReplicaConfig;
  readonly wrapper: ByzantineWrapper | null;
  replica: Replica;
  up: boolean;
  incarnation: number;
  snapshot: ProtocolSnapshot | null;
  readonly ledger: CommittedEntry[];
}

export function runSimulation(options: SimulationOptions): SimulationResult {
  const scenario = scenarioFromSeed(options.seed, options.overrides);
  return new Simulation(scenario, options).run();
}

class Simulation {
  private readonly random: Prng;
  private readonly networkRandom: Prng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly signatures = new FakeSignatureScheme(CHAIN_ID);
  private readonly checker: SafetyChecker;
  private readonly nodes: SimNode[] = [];
  private readonly requests: ClientRequest[] = [];
  private readonly stats: SimulationStats = {
    ticks: 0,
    events: 0,
    messagesSent: 0,
    messagesDropped: 0,
    forgedRejected: 0,
    commits: 0,
    viewChanges: 0,
    restarts: 0,
    transfers: 0,
  };
  private readonly trace: string[] = [];
  private now = 0;
  private submitted = 0;

  constructor(private readonly scenario: Scenario, private readonly options: SimulationOptions) {
    const root = new Prng(scenario.seed ^ 0x5bd1e995);
    this.random = root.fork();
    this.networkRandom = root.fork();
    this.checker = new SafetyChecker(
      scenario.replicaCount,
      CHAIN_ID,
      GENESIS,
      this.signatures,
      !options.skipCertificateChecks,
    );
    const byzantineRandom = root.fork();
    for (let index = 0; index < scenario.replicaCount; index++) {
      const config = defaultConfig({
        chainId: CHAIN_ID,
        genesisBlockHash: GENESIS,
        replicaCount: scenario.replicaCount,
        self: index,
        checkpointIntervalHeights: scenario.checkpointIntervalHeights,
        watermarkWindowHeights: scenario.watermarkWindowHeights,
        batchSizeMax: scenario.batchSizeMax,
        batchTimeoutMs: 4,
        viewChangeTimeoutMs: 100,
        statusIntervalMs: 30,
        retainedCommitsMax: 64,
        payloadBytesMax: 4096,
        viewChangeProofBytesMax: 1 << 20,
      });
      const behaviour = scenario.byzantine.get(index);
      const wrapper = behaviour
        ? createByzantineWrapper(behaviour, {
          self: index,
          replicaCount: scenario.replicaCount,
          random: byzantineRandom.fork(),
          sign: (message) => this.signatures.signed(index, message),
        })
        : null;
      this.nodes.push({
        index,
        config,
        wrapper,
        replica: this.createReplica(config),
        up: true,
        incarnation: 0,
        snapshot: null,
        ledger: [],
      });
    }
    for (let i = 0; i < scenario.requestCount; i++) {
      this.requests.push({
        clientId: `client-${i}`,
        nonce: 1 + (i % 3),
        body: new Uint8Array([i & 0xff]),
      });
    }
  }

  private createReplica(config: ReplicaConfig): Replica {
    const quorum = this.options.unsafeQuorumSize
      ? unsoundQuorumForTesting(config.replicaCount, this.options.unsafeQuorumSize)
      : undefined;
    return createReplica(config, undefined, { quorum });
  }

  run(): SimulationResult {
    const { scenario } = this;
    for (const node of this.nodes) this.queue.push(0, { kind: "start", replica: node.index });
    scenario.requestTicks.forEach((tick, index) =>
      this.queue.push(tick, { kind: "request", index })
    );
    for (const crash of scenario.crashes) {
      this.queue.push(crash.atTick, {
        kind: "crash",
        replica: crash.replica,
        downTicks: crash.downTicks,
      });
    }
    this.queue.push(CLIENT_RETRY_TICKS, { kind: "client-retry" });
    const deadline = scenario.faultPeriodTicks + (this.options.livenessBudgetTicks ?? 5000);
    let failure: SimulationFailure | null = null;
    try {
      while (true) {
        const next = this.queue.pop();
        if (!next) {
          failure = this.fail("liveness", "event queue drained before every request committed");
          break;
        }
        this.now = next.time;
        if (this.now > deadline) {
          failure = this.fail("liveness", this.livenessReport());
          break;
        }
        if (++this.stats.events > STEP_EVENTS_MAX) {
          failure = this.fail("liveness", `more than ${STEP_EVENTS_MAX} events`);
          break;
        }
        const commitsBefore = this.stats.commits;
        this.handle(next.item);
        const progressed = this.stats.commits !== commitsBefore ||
          next.item.kind === "restart" || next.item.kind === "request";
        // Faults run their full course; liveness is judged once they are over.
        if (
          progressed && this.submitted === this.requests.length && !this.inFaultPeriod() &&
          this.allCommittedEverywhere()
        ) {
          break;
        }
      }
    } catch (error) {
      const kind = error instanceof SafetyViolation ? "safety" : "crash";
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      failure = this.fail(kind, message);
      if (kind === "crash" && error instanceof Error && error.stack) {
        this.note(error.stack.split("\n").slice(0, 6).join(" | "));
      }
    }
    this.stats.ticks = this.now;
    return {
      seed: scenario.seed,
      scenario,
      description: describeScenario(scenario),
      failure,
      stats: this.stats,
      trace: this.trace,
    };
  }

  private fail(kind: SimulationFailure["kind"], message: string): SimulationFailure {
    return { kind, message, tick: this.now };
  }

  // -------------------------------------------------------------------------------------------

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case "start":
        return this.stepNode(this.nodes[event.replica], { type: "start" });
      case "deliver":
        return this.deliver(event.to, event.origin, event.message);
      case "replica-event": {
        const node = this.nodes[event.replica];
        if (node.up && node.incarnation === event.incarnation) this.stepNode(node, event.event);
        return;
      }
      case "request":
        this.submitted = Math.max(this.submitted, event.index + 1);
        return this.sendRequest(this.requests[event.index]);
      case "client-retry":
        this.retryRequests();
        this.queue.push(this.now + CLIENT_RETRY_TICKS, { kind: "client-retry" });
        return;
      case "crash": {
        const node = this.nodes[event.replica];
        if (!node.up) return;
        node.up = false;
        node.incarnation++;
        this.note(`crash r${node.index} for ${event.downTicks} ticks`);
        this.queue.push(this.now + event.downTicks, { kind: "restart", replica: node.index });
        return;
      }
      case "restart": {
        const node = this.nodes[event.replica];
        node.up = true;
        this.stats.restarts++;
        this.note(`restart r${node.index} from persisted view ${node.snapshot?.view ?? 0}`);
        if (!node.snapshot) {
          node.replica = this.createReplica(node.config);
          return this.stepNode(node, { type: "start" });
        }
        // Only what was persisted survives: the snapshot and the ledger's committed tail.
        const committedTail = node.ledger.slice(-node.config.retainedCommitsMax);
        return this.stepNode(node, {
          type: "restore",
          state: { snapshot: node.snapshot, committedTail },
        });
      }
    }
  }

  private deliver(to: number, origin: number, message: ProtocolMessage): void {
    const node = this.nodes[to];
    if (!node.up) return;
    if (!this.signatures.verify(message)) {
      // Only Byzantine replicas can produce these; an honest one doing so is a simulator bug.
      if (!this.nodes[origin].wrapper) {
        throw new Error(`honest replica ${origin} sent a message with a bad signature`);
      }
      this.stats.forgedRejected++;
      return;
    }
    node.wrapper?.observe(message);
    this.stepNode(node, { type: "message", from: message.replica, message });
  }

  private stepNode(node: SimNode, event: ReplicaEvent): void {
    const output = node.replica.step(event);
    this.applyOutput(node, output);
  }

  /** The shell: persist, record commits, then send; effects go to the application and timers. */
  private applyOutput(node: SimNode, output: Output): void {
    if (output.persist) node.snapshot = output.persist;
    for (const commit of output.commits) {
      node.ledger.push(commit);
      if (node.ledger.length > 2 * node.config.retainedCommitsMax) {
        node.ledger.splice(0, node.ledger.length - node.config.retainedCommitsMax);
      }
      if (!node.wrapper) this.checker.onCommit(node.index, commit);
      this.stats.commits++;
      if (commit.source === "transfer") this.stats.transfers++;
      this.note(
        `r${node.index} commit h=${commit.height} v=${commit.view} ${
          commit.blockHash.slice(0, 8)
        } ${commit.source}`,
      );
    }
    if (this.options.traceRejections) {
      for (const rejection of output.rejections) {
        this.note(
          `r${node.index} rejected ${rejection.what} from ${
            rejection.from ?? "-"
          }: ${rejection.reason}`,
        );
      }
      for (const line of output.logs) this.note(`r${node.index} log: ${line}`);
    }
    for (const line of output.logs) {
      if (line.startsWith("FORK") && !node.wrapper) {
        throw new SafetyViolation(`replica ${node.index} detected: ${line}`);
      }
      if (line.startsWith("entered view")) this.stats.viewChanges++;
      if (line.startsWith("entered view") || line.startsWith("FORK")) {
        this.note(`r${node.index} ${line}`);
      }
    }
    let outgoing: Outgoing[] = [];
    for (const { to, message } of output.messages) {
      const signed = message.signature ? message : this.signatures.signed(node.index, message);
      if (to === "all") {
        for (let j = 0; j < this.nodes.length; j++) outgoing.push({ to: j, message: signed });
      } else {
        outgoing.push({ to, message: signed });
      }
    }
    if (node.wrapper) outgoing = node.wrapper.outgoing(outgoing);
    for (const { to, message } of outgoing) this.send(node.index, to, message);
    for (const effect of output.application) {
      const delay = this.random.range(1, this.scenario.appLatencyTicksMax);
      let event: ReplicaEvent;
      if (effect.type === "propose") {
        const block = buildBlock(effect.height, effect.parentBlockHash, effect.requests);
        event = { type: "proposal-built", height: effect.height, view: effect.view, ...block };
      } else {
        event = {
          type: "proposal-validated",
          validationId: effect.validationId,
          height: effect.height,
          view: effect.view,
          blockHash: effect.blockHash,
          ok: validateBlock(
            effect.height,
            effect.parentBlockHash,
            effect.payload,
            effect.blockHash,
            effect.requestIds,
          ),
        };
      }
      this.queue.push(this.now + delay, {
        kind: "replica-event",
        replica: node.index,
        incarnation: node.incarnation,
        event,
      });
    }
    for (const timer of output.timers) {
      if (timer.type !== "set") continue; // the core ignores fires of cancelled generations
      this.queue.push(this.now + timer.durationMs, {
        kind: "replica-event",
        replica: node.index,
        incarnation: node.incarnation,
        event: { type: "timer-fired", timer: timer.timer, generation: timer.generation },
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Network

  private inFaultPeriod(): boolean {
    return this.now < this.scenario.faultPeriodTicks;
  }

  private partitioned(from: number, to: number): boolean {
    for (const partition of this.scenario.partitions) {
      if (this.now < partition.atTick || this.now >= partition.atTick + partition.durationTicks) {
        continue;
      }
      if (partition.side.includes(from) !== partition.side.includes(to)) return true;
    }
    return false;
  }

  private send(from: number, to: number, message: ProtocolMessage): void {
    this.stats.messagesSent++;
    if (from === to) {
      // Local loop-back of the replica's own signed message: not over the network.
      this.queue.push(this.now, { kind: "deliver", to, origin: from, message });
      return;
    }
    const random = this.networkRandom;
    const faulty = this.inFaultPeriod();
    if (faulty && (random.chance(this.scenario.lossProbability) || this.partitioned(from, to))) {
      this.stats.messagesDropped++;
      return;
    }
    const delayMax = faulty ? this.scenario.delayTicksMax : 2;
    this.queue.push(this.now + random.range(1, delayMax), {
      kind: "deliver",
      to,
      origin: from,
      message,
    });
    if (faulty && random.chance(this.scenario.duplicateProbability)) {
      this.queue.push(this.now + random.range(1, delayMax), {
        kind: "deliver",
        to,
        origin: from,
        message,
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Clients

  private sendRequest(request: ClientRequest): void {
    for (const node of this.nodes) {
      if (this.inFaultPeriod() && this.networkRandom.chance(this.scenario.lossProbability)) {
        continue;
      }
      this.queue.push(this.now + this.networkRandom.range(1, 3), {
        kind: "replica-event",
        replica: node.index,
        incarnation: node.incarnation,
        event: { type: "client-request", request },
      });
    }
  }

  /** A client resends until f+1 honest replicas executed its request (it saw f+1 replies); the
   * resends of one round reach each replica as one client-requests event (a shell's batch). */
  private retryRequests(): void {
    const resend: ClientRequest[] = [];
    for (let i = 0; i < this.submitted; i++) {
      const key = requestKey(this.requests[i]);
      let executedBy = 0;
      for (const node of this.nodes) {
        if (!node.wrapper && this.checker.executedCount(node.index, key)) executedBy++;
      }
      if (executedBy < this.scenario.faultsTolerated + 1) resend.push(this.requests[i]);
    }
    if (resend.length === 0) return;
    for (const node of this.nodes) {
      if (this.inFaultPeriod() && this.networkRandom.chance(this.scenario.lossProbability)) {
        continue;
      }
      this.queue.push(this.now + this.networkRandom.range(1, 3), {
        kind: "replica-event",
        replica: node.index,
        incarnation: node.incarnation,
        event: { type: "client-requests", requests: resend },
      });
    }
  }

  private allCommittedEverywhere(): boolean {
    for (const node of this.nodes) {
      if (node.wrapper) continue;
      if (!node.up) return false;
      for (const request of this.requests) {
        if (!this.checker.executedCount(node.index, requestKey(request))) return false;
      }
    }
    return true;
  }

  private livenessReport(): string {
    const lines = this.nodes.filter((node) => !node.wrapper).map((node) => {
      const state = node.replica.inspect();
      const missing = this.requests.filter((request) =>
        !this.checker.executedCount(node.index, requestKey(request))
      ).length;
      return `r${node.index}: view=${state.view}${state.viewActive ? "" : "(changing)"} ` +
        `executed=${state.lastExecutedHeight} stable=${state.stableHeight} missing=${missing}`;
    });
    return `not every request committed on every honest replica: ${lines.join("; ")}`;
  }

  private note(line: string): void {
    const max = this.options.traceLinesMax ?? 40;
    this.trace.push(`t=${this.now} ${line}`);
    if (this.trace.length > max) this.trace.shift();
  }
}

export function replayCommand(seed: number, extra = ""): string {
  return `deno task sim --seeds 1 --seed ${seed}${extra ? " " + extra : ""}`;
}

export { SafetyViolation };
