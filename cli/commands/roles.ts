// `iomt-sfl edge` and `iomt-sfl device`: one node of a deployment made by `iomt-sfl init`.
import { Command, Option } from "@commander-js/extra-typings";
import { existingPath } from "../options.ts";
import { protectionOf, protectionOptions } from "../protection_flags.ts";
import { UsageError } from "../usage_error.ts";
import { VERSION } from "../program.ts";

export function edgeCommand() {
  return new Command("edge")
    .description(
      "run an edge node: serves split-learning steps to its devices and coordinates rounds",
    )
    .addOption(
      new Option("--node <file>", "node config written by `iomt-sfl init` (nodes/edge-0.json)")
        .argParser(existingPath("file")).makeOptionMandatory(),
    )
    .action(async (options) => {
      const { runEdge } = await import("../../roles/edge/edge_process.ts");
      await withNodeErrors(() => runEdge(options.node, { version: VERSION }));
    });
}

export function deviceCommand() {
  const [clip, noise, epsilon, delta, nopeek] = protectionOptions();
  return new Command("device")
    .description("run a device node: trains the CNN half on its own flow records with its edge")
    .addOption(
      new Option("--node <file>", "node config written by `iomt-sfl init` (nodes/device-0.json)")
        .argParser(existingPath("file")).makeOptionMandatory(),
    )
    .addOption(clip)
    .addOption(noise)
    .addOption(epsilon)
    .addOption(delta)
    .addOption(nopeek)
    .addHelpText(
      "after",
      `
Without protection flags the device applies the trial's protection from its node config.
--epsilon calibrates the noise for the trial's rounds × local epochs.`,
    )
    .action(async (options) => {
      const { runDevice } = await import("../../roles/device/device_process.ts");
      const asked = [options.clip, options.noise, options.epsilon, options.delta, options.nopeek]
        .some((v) => v !== undefined);
      await withNodeErrors(() =>
        runDevice(
          options.node,
          asked ? (training) => protectionOf(options, training) : undefined,
        )
      );
    });
}

/** A config problem (wrong key, bad genesis) is a usage error: exit 2 with its one-line fix. */
async function withNodeErrors(start: () => Promise<void>): Promise<void> {
  const { NodeConfigError } = await import("../../roles/node_config.ts");
  try {
    await start();
  } catch (error) {
    if (error instanceof NodeConfigError) throw new UsageError(error.message);
    throw error;
  }
}
