// PBFT replica as a pure state machine (Castro & Liskov, OSDI '99 §4): no I/O, clock, randomness
// or async. The shell steps events in and performs the returned effects: persist, then send.
import { invariant } from "./assert.ts";
import {
  type CertificateContext,
  commitCertificateReason,
  committedEntryReason,
  isBlockHash,
  isHeight,
  isReplicaIndex,
  requestIdsReason,
  requestKey,
  viewChangeReason,
} from "./certificates.ts";
import { type ReplicaConfig, validateConfig } from "./config.ts";
import { planNewView, sameReproposals } from "./new_view.ts";
import { primaryOf, type Quorum, quorumOf } from "./quorum.ts";
import type {
  Checkpoint,
  ClientRequest,
  Commit,
  CommittedEntry,
  Entries,
  NewView,
  Output,
  Prepare,
  PreparedCertificate,
  PrePrepare,
  ProtocolMessage,
  ProtocolSnapshot,
  ReplicaEvent,
  RequestId,
  RestoredState,
  SentVote,
  StableCheckpoint,
  Status,
  TimerName,
  ViewChange,
} from "./types.ts";

export interface Replica {
  readonly self: number;
  step(event: ReplicaEvent): Output;
  inspect(): ReplicaInspection;
}

export interface ReplicaInspection {
  readonly view: number;
  readonly viewActive: boolean;
  readonly isPrimary: boolean;
  readonly lastExecutedHeight: number;
  readonly lastExecutedBlockHash: string;
  readonly stableHeight: number;
  readonly pendingRequests: number;
  readonly slotsInWindow: number;
  readonly futureMessagesBuffered: number;
}

export interface ReplicaOptions {
  /** Test only: replace the sound quorum (see unsoundQuorumForTesting). */
  readonly quorum?: Quorum;
}

export function createReplica(
  config: ReplicaConfig,
  restored?: RestoredState,
  options: ReplicaOptions = {},
): Replica {
  const validated = validateConfig(config);
  const quorum = options.quorum ?? quorumOf(config.replicaCount);
  let core = new ReplicaCore(validated, quorum, restored);
  return {
    self: validated.self,
    step(event: ReplicaEvent): Output {
      if (event.type !== "restore") return core.step(event);
      core = new ReplicaCore(validated, quorum, event.state);
      return core.step({ type: "start" });
    },
    inspect: () => core.inspect(),
  };
}

type Validation = "none" | "waiting-parent" | "pending" | "ok" | "rejected";

interface ValidatedBlock {
  readonly blockHash: string;
  readonly payload: Uint8Array;
  readonly requestIds: readonly RequestId[];
}

interface Slot {
  readonly height: number;
  // Current-view state, cleared on every view change.
  prePrepare: PrePrepare | null;
  validation: Validation;
  prepares: Map<number, Prepare>;
  commits: Map<number, Commit>;
  // Survives view changes.
  validated: ValidatedBlock | null;
  preparedCertificate: PreparedCertificate | null;
}

interface PendingValidation {
  readonly purpose: "proposal" | "transfer";
  readonly height: number;
  readonly view: number;
  readonly blockHash: string;
}

type MutableOutput = { -readonly [K in keyof Output]: Output[K] };

function emptyOutput(): MutableOutput {
  return {
    persist: null,
    commits: [],
    messages: [],
    application: [],
    timers: [],
    rejections: [],
    logs: [],
  };
}

const byReplica = <T extends { replica: number }>(a: T, b: T) => a.replica - b.replica;

class ReplicaCore implements Replica {
  readonly self: number;
  private readonly config: ReplicaConfig;
  private readonly quorum: Quorum;
  private readonly context: CertificateContext & {
    watermarkWindowHeights: number;
    checkpointIntervalHeights: number;
    viewChangeProofBytesMax: number;
  };

  private out: MutableOutput = emptyOutput();
  private dirty = false;
  private started = false;
  /** Last view with a pre-prepare or prepare sent (-1: none): its first one is persisted before
   * it leaves, later ones in the same view need not be (RestoredState.abstainThroughView). */
  private lastVoteView = -1;
  /** After a restart: no pre-prepare or prepare in views up to this one (-1: none). */
  private abstainThroughView = -1;

  // Views (§4.4).
  private view = 0;
  private viewActive = true;
  private viewChangeAttempts = 0;
  /** Latest view-change per replica (highest newView). */
  private readonly viewChanges = new Map<number, ViewChange>();
  /** New-view accepted for the current view; served to replicas that lag behind. */
  private currentNewView: NewView | null = null;
  /** New-view this replica built as primary of `view` while the view is not yet active. */
  private builtNewView: NewView | null = null;
  private readonly reproposals = new Map<number, string>();
  private freshFromHeight = 1;

  // Log and water marks (§4.2, §4.3).
  private stable: StableCheckpoint;
  private readonly slots = new Map<number, Slot>();
  private readonly votes = new Map<string, SentVote>();
  private readonly checkpointVotes = new Map<number, Map<number, Checkpoint>>();
  private readonly ownCheckpoints = new Map<number, Checkpoint>();

  // Execution.
  private lastExecutedHeight = 0;
  private lastExecutedBlockHash: string;
  private readonly committed = new Map<
    number,
    CommittedEntry & { source: "agreement" | "transfer" }
  >();
  private readonly retained = new Map<number, CommittedEntry>();
  /** Each peer's executed height in its last status (volatile; bounded by the replica count). */
  private readonly peerExecutedHeights = new Map<number, number>();
  private readonly lastNonceByClient = new Map<string, number>();

  // Requests and proposals.
  private readonly pending = new Map<string, ClientRequest>();
  private readonly inFlightRequestKeys = new Set<string>();
  /** The pending requests not in flight, in arrival order: what the next batch is taken from
   * (scanning all of `pending` past the in-flight ones on every step was quadratic). Always
   * pending minus inFlightRequestKeys; maintained with both (markInFlight, unmarkInFlight). */
  private readonly unproposed = new Map<string, ClientRequest>();
  private nextProposalHeight = 1;
  private proposalInFlight:
    | { height: number; view: number; requestIds: readonly RequestId[] }
    | null = null;
  private batchDue = false;

  // Application validations and state transfer.
  private nextValidationId = 1;
  private readonly pendingValidations = new Map<number, PendingValidation>();
  private readonly transferCandidates = new Map<number, CommittedEntry>();
  private transferValidationInFlight = false;

  // Future messages (bounded per peer) and timers.
  private readonly futureMessages = new Map<number, ProtocolMessage[]>();
  private replayNeeded = false;
  private readonly timerGenerations = new Map<TimerName, number>();
  private readonly timersArmed = new Set<TimerName>();

