// One call per role process to join update consensus. Opt-in through genesis
// (`params.ext.ledger_rounds: true`, with validator endpoints), so a deployment without validators
// or not ready for them keeps plain FedAvg at the edge.
import type { Genesis } from "../../ledger/chain/types.ts";
import type { RequestSigner } from "../../net/signed_request.ts";
import { ValidatorClient } from "../validator/client.ts";
import { LedgerAggregator } from "./ledger_aggregator.ts";
import { UpdateSubmitter } from "./update_submitter.ts";

export function ledgerRoundsEnabled(genesis: Genesis): boolean {
  return genesis.params.ext?.ledger_rounds === true &&
    genesis.validators.some((v) => v.endpoint !== undefined);
}

/** The edge's link, or null when ledger rounds are off. `deviceIds[i]` is the genesis id of the
 * edge's device index i. The ledger has one round sequence, so exactly one edge coordinates. */
export function edgeLedgerLink(
  genesis: Genesis,
  signer: RequestSigner,
  deviceIds: readonly string[],
  edgeCount = 1,
): LedgerAggregator | null {
  if (!ledgerRoundsEnabled(genesis)) return null;
  if (edgeCount !== 1) {
    throw new Error(`ledger rounds need exactly one coordinating edge; genesis has ${edgeCount}`);
  }
  return new LedgerAggregator({ client: new ValidatorClient({ genesis, signer }), deviceIds });
}

/** A device's link (DeviceNode `onUpdate` and `checkModel`), or null when ledger rounds are off. */
export function deviceLedgerLink(genesis: Genesis, signer: RequestSigner): UpdateSubmitter | null {
  if (!ledgerRoundsEnabled(genesis)) return null;
  return new UpdateSubmitter({ client: new ValidatorClient({ genesis, signer }) });
}
