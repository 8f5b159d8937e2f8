// `iomt-sfl device`: one device of a trial. Reads only its own partition of the data, trains the
// CNN half with the edge, and never sends a raw row anywhere.
import process from "node:process";
import { onSignal } from "../../runtime/adapter.ts";
import { globalFetcher } from "../../net/http_client.ts";
import { logger } from "../../util/log.ts";
import { emitEvent } from "../events.ts";
import { startTensorflow } from "../ml_runtime.ts";
import { loadNode, modelConfigFor, NodeConfigError } from "../node_config.ts";
import { exitWhenParentDies } from "../supervisor.ts";
import { loadTrialData } from "../trial_data.ts";
import { DeviceNode } from "./device_node.ts";
import { flipLabels, poisonFor } from "../attack_plan.ts";
import { deviceLedgerLink } from "../ledger_link/wiring.ts";
import {
  describeProtection,
  type ProtectionSettings,
  validateProtectionSettings,
} from "../../ml/privacy/settings.ts";

/** `protectionOverride`: from the command line (`iomt-sfl device --clip ...`), replacing the
 * trial's; a function because --epsilon is calibrated for the trial's rounds × epochs. */
export async function runDevice(
  nodePath: string,
  protectionOverride?: (
    training: { rounds: number; localEpochs: number },
  ) => ProtectionSettings | null,
): Promise<void> {
  exitWhenParentDies();
  const node = await loadNode(nodePath, "device");
  const { config, chain, key } = node;
  const protection = protectionOverride?.(config.trial) ?? config.trial.protection;
  if (protection) {
    try {
      validateProtectionSettings(protection);
    } catch (error) {
      throw new NodeConfigError(`${nodePath}: trial.protection: ${(error as Error).message}`);
    }
  }
  if (!config.edge_url) throw new NodeConfigError(`${config.id}: no edge_url in ${nodePath}`);
  if (config.device_index === undefined) {
    throw new NodeConfigError(`${config.id}: no device_index in ${nodePath}`);
  }
  const log = logger(`device/${config.id}`);
  await startTensorflow();
  const data = await loadTrialData(config, nodePath);
  const attack = config.trial.attack;
  const malicious = attack?.malicious.includes(config.id) ?? false;
  const honestPartition = data.devices[config.device_index];
  if (!honestPartition) {
    throw new NodeConfigError(
      `${config.id}: device_index ${config.device_index} but the trial has ${data.devices.length} devices`,
    );
  }
  const mine = malicious && attack?.kind === "label-flip"
    ? flipLabels(honestPartition)
    : honestPartition;
  if (malicious) logger(`device/${config.id}`).warn(`simulated attacker: ${attack!.kind}`);
  const trial = config.trial;
  const model = modelConfigFor(
    trial,
    mine.featureNames.length,
    trial.labelMode === "binary" ? 2 : mine.classNames.length,
  );
  log.info(`holding ${mine.rows} flow records locally; edge ${config.edge_url}`);
  if (protection) {
    log.info(`activation protection: ${describeProtection(protection)}`, {
      ...(protection.targetEpsilon ? { targetEpsilon: protection.targetEpsilon } : {}),
      delta: protection.delta,
    });
  }

  // With ledger rounds on: submit updates to the validators, train only from certified models.
  const ledger = deviceLedgerLink(chain.genesis, key);
  const device = new DeviceNode({
    id: config.id,
    chainId: chain.chainId,
    signer: { address: key.address, privateKey: key.privateKey },
    edgeUrl: config.edge_url,
    fetcher: globalFetcher,
    config: model,
    data: mine,
    protection,
    onUpdate: ledger?.onUpdate,
    poison: malicious && attack ? poisonFor(attack, config.device_index) : undefined,
    checkModel: ledger?.checkModel,
    onRoundDone: (round, steps, seconds, timing) =>
      emitEvent({ event: "device-round", id: config.id, round, steps, seconds, timing }),
  });
  const controller = new AbortController();
  const stop = () => controller.abort();
  onSignal("SIGINT", stop);
  onSignal("SIGTERM", stop);
  emitEvent({ event: "ready", role: "device", id: config.id });
  await device.loop(controller.signal);
  log.info("stopped");
  process.exit(0);
}
