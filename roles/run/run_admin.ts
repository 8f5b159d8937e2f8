// Admin actions in the UI/API of `iomt-sfl run`: start/stop of rounds go to whoever runs the
// rounds (the edge process over its admin API, or the in-process gate); quarantine and readmit
// are ledger transactions signed with the deployment's admin key.
import type { AdminResult } from "../../web/api_schemas.ts";
import type { AdminActions } from "../../web/node_view.ts";
import { gateAdminActions, type RoundGate } from "../edge/round_gate.ts";
import type { LedgerAdmin } from "../ledger_link/ledger_admin.ts";

const EDGE_ADMIN_TIMEOUT_MS = 10_000;
const NO_LEDGER = "this trial has no ledger (--in-process, or --no-defence): nothing to quarantine";

/** The in-process trial: rounds run in this process behind `gate`; there is no ledger. */
export function inProcessAdmin(gate: RoundGate): AdminActions {
  return gateAdminActions(gate, NO_LEDGER);
}

/** The multi-process trial: the edge at `edgeUrl()` (undefined until it listens) and the
 * validators through `ledger` (null when the trial runs without ledger rounds). */
export function multiProcessAdmin(
  edgeUrl: () => string | undefined,
  adminToken: string,
  ledger: LedgerAdmin | null,
): AdminActions {
  const edge = async (action: "start" | "stop", body?: object): Promise<AdminResult> => {
    const url = edgeUrl();
    if (!url) return { accepted: false, message: "the edge is still starting; try again shortly" };
    const response = await fetch(`${url}/api/v1/admin/rounds/${action}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(EDGE_ADMIN_TIMEOUT_MS),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 202) return answer as AdminResult;
    const message = String(answer?.error?.message ?? `HTTP ${response.status}`);
    if (response.status === 409) return { accepted: false, message };
    throw new Error(`edge admin ${action}: HTTP ${response.status}: ${message}`);
  };
  return {
    startRound: (request) => edge("start", request.rounds === undefined ? {} : request),
    stopRound: () => edge("stop"),
    quarantine: (deviceId, reason) =>
      ledger
        ? ledger.act("quarantine", deviceId, reason)
        : Promise.resolve({ accepted: false, message: NO_LEDGER }),
    readmit: (deviceId) =>
      ledger
        ? ledger.act("readmit", deviceId)
        : Promise.resolve({ accepted: false, message: NO_LEDGER }),
  };
}
