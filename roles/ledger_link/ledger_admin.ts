// The operator's ledger actions: quarantine or readmit a device by a transaction signed with the
// admin key of genesis. The validators apply it at the next round boundary when a round is
// closing (roles/validator/update_app.ts), so the effect shows in the devices table, not here.
import type { Genesis } from "../../ledger/chain/types.ts";
import type { RequestSigner } from "../../net/signed_request.ts";
import type { AdminResult } from "../../web/api_schemas.ts";
import { ValidatorClient } from "../validator/client.ts";

export type LedgerAdminAction = "quarantine" | "readmit";
/** Reasons are stored on the chain; keep them short. */
export const ADMIN_REASON_CHARS_MAX = 200;
const COMMIT_WAIT_MS_DEFAULT = 30_000;

export class LedgerAdmin {
  readonly #client: ValidatorClient;
  readonly #genesis: Genesis;
  readonly #commitWaitMs: number;

  constructor(
    genesis: Genesis,
    key: RequestSigner,
    options: { commitWaitMs?: number; fetch?: typeof fetch } = {},
  ) {
    const admin = genesis.participants.find((p) => p.role === "admin" && p.address === key.address);
    if (!admin) {
      throw new Error(`key ${key.address} is not an admin in genesis ${genesis.chain_id}`);
    }
    this.#genesis = genesis;
    this.#client = new ValidatorClient({ genesis, signer: key, fetch: options.fetch });
    this.#commitWaitMs = options.commitWaitMs ?? COMMIT_WAIT_MS_DEFAULT;
  }

  /** Submits the transaction and waits until it is committed; refusals are `accepted: false`. */
  async act(action: LedgerAdminAction, deviceId: string, reason = ""): Promise<AdminResult> {
    const device = this.#genesis.participants.find((p) => p.id === deviceId);
    if (!device || device.role !== "device") {
      return { accepted: false, message: `${deviceId} is not a device in genesis` };
    }
    if (reason.length > ADMIN_REASON_CHARS_MAX) {
      return {
        accepted: false,
        message: `reason longer than ${ADMIN_REASON_CHARS_MAX} characters`,
      };
    }
    const submitted = await this.#client.submit(action, {
      target: device.address,
      reason: reason || `${action} by the operator`,
    });
    const committed = await this.#client.waitForTx(submitted.id, this.#commitWaitMs);
    return {
      accepted: true,
      message: `${action} of ${deviceId} committed at height ${committed.height} ` +
        `(applied at the next round boundary if a round is closing)`,
    };
  }
}
