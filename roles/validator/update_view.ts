// The web API's device list on a validator, from its UpdateApp (live ledger state: reputation,
// credits, status, counts). Merged into the validator's NodeView by createValidatorApp.
import type { Device, NodeView } from "../../web/node_view.ts";
import type { UpdateApp } from "./update_app.ts";
import { webDevice } from "./update_summary.ts";

export function updateView(
  app: UpdateApp,
  genesisTimeMs: number,
): Pick<NodeView, "devices" | "device"> {
  const list = (): Device[] => {
    const timeOf = new Map(app.rounds.map((r) => [r.round, r.timeMs]));
    return app.devices().map((d) =>
      webDevice(
        d,
        new Date(
          d.lastSeenRound === null ? genesisTimeMs : timeOf.get(d.lastSeenRound) ?? genesisTimeMs,
        ).toISOString(),
      )
    );
  };
  return {
    devices: list,
    device: (id: string) => list().find((d) => d.id === id),
  };
}
