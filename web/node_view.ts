// What a node shows to the API: a read model plus a few commands. Every role implements the part
// it has (a device has no ledger, a validator has no detector); a method left out answers 501
// `not_available` with the usual error shape. Methods may be sync or async, so a view backed by
// chain storage can read from disk while the in-memory view answers at once.
import type {
  AdminResult,
  BlockDetail,
  BlockSummary,
  Certificate,
  Detection,
  Device,
  Flow,
  GlobalModelInfo,
  Mode,
  RoundDetail,
  RoundSummary,
  Status,
  Transaction,
  ValidatorsState,
} from "./api_schemas.ts";

export type * from "./api_schemas.ts";

type MaybePromise<T> = T | Promise<T>;

/** Status without what the API fills in itself (version, uptime). */
export type NodeStatus = Omit<Status, "version" | "uptimeSeconds">;

export interface Readiness {
  ready: boolean;
  /** Why not, for the 503 body: e.g. "ledger replay at 120/400". */
  reason?: string;
}

export interface RoundsQuery {
  mode?: Mode;
  /** Newest first after `beforeRound` (exclusive) when given. */
  beforeRound?: number;
  limit: number;
}

export interface BlocksQuery {
  /** Newest first, starting below this height (exclusive) when given. */
  beforeHeight?: number;
  limit: number;
}

export interface CertificatesQuery {
  round?: number;
  limit: number;
}

export interface ModelDownload {
  info: GlobalModelInfo;
  bytes: Uint8Array;
}

export interface StartRoundRequest {
  /** How many rounds to run; the role's configured default when absent. */
  rounds?: number;
}

/** Commands an operator may issue with the admin token. The role decides; the API only relays. */
export interface AdminActions {
  startRound(request: StartRoundRequest): Promise<AdminResult>;
  stopRound(): Promise<AdminResult>;
  quarantine(deviceId: string, reason: string): Promise<AdminResult>;
  readmit(deviceId: string): Promise<AdminResult>;
}

export type NodeEvent =
  | { type: "status"; status: NodeStatus }
  | { type: "round"; round: RoundDetail }
  | { type: "block"; block: BlockSummary }
  | { type: "device"; device: Device }
  | { type: "validator"; validators: ValidatorsState };

export type NodeEventType = NodeEvent["type"];
export const NODE_EVENT_TYPES: readonly NodeEventType[] = [
  "status",
  "round",
  "block",
  "device",
  "validator",
];

export type Unsubscribe = () => void;

export interface NodeView {
  status(): MaybePromise<NodeStatus>;
  ready?(): MaybePromise<Readiness>;

  rounds?(query: RoundsQuery): MaybePromise<RoundSummary[]>;
  round?(round: number, mode: Mode): MaybePromise<RoundDetail | undefined>;

  devices?(): MaybePromise<Device[]>;
  device?(id: string): MaybePromise<Device | undefined>;

  blocks?(query: BlocksQuery): MaybePromise<BlockSummary[]>;
  block?(height: number): MaybePromise<BlockDetail | undefined>;
  transaction?(id: string): MaybePromise<Transaction | undefined>;
  certificates?(query: CertificatesQuery): MaybePromise<Certificate[]>;

  validators?(): MaybePromise<ValidatorsState | undefined>;

  globalModel?(): MaybePromise<ModelDownload | undefined>;
  detect?(flows: Flow[]): Promise<{ modelRound: number | null; results: Detection[] }>;

  admin?: AdminActions;

  /** Live events for SSE. Throw `ViewError("unavailable")` when the subscriber limit is reached. */
  subscribe?(listener: (event: NodeEvent) => void): Unsubscribe;
}

export type ViewErrorCode =
  | "not_found"
  | "conflict"
  | "invalid_input"
  | "unavailable"
  | "not_available";

/**
 * A view method throws this for an expected refusal; the API maps it to 404, 409, 400, 503 or 501.
 * Any other exception is a 500 whose message is not shown to the client.
 */
export class ViewError extends Error {
  constructor(
    readonly code: ViewErrorCode,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
    this.name = "ViewError";
  }
}