  constructor(config: ReplicaConfig, quorum: Quorum, restored?: RestoredState) {
    this.config = config;
    this.quorum = quorum;
    this.self = config.self;
    this.context = {
      chainId: config.chainId,
      quorum,
      payloadBytesMax: config.payloadBytesMax,
      batchSizeMax: config.batchSizeMax,
      watermarkWindowHeights: config.watermarkWindowHeights,
      checkpointIntervalHeights: config.checkpointIntervalHeights,
      viewChangeProofBytesMax: config.viewChangeProofBytesMax,
    };
    this.stable = { height: 0, blockHash: config.genesisBlockHash, proof: [] };
    this.lastExecutedBlockHash = config.genesisBlockHash;
    if (restored) this.restore(restored);
  }

  // -------------------------------------------------------------------------------------------
  // Public surface

  step(event: ReplicaEvent): Output {
    this.out = emptyOutput();
    if (event.type !== "start" && !this.started) {
      this.reject(undefined, event.type, "replica not started: step {type: 'start'} first");
      return this.out;
    }
    switch (event.type) {
      case "start":
        this.onStart();
        break;
      case "client-request":
        this.onClientRequest(event.request);
        break;
      case "client-requests":
        if (!Array.isArray(event.requests)) {
          this.reject(undefined, "client-requests", "requests is not a list");
        } else if (event.requests.length > this.config.pendingRequestsMax) {
          this.reject(
            undefined,
            "client-requests",
            `${event.requests.length} requests in one event, limit ${this.config.pendingRequestsMax}`,
          );
        } else {
          for (const request of event.requests) this.onClientRequest(request);
        }
        break;
      case "message":
        this.onMessage(event.from, event.message);
        break;
      case "timer-fired":
        this.onTimer(event.timer, event.generation);
        break;
      case "proposal-built":
        this.onProposalBuilt(event.height, event.view, event.payload, event.blockHash);
        break;
      case "proposal-validated":
        this.onProposalValidated(event);
        break;
      case "restore":
        invariant(false, "restore is handled by the replica wrapper");
    }
    this.afterStep();
    const out = this.out;
    this.out = emptyOutput();
    return out;
  }

