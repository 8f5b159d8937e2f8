// Types shared by the PBFT core, its shell and the simulator. The core never signs or verifies:
// every message carries `signature`, an opaque string the shell fills in when sending and checks
// when receiving (see signing.ts for exactly which fields are signed).

export type ReplicaIndex = number;
/** Lower-case hex SHA-256 block hash, computed by the application (ledger/chain). */
export type BlockHashHex = string;

export interface RequestId {
  readonly clientId: string;
  /** Strictly increasing per client; a request with nonce <= the last executed one is a duplicate. */
  readonly nonce: number;
}

export interface ClientRequest extends RequestId {
  readonly body: Uint8Array;
}

interface SignedByReplica {
  /** Signer. For a message received directly it equals the authenticated sender. */
  readonly replica: ReplicaIndex;
  /** Opaque signature over signedContentOf(message); "" on messages the core emits. */
  readonly signature: string;
}

export interface PrePrepare extends SignedByReplica {
  readonly kind: "pre-prepare";
  readonly chainId: string;
  readonly view: number;
  /** Sequence number n. */
  readonly height: number;
  /** Digest d of the payload. */
  readonly blockHash: BlockHashHex;
  /** Hash of the block at height-1 that this block extends; signed, so certificates show it. */
  readonly parentBlockHash: BlockHashHex;
  /** Opaque block bytes; bound to the signature through blockHash (the application checks). */
  readonly payload: Uint8Array;
  readonly requestIds: readonly RequestId[];
}

export interface Prepare extends SignedByReplica {
  readonly kind: "prepare";
  readonly chainId: string;
  readonly view: number;
  readonly height: number;
  readonly blockHash: BlockHashHex;
}

export interface Commit extends SignedByReplica {
  readonly kind: "commit";
  readonly chainId: string;
  readonly view: number;
  readonly height: number;
  readonly blockHash: BlockHashHex;
}

/** State digest at a checkpoint is the block hash there: it chains all history before it. */
export interface Checkpoint extends SignedByReplica {
  readonly kind: "checkpoint";
  readonly chainId: string;
  readonly height: number;
  readonly blockHash: BlockHashHex;
}

/** A pre-prepare plus 2f matching prepares from distinct backups (§4.2 "prepared"). */
export interface PreparedCertificate {
  readonly prePrepare: PrePrepare;
  readonly prepares: readonly Prepare[];
}

export interface ViewChange extends SignedByReplica {
  readonly kind: "view-change";
  readonly chainId: string;
  readonly newView: number;
  readonly stableHeight: number;
  readonly stableBlockHash: BlockHashHex;
  /** 2f+1 checkpoint messages proving stableHeight (empty for height 0, the genesis block). */
  readonly checkpointProof: readonly Checkpoint[];
  /** Highest-view prepared certificate for each height above stableHeight. */
  readonly prepared: readonly PreparedCertificate[];
}

export interface Reproposal {
  readonly height: number;
  readonly blockHash: BlockHashHex;
}

export interface NewView extends SignedByReplica {
  readonly kind: "new-view";
  readonly chainId: string;
  readonly view: number;
  /** 2f+1 view-change messages for `view` from distinct replicas. */
  readonly viewChanges: readonly ViewChange[];
  /** The set O, recomputed and compared by every receiver; the pre-prepares follow separately. */
  readonly reproposals: readonly Reproposal[];
}

/** Periodic state summary; peers answer with what the sender is missing (retransmission). */
export interface Status extends SignedByReplica {
  readonly kind: "status";
  readonly chainId: string;
  readonly view: number;
  readonly viewActive: boolean;
  readonly lastExecutedHeight: number;
  readonly stableHeight: number;
}

/** A committed block with the 2f+1 commit messages of one view that prove it. */
export interface CommittedEntry {
  readonly height: number;
  readonly view: number;
  readonly blockHash: BlockHashHex;
  readonly payload: Uint8Array;
  readonly requestIds: readonly RequestId[];
  readonly certificate: readonly Commit[];
}

/** State transfer: committed entries, each accepted only with a valid commit certificate. */
export interface Entries extends SignedByReplica {
  readonly kind: "entries";
  readonly chainId: string;
  readonly entries: readonly CommittedEntry[];
}

export type ProtocolMessage =
  | PrePrepare
  | Prepare
  | Commit
  | Checkpoint
  | ViewChange
  | NewView
  | Status
  | Entries;

// ---------------------------------------------------------------------------------------------
// Events (inputs to step)

export type TimerName = "batch" | "view-change" | "status";