  inspect(): ReplicaInspection {
    let futureMessagesBuffered = 0;
    for (const list of this.futureMessages.values()) futureMessagesBuffered += list.length;
    return {
      view: this.view,
      viewActive: this.viewActive,
      isPrimary: this.primary() === this.self,
      lastExecutedHeight: this.lastExecutedHeight,
      lastExecutedBlockHash: this.lastExecutedBlockHash,
      stableHeight: this.stable.height,
      pendingRequests: this.pending.size,
      slotsInWindow: this.slots.size,
      futureMessagesBuffered,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Restore and start

  private restore(restored: RestoredState): void {
    const { snapshot, committedTail } = restored;
    this.lastVoteView = snapshot.lastVoteView ?? -1;
    this.abstainThroughView = restored.abstainThroughView ?? this.lastVoteView;
    this.view = snapshot.view;
    this.viewActive = snapshot.viewActive;
    this.stable = snapshot.stable;
    for (let i = 1; i < committedTail.length; i++) {
      invariant(
        committedTail[i].height === committedTail[i - 1].height + 1,
        "restored committed tail is not contiguous",
      );
    }
    for (const entry of committedTail.slice(-this.config.retainedCommitsMax)) {
      this.retained.set(entry.height, entry);
    }
    const last = committedTail.at(-1);
    if (last) {
      this.lastExecutedHeight = last.height;
      this.lastExecutedBlockHash = last.blockHash;
    }
    for (const [clientId, nonce] of snapshot.lastNonceByClient) {
      this.lastNonceByClient.set(clientId, nonce);
    }
    for (const certificate of snapshot.preparedCertificates) {
      const slot = this.slotAt(certificate.prePrepare.height);
      if (!slot) continue;
      slot.preparedCertificate = certificate;
      const { blockHash, payload, requestIds } = certificate.prePrepare;
      slot.validated = { blockHash, payload, requestIds };
    }
    for (const vote of snapshot.votes) {
      if (vote.view === this.view) this.votes.set(`${vote.kind}:${vote.height}`, vote);
    }
    const newView = snapshot.newView;
    if (newView && newView.view === this.view) {
      const plan = planNewView(newView.viewChanges);
      if (this.viewActive) {
        this.currentNewView = newView;
        for (const entry of plan.reproposals) this.reproposals.set(entry.height, entry.blockHash);
        this.freshFromHeight = plan.nextFreshHeight;
      } else if (newView.replica === this.self) {
        this.builtNewView = newView;
      }
    }
    // Never propose again at a height this replica already pre-prepared in this view.
    let highestPrePrepared = Math.max(this.lastExecutedHeight, this.freshFromHeight - 1);
    for (const vote of this.votes.values()) {
      if (vote.kind === "pre-prepare") {
        highestPrePrepared = Math.max(highestPrePrepared, vote.height);
      }
    }
    this.nextProposalHeight = highestPrePrepared + 1;
  }

  private onStart(): void {
    if (this.started) {
      this.reject(undefined, "start", "already started");
      return;
    }
    this.started = true;
    this.setTimer("status", this.config.statusIntervalMs);
    // Checkpoint messages are not persisted: re-announce those of executed heights still needed,
    // or a restart that lost them could keep a checkpoint from ever becoming stable.
    for (const [height, entry] of this.retained) {
      if (height >= this.stable.height && height % this.config.checkpointIntervalHeights === 0) {
        this.sendCheckpoint(height, entry.blockHash);
      }
    }
    if (!this.viewActive) {
      // Restarted during a view change: repeat the view-change (or new-view) it had sent.
      this.broadcast(this.buildViewChange());
      if (this.builtNewView) this.broadcast({ ...this.builtNewView, signature: "" });
    }
    this.broadcastStatus();
  }

  // -------------------------------------------------------------------------------------------
  // Client requests and proposals (§4.2)

  private onClientRequest(request: ClientRequest): void {
    const reason = this.clientRequestReason(request);
    if (reason) {
      this.reject(undefined, "client-request", reason);
      return;
    }
    const key = requestKey(request);
    if (this.pending.has(key)) {
      this.reject(undefined, "client-request", "duplicate of a pending request");
      return;
    }
    if (this.pending.size >= this.config.pendingRequestsMax) {
      this.reject(undefined, "client-request", "pending request queue full");
      return;
    }
    this.pending.set(key, request);
    if (!this.inFlightRequestKeys.has(key)) this.unproposed.set(key, request);
  }

  private clientRequestReason(request: ClientRequest): string | null {
    if (typeof request?.clientId !== "string" || request.clientId.length === 0) {
      return "missing client id";
    }
    if (request.clientId.length > this.config.clientIdLengthMax) return "client id too long";
    if (!Number.isSafeInteger(request.nonce) || request.nonce < 0) return "bad nonce";
    if (!(request.body instanceof Uint8Array)) return "body is not bytes";
    if (request.body.length > this.config.requestBytesMax) return "request body too large";
    if (request.nonce <= (this.lastNonceByClient.get(request.clientId) ?? -1)) {
      return "request already executed";
    }
    return null;
  }

  private maybePropose(): void {
    if (!this.viewActive || this.primary() !== this.self || this.proposalInFlight) return;
    // Restarted in this view: it may have proposed here before and forgotten (not persisted).
    if (this.view <= this.abstainThroughView) return;
    const height = this.nextProposalHeight;
    if (height > this.highWatermark()) return;
    if (height - this.lastExecutedHeight > this.config.proposalPipelineDepthMax) return;
    const parentBlockHash = this.proposalParent(height);
    if (parentBlockHash === null) return;
    invariant(this.unproposed.size <= this.pending.size, "unproposed requests are pending");
    const batch: ClientRequest[] = [];
    for (const request of this.unproposed.values()) {
      if (batch.length >= this.config.batchSizeMax) break;
      batch.push(request);
    }
    if (batch.length === 0) {
      this.cancelTimer("batch");
      this.batchDue = false;
      return;
    }
    // A partial batch waits while an earlier proposal of this replica is still executing: the
    // requests arriving meanwhile join it (one block per round trip instead of one per request,
    // whose fixed cost saturated the validators at a few dozen txs/s). Full batches pipeline.
    if (
      batch.length < this.config.batchSizeMax && height > this.lastExecutedHeight + 1 &&
      this.proposedInThisView(height - 1)
    ) {
      return;
    }
    if (batch.length < this.config.batchSizeMax && !this.batchDue) {
      if (!this.timersArmed.has("batch")) this.setTimer("batch", this.config.batchTimeoutMs);
      return;
    }
    this.batchDue = false;
    this.cancelTimer("batch");
    this.proposalInFlight = {
      height,
      view: this.view,
      requestIds: batch.map(({ clientId, nonce }) => ({ clientId, nonce })),
    };
    this.out.application.push({
      type: "propose",
      height,
      view: this.view,
      parentBlockHash,
      requests: batch,
    });
  }

  /** This replica's own pre-prepare of the current view sits at `height` (not executed yet). */
  private proposedInThisView(height: number): boolean {
    const prePrepare = this.slots.get(height)?.prePrepare;
    return !!prePrepare && prePrepare.view === this.view && prePrepare.replica === this.self;
  }

  private markInFlight(key: string): void {
    this.inFlightRequestKeys.add(key);
    this.unproposed.delete(key);
  }

  private unmarkInFlight(key: string): void {
    if (!this.inFlightRequestKeys.delete(key)) return;
    const request = this.pending.get(key);
    if (request) this.unproposed.set(key, request);
  }

  private proposalParent(height: number): string | null {
    const executed = this.executedHash(height - 1);
    if (executed !== null) return executed;
    const parent = this.slots.get(height - 1)?.prePrepare;
    return parent && parent.view === this.view && parent.replica === this.self
      ? parent.blockHash
      : null;
  }

  private onProposalBuilt(
    height: number,
    view: number,
    payload: Uint8Array,
    blockHash: string,
  ): void {
    const inFlight = this.proposalInFlight;
    if (!inFlight || inFlight.height !== height || inFlight.view !== view || view !== this.view) {
      this.reject(undefined, "proposal-built", "no matching proposal in flight (stale view?)");
      return;
    }
    this.proposalInFlight = null;
    if (!(payload instanceof Uint8Array) || payload.length > this.config.payloadBytesMax) {
      this.reject(undefined, "proposal-built", "payload missing or larger than payloadBytesMax");
      return;
    }
    if (!isBlockHash(blockHash)) {
      this.reject(undefined, "proposal-built", "block hash is not 64 lower-case hex chars");
      return;
    }
    const parentBlockHash = this.proposalParent(height);
    if (parentBlockHash === null || !this.viewActive) {
      this.reject(undefined, "proposal-built", "parent no longer known");
      return;
    }
    const requestIds = inFlight.requestIds;
    this.sendPrePrepare({
      kind: "pre-prepare",
      chainId: this.config.chainId,
      view,
      height,
      blockHash,
      parentBlockHash,
      payload,
      requestIds,
      replica: this.self,
      signature: "",
    });
    this.nextProposalHeight = height + 1;
  }

  private sendPrePrepare(prePrepare: PrePrepare): void {
    this.recordVote("pre-prepare", prePrepare.height, prePrepare.blockHash);
    for (const id of prePrepare.requestIds) this.markInFlight(requestKey(id));
    this.broadcast(prePrepare);
  }

  // -------------------------------------------------------------------------------------------
  // Message dispatch

  private onMessage(from: number, message: ProtocolMessage): void {
    if (!isReplicaIndex(from, this.config.replicaCount)) {
      this.reject(undefined, "message", "sender is not a validator index");
      return;
    }
    if (message?.chainId !== this.config.chainId) {
      this.reject(from, String(message?.kind), "message for another chain");
      return;
    }
    if (message.replica !== from) {
      this.reject(from, message.kind, "signer field differs from the authenticated sender");
      return;
    }
    switch (message.kind) {
      case "pre-prepare":
        return this.onPrePrepare(from, message);
      case "prepare":
        return this.onPrepare(from, message);
      case "commit":
        return this.onCommit(from, message);
      case "checkpoint":
        return this.onCheckpoint(from, message);
      case "view-change":
        return this.onViewChange(from, message);
      case "new-view":
        return this.onNewView(from, message);
      case "status":
        return this.onStatus(from, message);
      case "entries":
        return this.onEntries(from, message);
      default:
        this.reject(from, "message", "unknown message kind");
    }
  }

  /** Shared admission for pre-prepare, prepare and commit: returns the slot, or null after
   * rejecting, buffering or dropping the message. */
  private admitSlotMessage(from: number, message: PrePrepare | Prepare | Commit): Slot | null {
    if (!isHeight(message.view) || !isHeight(message.height) || message.height === 0) {
      this.reject(from, message.kind, "bad view or height");
      return null;
    }
    if (!isBlockHash(message.blockHash)) {
      this.reject(from, message.kind, "block hash is not 64 lower-case hex chars");
      return null;
    }
    if (message.view < this.view) {
      this.reject(from, message.kind, `stale view ${message.view} < ${this.view}`);
      return null;
    }
    if (message.height <= this.stable.height) {
      this.reject(from, message.kind, "height at or below the stable checkpoint (garbage)");
      return null;
    }
    if (message.view > this.view + this.config.viewLookaheadMax) {
      this.reject(from, message.kind, "view too far in the future");
      return null;
    }
    if (message.height > this.highWatermark() + this.config.watermarkWindowHeights) {
      this.reject(from, message.kind, "height too far above the high water mark");
      return null;
    }
    if (message.view > this.view || !this.viewActive || message.height > this.highWatermark()) {
      this.bufferFuture(from, message);
      return null;
    }
    const slot = this.slotAt(message.height);
    invariant(slot, "admitted height must be inside the window");
    return slot;
  }

  private onPrePrepare(from: number, prePrepare: PrePrepare): void {
    if (from !== primaryOf(prePrepare.view, this.config.replicaCount)) {
      this.reject(from, "pre-prepare", "sender is not the primary of that view");
      return;
    }
    if (!(prePrepare.payload instanceof Uint8Array)) {
      this.reject(from, "pre-prepare", "payload is not bytes");
      return;
    }
    if (prePrepare.payload.length > this.config.payloadBytesMax) {
      this.reject(from, "pre-prepare", "payload larger than payloadBytesMax");
      return;
    }
    if (!isBlockHash(prePrepare.parentBlockHash)) {
      this.reject(from, "pre-prepare", "bad parent hash");
      return;
    }
    const idsReason = requestIdsReason(prePrepare.requestIds, this.config.batchSizeMax);
    if (idsReason) {
      this.reject(from, "pre-prepare", idsReason);
      return;
    }
    const slot = this.admitSlotMessage(from, prePrepare);
    if (!slot) return;
    if (slot.prePrepare) {
      if (slot.prePrepare.blockHash !== prePrepare.blockHash) {
        this.reject(from, "pre-prepare", "conflicting pre-prepare for this view and height");
      }
      return; // duplicate
    }
    const { height, blockHash } = prePrepare;
    const forced = this.reproposals.get(height);
    if (height < this.freshFromHeight) {
      if (forced !== blockHash) {
        this.reject(from, "pre-prepare", "differs from the re-proposal fixed by the new-view");
        return;
      }
    } else if (from !== this.self) {
      const duplicateReason = this.freshRequestsReason(prePrepare.requestIds);
      if (duplicateReason) {
        this.reject(from, "pre-prepare", duplicateReason);
        return;
      }
    }
    const executed = height <= this.lastExecutedHeight ? this.executedHash(height) : null;
    if (executed !== null && executed !== blockHash) {
      // Cannot happen with at most f faulty replicas; refuse rather than vote against history.
      this.reject(from, "pre-prepare", "contradicts a block this replica already executed");
      this.log(`FORK: pre-prepare at executed height ${height} names another block`);
      return;
    }
    const sentPrepare = this.votes.get(`prepare:${height}`);
    if (sentPrepare && sentPrepare.blockHash !== blockHash) {
      this.reject(from, "pre-prepare", "this replica already prepared another block here");
      return;
    }
    slot.prePrepare = prePrepare;
    slot.validation = "waiting-parent";
    for (const id of prePrepare.requestIds) this.markInFlight(requestKey(id));
    this.tryValidate(slot);
  }

  private freshRequestsReason(requestIds: readonly RequestId[]): string | null {
    for (const id of requestIds) {
      if (id.nonce <= (this.lastNonceByClient.get(id.clientId) ?? -1)) {
        return "proposes an already executed request";
      }
      if (this.inFlightRequestKeys.has(requestKey(id))) {
        return "proposes a request already proposed at another height in this view";
      }
    }
    return null;
  }

  /** Chain rule: validate height n only once n-1 is prepared here in this view or executed. */
  private tryValidate(slot: Slot): void {
    const prePrepare = slot.prePrepare;
    if (!prePrepare || slot.validation !== "waiting-parent") return;
    const parent = this.localParent(slot.height);
    if (parent === null) return;
    if (prePrepare.parentBlockHash !== parent) {
      slot.validation = "rejected";
      this.reject(prePrepare.replica, "pre-prepare", "does not extend this replica's chain");
      return;
    }
    const validated = slot.validated;
    if (
      prePrepare.replica === this.self ||
      (validated && validated.blockHash === prePrepare.blockHash &&
        sameBytes(validated.payload, prePrepare.payload))
    ) {
      this.onSlotValidated(slot);
      return;
    }
    if (this.pendingValidations.size >= this.config.validationsInFlightMax) return;
    const validationId = this.nextValidationId++;
    this.pendingValidations.set(validationId, {
      purpose: "proposal",
      height: slot.height,
      view: prePrepare.view,
      blockHash: prePrepare.blockHash,
    });
    slot.validation = "pending";
    this.out.application.push({
      type: "validate",
      validationId,
      purpose: "proposal",
      height: slot.height,
      view: prePrepare.view,
      parentBlockHash: parent,
      payload: prePrepare.payload,
      blockHash: prePrepare.blockHash,
      requestIds: prePrepare.requestIds,
    });
  }

  private localParent(height: number): string | null {
    const executed = this.executedHash(height - 1);
    if (executed !== null) return executed;
    const certificate = this.slots.get(height - 1)?.preparedCertificate;
    return certificate && certificate.prePrepare.view === this.view
      ? certificate.prePrepare.blockHash
      : null;
  }

  private onProposalValidated(
    event: Extract<ReplicaEvent, { type: "proposal-validated" }>,
  ): void {
    const pending = this.pendingValidations.get(event.validationId);
    if (!pending) {
      this.reject(undefined, "proposal-validated", "unknown validation id");
      return;
    }
    if (
      pending.height !== event.height || pending.view !== event.view ||
      pending.blockHash !== event.blockHash
    ) {
      this.reject(undefined, "proposal-validated", "answer does not match the validation asked");
      return;
    }
    this.pendingValidations.delete(event.validationId);
    if (pending.purpose === "transfer") {
      this.onTransferValidated(pending, event.ok);
    } else {
      const slot = this.slots.get(pending.height);
      const prePrepare = slot?.prePrepare;
      if (
        slot && prePrepare && slot.validation === "pending" && prePrepare.view === pending.view &&
        prePrepare.blockHash === pending.blockHash && this.view === pending.view
      ) {
        if (event.ok) {
          this.onSlotValidated(slot);
        } else {
          slot.validation = "rejected";
          this.reject(prePrepare.replica, "pre-prepare", "application rejected the block");
        }
      }
    }
    // A freed validation slot may unblock waiting heights.
    for (const slot of this.slots.values()) this.tryValidate(slot);
  }

  private onSlotValidated(slot: Slot): void {
    const prePrepare = slot.prePrepare;
    invariant(prePrepare, "validated slot has a pre-prepare");
    slot.validation = "ok";
    slot.validated = {
      blockHash: prePrepare.blockHash,
      payload: prePrepare.payload,
      requestIds: prePrepare.requestIds,
    };
    // A replica restarted in this view may have sent a prepare here and forgotten it: it only
    // collects the others' votes (and may commit) until the next view.
    if (this.primary() !== this.self && this.view > this.abstainThroughView) {
      this.recordVote("prepare", slot.height, prePrepare.blockHash);
      this.broadcast({
        kind: "prepare",
        chainId: this.config.chainId,
        view: this.view,
        height: slot.height,
        blockHash: prePrepare.blockHash,
        replica: this.self,
        signature: "",
      });
    }
    this.checkPrepared(slot);
    this.checkCommitted(slot);
  }

  private onPrepare(from: number, prepare: Prepare): void {
    if (from === primaryOf(prepare.view, this.config.replicaCount)) {
      this.reject(from, "prepare", "the primary does not send prepares");
      return;
    }
    const slot = this.admitSlotMessage(from, prepare);
    if (!slot) return;
    const existing = slot.prepares.get(from);
    if (existing) {
      if (existing.blockHash !== prepare.blockHash) {
        this.reject(from, "prepare", "conflicting prepare from the same replica");
      }
      return;
    }
    slot.prepares.set(from, prepare);
    this.checkPrepared(slot);
  }

  private onCommit(from: number, commit: Commit): void {
    const slot = this.admitSlotMessage(from, commit);
    if (!slot) return;
    const existing = slot.commits.get(from);
    if (existing) {
      if (existing.blockHash !== commit.blockHash) {
        this.reject(from, "commit", "conflicting commit from the same replica");
      }
      return;
    }
    slot.commits.set(from, commit);
    this.checkCommitted(slot);
  }

  /** §4.2 prepared: pre-prepare plus 2f matching prepares; here also validated by this replica. */
  private checkPrepared(slot: Slot): void {
    const prePrepare = slot.prePrepare;
    if (!prePrepare || slot.validation !== "ok") return;
    if (slot.preparedCertificate?.prePrepare.view === this.view) return;
    const matching = [...slot.prepares.values()]
      .filter((prepare) => prepare.blockHash === prePrepare.blockHash)
      .sort(byReplica);
    if (matching.length < this.quorum.quorumSize - 1) return;
    slot.preparedCertificate = {
      prePrepare,
      prepares: matching.slice(0, this.quorum.quorumSize - 1),
    };
    this.dirty = true;
    this.recordVote("commit", slot.height, prePrepare.blockHash);
    this.broadcast({
      kind: "commit",
      chainId: this.config.chainId,
      view: this.view,
      height: slot.height,
      blockHash: prePrepare.blockHash,
      replica: this.self,
      signature: "",
    });
    const next = this.slots.get(slot.height + 1);
    if (next) this.tryValidate(next);
  }

  /** §4.2 committed-local: 2f+1 matching commits and a payload this replica validated. */
  private checkCommitted(slot: Slot): void {
    const prePrepare = slot.prePrepare;
    if (!prePrepare || slot.height <= this.lastExecutedHeight || this.committed.has(slot.height)) {
      return;
    }
    const matching = [...slot.commits.values()]
      .filter((commit) => commit.blockHash === prePrepare.blockHash)
      .sort(byReplica);
    if (matching.length < this.quorum.quorumSize) return;
    const validated = slot.validated;
    if (!validated || validated.blockHash !== prePrepare.blockHash) {
      this.log(`height ${slot.height} committed before local validation; awaiting transfer`);
      return;
    }
    this.committed.set(slot.height, {
      height: slot.height,
      view: this.view,
      blockHash: validated.blockHash,
      payload: validated.payload,
      requestIds: validated.requestIds,
      certificate: matching.slice(0, this.quorum.quorumSize),
      source: "agreement",
    });
    this.executeReady();
  }

  // -------------------------------------------------------------------------------------------
  // Execution and checkpoints (§4.3)

  private executeReady(): void {
    let progressed = false;
    for (;;) {
      const entry = this.committed.get(this.lastExecutedHeight + 1);
      if (!entry) break;
      this.committed.delete(entry.height);
      const freshRequestIds: RequestId[] = [];
      for (const id of entry.requestIds) {
        const last = this.lastNonceByClient.get(id.clientId) ?? -1;
        if (id.nonce > last) {
          freshRequestIds.push(id);
          this.rememberNonce(id.clientId, id.nonce);
        }
        this.unmarkInFlight(requestKey(id));
      }
      this.dropExecutedPending();
      const { source, ...committedEntry } = entry;
      this.out.commits.push({ ...committedEntry, freshRequestIds, source });
      this.lastExecutedHeight = entry.height;
      this.lastExecutedBlockHash = entry.blockHash;
      this.retained.set(entry.height, committedEntry);
      this.retained.delete(entry.height - this.config.retainedCommitsMax);
      this.dirty = true;
      progressed = true;
      if (entry.height % this.config.checkpointIntervalHeights === 0) {
        this.sendCheckpoint(entry.height, entry.blockHash);
      }
      if (entry.height === this.stable.height && entry.blockHash !== this.stable.blockHash) {
        this.log(`FORK: executed ${entry.blockHash} at stable height ${entry.height}`);
      }
    }
    if (progressed) {
      this.viewChangeAttempts = 0;
      if (this.timersArmed.has("view-change") && this.viewActive) {
        this.setTimer("view-change", this.viewChangeTimeoutMs());
      }
      for (const slot of this.slots.values()) this.tryValidate(slot);
      this.pumpTransfer();
    }
  }

  private rememberNonce(clientId: string, nonce: number): void {
    this.lastNonceByClient.delete(clientId);
    if (this.lastNonceByClient.size >= this.config.clientsTrackedMax) {
      // Forget the least recently active client: the deduplication horizon is bounded.
      const oldest = this.lastNonceByClient.keys().next().value;
      if (oldest !== undefined) this.lastNonceByClient.delete(oldest);
    }
    this.lastNonceByClient.set(clientId, nonce);
  }

  private dropExecutedPending(): void {
    for (const [key, request] of this.pending) {
      if (request.nonce <= (this.lastNonceByClient.get(request.clientId) ?? -1)) {
        this.pending.delete(key);
        this.unproposed.delete(key);
      }
    }
  }

  private sendCheckpoint(height: number, blockHash: string): void {
    this.broadcast({
      kind: "checkpoint",
      chainId: this.config.chainId,
      height,
      blockHash,
      replica: this.self,
      signature: "",
    });
  }

  private onCheckpoint(from: number, checkpoint: Checkpoint): void {
    const { height, blockHash } = checkpoint;
    if (!isHeight(height) || height === 0 || height % this.config.checkpointIntervalHeights !== 0) {
      this.reject(from, "checkpoint", "not a checkpoint height");
      return;
    }
    if (!isBlockHash(blockHash)) {
      this.reject(from, "checkpoint", "bad block hash");
      return;
    }
    if (from === this.self) this.ownCheckpoints.set(height, checkpoint);
    if (height <= this.stable.height) return; // already stable: garbage
    if (height > this.stable.height + 2 * this.config.watermarkWindowHeights) {
      this.reject(from, "checkpoint", "checkpoint too far above the water marks");
      return;
    }
    let votes = this.checkpointVotes.get(height);
    if (!votes) {
      votes = new Map();
      this.checkpointVotes.set(height, votes);
    }
    const existing = votes.get(from);
    if (existing) {
      if (existing.blockHash !== blockHash) {
        this.reject(from, "checkpoint", "conflicting checkpoint from the same replica");
      }
      return;
    }
    votes.set(from, checkpoint);
    const matching = [...votes.values()].filter((vote) => vote.blockHash === blockHash)
      .sort(byReplica);
    if (matching.length >= this.quorum.quorumSize) {
      this.advanceStable({
        height,
        blockHash,
        proof: matching.slice(0, this.quorum.quorumSize),
      });
    }
  }

  /** §4.3: a checkpoint with a 2f+1 proof becomes stable; everything at or below it is garbage. */
  private advanceStable(checkpoint: StableCheckpoint): void {
    if (checkpoint.height <= this.stable.height) return;
    const executed = this.executedHash(checkpoint.height);
    if (executed !== null && executed !== checkpoint.blockHash) {
      this.log(`FORK: stable checkpoint ${checkpoint.height} differs from the executed block`);
    }
    this.stable = checkpoint;
    for (const height of this.slots.keys()) {
      if (height <= checkpoint.height) this.slots.delete(height);
    }
    for (const height of this.checkpointVotes.keys()) {
      if (height <= checkpoint.height) this.checkpointVotes.delete(height);
    }
    for (const height of this.ownCheckpoints.keys()) {
      if (height < checkpoint.height) this.ownCheckpoints.delete(height);
    }
    for (const [key, vote] of this.votes) {
      if (vote.height <= checkpoint.height) this.votes.delete(key);
    }
    if (this.nextProposalHeight <= checkpoint.height) {
      this.nextProposalHeight = checkpoint.height + 1;
    }
    if (this.lastExecutedHeight < checkpoint.height) {
      this.log(
        `lagging: stable checkpoint ${checkpoint.height} above executed ${this.lastExecutedHeight}`,
      );
    }
    this.dirty = true;
    this.replayNeeded = true;
  }

  // -------------------------------------------------------------------------------------------
  // View changes (§4.4)

  private startViewChange(newView: number): void {
    invariant(newView > this.view, "view changes only move forward");
    this.enterViewState(newView, false);
    this.viewChangeAttempts = Math.min(
      this.viewChangeAttempts + 1,
      this.config.viewChangeBackoffExponentMax,
    );
    this.log(`view change to ${newView}`);
    this.cancelTimer("view-change");
    this.broadcast(this.buildViewChange());
    this.checkNewViewReady();
  }

  /** §4.5.2: the timer for view v starts only once 2f+1 replicas have moved to v (or beyond), so
   * a replica that raced ahead alone waits for the others instead of escalating on its own. A
   * later view-change also counts: it proves its sender abandoned every view before it. */
  private armViewChangeTimerWhenQuorumMoved(): void {
    if (this.viewActive || this.timersArmed.has("view-change")) return;
    let moved = 0;
    for (const message of this.viewChanges.values()) {
      if (message.newView >= this.view) moved++;
    }
    if (moved >= this.quorum.quorumSize) {
      this.setTimer("view-change", this.viewChangeTimeoutMs());
    }
  }

  /** Reset everything that belongs to one view. */
  private enterViewState(view: number, active: boolean): void {
    if (view !== this.view) {
      for (const slot of this.slots.values()) {
        slot.prePrepare = null;
        slot.validation = "none";
        slot.prepares.clear();
        slot.commits.clear();
      }
      this.votes.clear();
      this.inFlightRequestKeys.clear();
      this.unproposed.clear();
      for (const [key, request] of this.pending) this.unproposed.set(key, request);
      this.reproposals.clear();
      this.currentNewView = null;
      this.builtNewView = null;
      this.freshFromHeight = 1;
    }
    this.view = view;
    this.viewActive = active;
    this.proposalInFlight = null;
    this.batchDue = false;
    this.cancelTimer("batch");
    this.dirty = true;
  }

  private buildViewChange(): ViewChange {
    const prepared = [...this.slots.values()]
      .filter((slot) => slot.preparedCertificate !== null)
      .sort((a, b) => a.height - b.height)
      .map((slot) => slot.preparedCertificate!);
    return {
      kind: "view-change",
      chainId: this.config.chainId,
      newView: this.view,
      stableHeight: this.stable.height,
      stableBlockHash: this.stable.blockHash,
      checkpointProof: this.stable.proof,
      prepared,
      replica: this.self,
      signature: "",
    };
  }

  private viewChangeReasonLocal(viewChange: ViewChange): string | null {
    const reason = viewChangeReason(viewChange, this.context);
    if (reason) return reason;
    if (
      viewChange.stableHeight === 0 && viewChange.stableBlockHash !== this.config.genesisBlockHash
    ) return "height-0 checkpoint is not the genesis block";
    return null;
  }

  private onViewChange(from: number, viewChange: ViewChange): void {
    const reason = this.viewChangeReasonLocal(viewChange);
    if (reason) {
      this.reject(from, "view-change", reason);
      return;
    }
    const { newView } = viewChange;
    if (newView < this.view || (newView === this.view && this.viewActive)) {
      // The sender is behind; the new-view of the current view brings it here.
      if (this.viewActive && this.currentNewView && from !== this.self) {
        this.send(from, this.currentNewView);
      }
      return;
    }
    if (newView > this.view + this.config.viewLookaheadMax) {
      this.reject(from, "view-change", "view too far in the future");
      return;
    }
    const existing = this.viewChanges.get(from);
    if (existing && existing.newView > newView) return;
    this.viewChanges.set(from, viewChange);
    // Liveness: f+1 replicas want a later view, so at least one correct one does; join the
    // smallest such view instead of waiting for a timeout.
    const later = [...this.viewChanges.values()]
      .filter((message) => message.newView > this.view)
      .map((message) => message.newView)
      .sort((a, b) => a - b);
    if (later.length >= this.quorum.weakQuorumSize) {
      this.startViewChange(later[0]);
      return;
    }
    this.checkNewViewReady();
  }

  private checkNewViewReady(): void {
    if (this.viewActive || this.builtNewView || this.primary() !== this.self) return;
    const forView = [...this.viewChanges.values()]
      .filter((message) => message.newView === this.view)
      .sort(byReplica);
    if (forView.length < this.quorum.quorumSize) return;
    const chosen = forView.slice(0, this.quorum.quorumSize);
    const plan = planNewView(chosen);
    this.builtNewView = {
      kind: "new-view",
      chainId: this.config.chainId,
      view: this.view,
      viewChanges: chosen,
      reproposals: plan.reproposals,
      replica: this.self,
      signature: "",
    };
    this.dirty = true;
    // The primary enters the view when its own signed copy comes back, like every backup.
    this.broadcast(this.builtNewView);
  }

  private onNewView(from: number, newView: NewView): void {
    if (!isHeight(newView.view) || from !== primaryOf(newView.view, this.config.replicaCount)) {
      this.reject(from, "new-view", "sender is not the primary of that view");
      return;
    }
    if (newView.view < this.view || (newView.view === this.view && this.viewActive)) return;
    if (newView.view > this.view + this.config.viewLookaheadMax) {
      this.reject(from, "new-view", "view too far in the future");
      return;
    }
    if (
      !Array.isArray(newView.viewChanges) || !Array.isArray(newView.reproposals) ||
      newView.viewChanges.length < this.quorum.quorumSize ||
      newView.viewChanges.length > this.config.replicaCount
    ) {
      this.reject(from, "new-view", "needs 2f+1 view-change messages");
      return;
    }
    const senders = new Set<number>();
    for (const viewChange of newView.viewChanges) {
      const reason = this.viewChangeReasonLocal(viewChange);
      if (reason) {
        this.reject(from, "new-view", `embedded view-change: ${reason}`);
        return;
      }
      if (viewChange.newView !== newView.view) {
        this.reject(from, "new-view", "embedded view-change for another view");
        return;
      }
      senders.add(viewChange.replica);
    }
    if (senders.size !== newView.viewChanges.length) {
      this.reject(from, "new-view", "view-change messages from repeated replicas");
      return;
    }
    const plan = planNewView(newView.viewChanges);
    if (!sameReproposals(plan.reproposals, newView.reproposals)) {
      this.reject(from, "new-view", "re-proposals do not follow from the view-change proofs");
      return;
    }
    this.enterViewState(newView.view, true);
    this.currentNewView = newView;
    for (const entry of plan.reproposals) this.reproposals.set(entry.height, entry.blockHash);
    this.freshFromHeight = plan.nextFreshHeight;
    for (const [replica, message] of this.viewChanges) {
      if (message.newView <= this.view) this.viewChanges.delete(replica);
    }
    this.cancelTimer("view-change");
    if (plan.stable.height > this.stable.height) this.advanceStable(plan.stable);
    this.log(`entered view ${this.view}`);
    if (this.primary() === this.self) {
      for (const certificate of plan.certificates) {
        const { prePrepare } = certificate;
        if (prePrepare.height <= this.stable.height) continue;
        const slot = this.slots.get(prePrepare.height);
        const own = slot?.validated?.blockHash === prePrepare.blockHash ? slot.validated : null;
        this.sendPrePrepare({
          ...prePrepare,
          view: this.view,
          payload: own?.payload ?? prePrepare.payload,
          replica: this.self,
          signature: "",
        });
      }
      this.nextProposalHeight = Math.max(
        plan.nextFreshHeight,
        this.stable.height + 1,
        this.lastExecutedHeight + 1,
      );
    }
    this.replayNeeded = true;
  }

  // -------------------------------------------------------------------------------------------
  // Status and state transfer

  private broadcastStatus(): void {
    this.broadcast({
      kind: "status",
      chainId: this.config.chainId,
      view: this.view,
      viewActive: this.viewActive,
      lastExecutedHeight: this.lastExecutedHeight,
      stableHeight: this.stable.height,
      replica: this.self,
      signature: "",
    });
  }

  /** Answer a peer's status with what it is missing (retransmission, §4.2 assumes eventual
   * delivery; state transfer for heights it lacks). */
  private onStatus(from: number, status: Status): void {
    if (from === this.self) return;
    if (
      !isHeight(status.view) || !isHeight(status.lastExecutedHeight) ||
      !isHeight(status.stableHeight) || typeof status.viewActive !== "boolean"
    ) {
      this.reject(from, "status", "malformed status");
      return;
    }
    // A peer close behind whose executed height moved since its previous status is keeping up by
    // agreement: resending it committed entries and the agreement messages of the heights in
    // flight (block payloads included) would only duplicate what is on its way. A stalled, far
    // behind or (re)started peer gets them, as before.
    const previous = this.peerExecutedHeights.get(from);
    this.peerExecutedHeights.set(from, status.lastExecutedHeight);
    const keepingUp = previous !== undefined && status.lastExecutedHeight > previous &&
      this.lastExecutedHeight - status.lastExecutedHeight <= this.config.proposalPipelineDepthMax;
    // Committed entries with their certificates.
    if (status.lastExecutedHeight < this.lastExecutedHeight && !keepingUp) {
      const entries: CommittedEntry[] = [];
      const last = Math.min(
        this.lastExecutedHeight,
        status.lastExecutedHeight + this.config.transferBatchHeightsMax,
      );
      for (let height = status.lastExecutedHeight + 1; height <= last; height++) {
        const entry = this.retained.get(height);
        if (!entry) break;
        entries.push(entry);
      }
      if (entries.length > 0) {
        this.send(from, {
          kind: "entries",
          chainId: this.config.chainId,
          entries,
          replica: this.self,
          signature: "",
        });
      } else {
        this.log(`peer ${from} is behind the retained entries; needs ledger sync`);
      }
    }
    for (const [height, checkpoint] of this.ownCheckpoints) {
      if (height > status.stableHeight) this.send(from, checkpoint);
    }
    // View synchronisation.
    const peerBehindView = status.view < this.view ||
      (status.view === this.view && !status.viewActive && this.viewActive);
    if (peerBehindView && this.viewActive && this.currentNewView) {
      this.send(from, this.currentNewView);
    }
    if (!this.viewActive && status.view <= this.view) {
      const own = this.viewChanges.get(this.self);
      if (own && own.newView === this.view) this.send(from, own);
      if (this.builtNewView) this.send(from, this.builtNewView);
    }
    // Agreement messages for heights the peer has not executed.
    if (status.view === this.view && status.viewActive && this.viewActive && !keepingUp) {
      for (const slot of this.slots.values()) {
        if (slot.height <= status.lastExecutedHeight) continue;
        if (slot.prePrepare?.replica === this.self) this.send(from, slot.prePrepare);
        const prepare = slot.prepares.get(this.self);
        if (prepare) this.send(from, prepare);
        const commit = slot.commits.get(this.self);
        if (commit) this.send(from, commit);
      }
    }
  }

  private onEntries(from: number, message: Entries): void {
    if (from === this.self) return;
    if (
      !Array.isArray(message.entries) ||
      message.entries.length > this.config.transferBatchHeightsMax
    ) {
      this.reject(from, "entries", "entries missing or more than transferBatchHeightsMax");
      return;
    }
    for (const entry of message.entries) {
      const reason = committedEntryReason(entry, this.context);
      if (reason) {
        this.reject(from, "entries", reason);
        return;
      }
    }
    for (const entry of message.entries) {
      const { height } = entry;
      if (height <= this.lastExecutedHeight || this.committed.has(height)) continue;
      if (height > this.lastExecutedHeight + this.config.retainedCommitsMax) continue;
      if (this.transferCandidates.has(height)) continue;
      const validated = this.slots.get(height)?.validated;
      if (validated && validated.blockHash === entry.blockHash) {
        this.committed.set(height, { ...entry, ...validated, source: "transfer" });
      } else {
        this.transferCandidates.set(height, entry);
      }
    }
    this.executeReady();
    this.pumpTransfer();
  }

  /** Validate transferred entries one at a time, in height order, against the executed chain. */
  private pumpTransfer(): void {
    for (const height of this.transferCandidates.keys()) {
      if (height <= this.lastExecutedHeight) this.transferCandidates.delete(height);
    }
    if (this.transferValidationInFlight) return;
    const entry = this.transferCandidates.get(this.lastExecutedHeight + 1);
    if (!entry) return;
    if (this.pendingValidations.size >= this.config.validationsInFlightMax) return;
    const validationId = this.nextValidationId++;
    this.pendingValidations.set(validationId, {
      purpose: "transfer",
      height: entry.height,
      view: entry.view,
      blockHash: entry.blockHash,
    });
    this.transferValidationInFlight = true;
    this.out.application.push({
      type: "validate",
      validationId,
      purpose: "transfer",
      height: entry.height,
      view: entry.view,
      parentBlockHash: this.lastExecutedBlockHash,
      payload: entry.payload,
      blockHash: entry.blockHash,
      requestIds: entry.requestIds,
    });
  }

  private onTransferValidated(pending: PendingValidation, ok: boolean): void {
    this.transferValidationInFlight = false;
    const entry = this.transferCandidates.get(pending.height);
    if (!entry || entry.blockHash !== pending.blockHash) return;
    this.transferCandidates.delete(pending.height);
    if (!ok) {
      this.reject(undefined, "entries", `application rejected transferred block ${pending.height}`);
    } else if (
      pending.height === this.lastExecutedHeight + 1 &&
      commitCertificateReason(entry.certificate, entry, this.context) === null
    ) {
      this.committed.set(pending.height, { ...entry, source: "transfer" });
      this.executeReady();
    }
    this.pumpTransfer();
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  private onTimer(timer: TimerName, generation: number): void {
    if (!this.timersArmed.has(timer) || this.timerGenerations.get(timer) !== generation) return;
    this.timersArmed.delete(timer);
    switch (timer) {
      case "status":
        this.broadcastStatus();
        this.setTimer("status", this.config.statusIntervalMs);
        break;
      case "batch":
        this.batchDue = true;
        break;
      case "view-change":
        this.log(`view-change timer expired in view ${this.view}`);
        this.startViewChange(this.view + 1);
        break;
    }
  }

  private setTimer(timer: TimerName, durationMs: number): void {
    const generation = (this.timerGenerations.get(timer) ?? 0) + 1;
    this.timerGenerations.set(timer, generation);
    this.timersArmed.add(timer);
    this.out.timers.push({ type: "set", timer, generation, durationMs });
  }

  private cancelTimer(timer: TimerName): void {
    if (!this.timersArmed.delete(timer)) return;
    this.out.timers.push({ type: "cancel", timer });
  }

  private viewChangeTimeoutMs(): number {
    return this.config.viewChangeTimeoutMs * 2 ** this.viewChangeAttempts;
  }

  /** §4.4: a backup waiting for a request (or a pre-prepared block) to execute runs the timer. */
  private updateViewChangeTimer(): void {
    if (!this.viewActive) return;
    let waiting = this.pending.size > 0;
    if (!waiting) {
      for (const slot of this.slots.values()) {
        if (slot.prePrepare && slot.height > this.lastExecutedHeight) {
          waiting = true;
          break;
        }
      }
    }
    const armed = this.timersArmed.has("view-change");
    if (waiting && !armed) this.setTimer("view-change", this.viewChangeTimeoutMs());
    if (!waiting && armed) this.cancelTimer("view-change");
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private afterStep(): void {
    if (!this.started) return;
    while (this.replayNeeded) {
      this.replayNeeded = false;
      this.replayFutureMessages();
    }
    this.maybePropose();
    this.updateViewChangeTimer();
    this.armViewChangeTimerWhenQuorumMoved();
    if (this.dirty) {
      this.dirty = false;
      this.out.persist = this.snapshot();
    }
  }

  private snapshot(): ProtocolSnapshot {
    const preparedCertificates = [...this.slots.values()]
      .filter((slot) => slot.preparedCertificate !== null)
      .sort((a, b) => a.height - b.height)
      .map((slot) => slot.preparedCertificate!);
    return {
      view: this.view,
      viewActive: this.viewActive,
      stable: this.stable,
      preparedCertificates,
      votes: [...this.votes.values()],
      newView: this.viewActive ? this.currentNewView : this.builtNewView,
      lastNonceByClient: [...this.lastNonceByClient.entries()],
      ...(this.lastVoteView >= 0 ? { lastVoteView: this.lastVoteView } : {}),
    };
  }

  private bufferFuture(from: number, message: ProtocolMessage): void {
    let list = this.futureMessages.get(from);
    if (!list) {
      list = [];
      this.futureMessages.set(from, list);
    }
    if (list.length >= this.config.futureMessagesPerPeerMax) {
      this.reject(from, message.kind, "future-message buffer for this peer is full");
      return;
    }
    list.push(message);
  }

  private replayFutureMessages(): void {
    const buffered = [...this.futureMessages.entries()];
    this.futureMessages.clear();
    for (const [from, messages] of buffered) {
      for (const message of messages) this.onMessage(from, message);
    }
  }

  private recordVote(kind: SentVote["kind"], height: number, blockHash: string): void {
    const key = `${kind}:${height}`;
    const existing = this.votes.get(key);
    invariant(
      !existing || existing.blockHash === blockHash,
      `would send a conflicting ${kind} at view ${this.view} height ${height}`,
    );
    this.votes.set(key, { kind, view: this.view, height, blockHash });
    // A commit vote follows a prepared certificate and is persisted with it. Of the pre-prepares
    // and prepares only the first in each view is (lastVoteView changes): a replica restarted
    // from a snapshot abstains in its lastVoteView (restore), so it cannot contradict a vote it
    // forgot. This takes two of a block's four durable writes off its critical path.
    if (kind === "commit") {
      this.dirty = true;
    } else if (this.lastVoteView !== this.view) {
      this.lastVoteView = this.view;
      this.dirty = true;
    }
  }

  private slotAt(height: number): Slot | null {
    if (height <= this.stable.height || height > this.highWatermark()) return null;
    let slot = this.slots.get(height);
    if (!slot) {
      slot = {
        height,
        prePrepare: null,
        validation: "none",
        prepares: new Map(),
        commits: new Map(),
        validated: null,
        preparedCertificate: null,
      };
      this.slots.set(height, slot);
    }
    return slot;
  }

  private executedHash(height: number): string | null {
    if (height === 0) return this.config.genesisBlockHash;
    if (height === this.lastExecutedHeight) return this.lastExecutedBlockHash;
    if (height === this.stable.height) return this.stable.blockHash;
    if (height > this.lastExecutedHeight) return null;
    return this.retained.get(height)?.blockHash ?? null;
  }

  private highWatermark(): number {
    return this.stable.height + this.config.watermarkWindowHeights;
  }

  private primary(): number {
    return primaryOf(this.view, this.config.replicaCount);
  }

  private broadcast(message: ProtocolMessage): void {
    this.out.messages.push({ to: "all", message });
  }

  private send(to: number, message: ProtocolMessage): void {
    if (to === this.self) return;
    this.out.messages.push({ to, message });
  }

  private reject(from: number | undefined, what: string, reason: string): void {
    this.out.rejections.push(from === undefined ? { what, reason } : { from, what, reason });
  }

  private log(line: string): void {
    this.out.logs.push(line);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