export type ReplicaEvent =
  /** First event after createReplica: arms the periodic timers. */
  | { readonly type: "start" }
  /** Replace all state with what was persisted (as after a crash) and start again. Equivalent to
   * createReplica(config, state) followed by start. */
  | { readonly type: "restore"; readonly state: RestoredState }
  | { readonly type: "client-request"; readonly request: ClientRequest }
  /** Several client requests in one step (at most `pendingRequestsMax`): the same as one
   * client-request event each, in order, but the primary decides on a batch once, not per request. */
  | { readonly type: "client-requests"; readonly requests: readonly ClientRequest[] }
  /** Already authenticated by the shell: `from` is the verified signer of `message`. */
  | { readonly type: "message"; readonly from: ReplicaIndex; readonly message: ProtocolMessage }
  | { readonly type: "timer-fired"; readonly timer: TimerName; readonly generation: number }
  | {
    readonly type: "proposal-built";
    readonly height: number;
    readonly view: number;
    readonly payload: Uint8Array;
    readonly blockHash: BlockHashHex;
  }
  | {
    readonly type: "proposal-validated";
    readonly validationId: number;
    readonly height: number;
    readonly view: number;
    readonly blockHash: BlockHashHex;
    readonly ok: boolean;
  };

// ---------------------------------------------------------------------------------------------
// Output (effects of one step)

export type Destination = ReplicaIndex | "all";

export interface OutboundMessage {
  /** "all" means every replica including this one: the shell signs the copy and steps it back in,
   * which is how the core obtains its own signed votes for certificates. */
  readonly to: Destination;
  readonly message: ProtocolMessage;
}

/** Primary only: build a block at `height` on top of `parentBlockHash` from these requests. */
export interface ProposeEffect {
  readonly type: "propose";
  readonly height: number;
  readonly view: number;
  readonly parentBlockHash: BlockHashHex;
  readonly requests: readonly ClientRequest[];
}

/** Check that blockHash = hash(payload), that the block extends parentBlockHash at `height` and
 * holds exactly requestIds; for purpose "proposal" also check its content (e.g. update scores).
 * For "transfer" the block already has a commit certificate: integrity checks suffice. */
export interface ValidateEffect {
  readonly type: "validate";
  readonly validationId: number;
  readonly purpose: "proposal" | "transfer";
  readonly height: number;
  readonly view: number;
  readonly parentBlockHash: BlockHashHex;
  readonly payload: Uint8Array;
  readonly blockHash: BlockHashHex;
  readonly requestIds: readonly RequestId[];
}

export type ApplicationEffect = ProposeEffect | ValidateEffect;

export type TimerEffect =
  | {
    readonly type: "set";
    readonly timer: TimerName;
    readonly generation: number;
    readonly durationMs: number;
  }
  | { readonly type: "cancel"; readonly timer: TimerName };

/** A committed block, delivered once per height in increasing order. */
export interface CommitOutput extends CommittedEntry {
  /** Requests in this block not executed before (the rest are duplicates, executed once). */
  readonly freshRequestIds: readonly RequestId[];
  readonly source: "agreement" | "transfer";
}

export interface Rejection {
  readonly from?: ReplicaIndex;
  readonly what: string;
  readonly reason: string;
}

export interface Output {
  /** Write `persist` and `commits` durably (one transaction) before sending `messages`. */
  readonly persist: ProtocolSnapshot | null;
  readonly commits: CommitOutput[];
  readonly messages: OutboundMessage[];
  readonly application: ApplicationEffect[];
  readonly timers: TimerEffect[];
  readonly rejections: Rejection[];
  readonly logs: string[];
}

// ---------------------------------------------------------------------------------------------
// Persistence

export interface StableCheckpoint {
  readonly height: number;
  readonly blockHash: BlockHashHex;
  readonly proof: readonly Checkpoint[];
}

/** A vote this replica sent in `view`; it never sends a different one for the same view+height. */
export interface SentVote {
  readonly kind: "pre-prepare" | "prepare" | "commit";
  readonly view: number;
  readonly height: number;
  readonly blockHash: BlockHashHex;
}

/** Everything needed after a crash so that the replica never contradicts what it already sent.
 * Committed blocks are not in here: the shell stores them from `commits` (the ledger). */
export interface ProtocolSnapshot {
  readonly view: number;
  readonly viewActive: boolean;
  readonly stable: StableCheckpoint;
  readonly preparedCertificates: readonly PreparedCertificate[];
  readonly votes: readonly SentVote[];
  /** New-view accepted for `view` (or built, if this replica is its primary). */
  readonly newView: NewView | null;
  readonly lastNonceByClient: readonly (readonly [string, number])[];
  /**
   * The last view in which this replica sent a pre-prepare or prepare (absent: none, or a
   * snapshot of a version that persisted every such vote). Only the first of those votes in a
   * view is persisted before it leaves; see RestoredState.abstainThroughView.
   */
  readonly lastVoteView?: number;
}

export interface RestoredState {
  readonly snapshot: ProtocolSnapshot;
  /** The most recent committed entries from the ledger, ascending and contiguous. */
  readonly committedTail: readonly CommittedEntry[];
  /**
   * The replica sends no pre-prepare or prepare in views up to this one (default: the snapshot's
   * lastVoteView, else -1). Only the first such vote in a view is persisted before it leaves, so
   * a replica restarted in a view it voted in may have forgotten later ones: abstaining in that
   * view (it still collects votes, commits and joins view changes) keeps it from contradicting
   * them; from the next view on it votes again.
   */
  readonly abstainThroughView?: number;
}
