// `iomt-sfl init`: write a deployment (genesis, keys, node configs, start commands).
import { Command, Option } from "@commander-js/extra-typings";
import { resolve } from "node:path";
import { commaList, intInRange, oneOf } from "../options.ts";
import { UsageError } from "../usage_error.ts";

const MODES = ["splitfed", "fedavg"] as const;

export function initCommand() {
  return new Command("init")
    .description(
      "write a deployment: genesis.json, one key file (mode 0600) and one config per node, and the " +
        "command that starts each node (START.txt)",
    )
    .addOption(new Option("--devices <n>", "devices").argParser(intInRange(1, 1000)).default(10))
    .addOption(new Option("--edges <n>", "edge servers").argParser(intInRange(1, 16)).default(1))
    .addOption(
      new Option("--validators <n>", "validators, n = 3f + 1 (1, 4, 7, ...)").argParser(
        intInRange(1, 100),
      ).default(4),
    )
    .addOption(
      new Option("--hosts <list>", "hosts the validators and edges run on, round robin").argParser(
        commaList,
      ).default(["127.0.0.1"]),
    )
    .addOption(
      new Option("--validator-port <n>", "first validator port").argParser(intInRange(1, 65_000))
        .default(7100),
    )
    .addOption(
      new Option("--edge-port <n>", "first edge port").argParser(intInRange(1, 65_000)).default(
        7200,
      ),
    )
    .addOption(new Option("--chain-id <id>", "chain id").default("iomt-sfl"))
    .addOption(
      new Option("--mode <mode>", "training mode").argParser(oneOf(MODES)).default(
        "splitfed" as const,
      ),
    )
    .addOption(
      new Option("--rounds <n>", "rounds the edge runs").argParser(intInRange(1, 10_000)).default(
        5,
      ),
    )
    .addOption(new Option("--seed <n>", "seed").argParser(intInRange(0, 2 ** 31 - 1)).default(0))
    .requiredOption("--out <dir>", "new directory for the deployment")
    .addHelpText(
      "after",
      `
Examples:
  $ iomt-sfl init --devices 10 --edges 1 --validators 4 --out site-a
  $ iomt-sfl init --devices 20 --validators 7 --hosts 10.0.0.11,10.0.0.12,10.0.0.13 --out ward-3`,
    )
    .action(async (options) => {
      if ((options.validators - 1) % 3 !== 0) {
        throw new UsageError(
          `--validators ${options.validators}: PBFT needs n = 3f + 1 (1, 4, 7, 10, ...)`,
        );
      }
      for (const host of options.hosts) {
        if (!/^[A-Za-z0-9.-]{1,253}$/.test(host)) {
          throw new UsageError(`--hosts: "${host}" is not a host name or IPv4 address`);
        }
      }
      const { writeDeployment } = await import("../../roles/deployment.ts");
      const { DEFAULT_SYNTHETIC_ROWS } = await import("../../roles/trial_spec.ts");
      const deployment = await writeDeployment({
        outDir: resolve(options.out),
        chainId: options.chainId,
        devices: options.devices,
        edges: options.edges,
        validators: options.validators,
        hosts: [...options.hosts],
        validatorBasePort: options.validatorPort,
        edgeBasePort: options.edgePort,
        adminToken: crypto.randomUUID().replace(/-/g, ""),
        trial: {
          data: { synthetic: { rows: DEFAULT_SYNTHETIC_ROWS, seed: options.seed } },
          labelMode: "binary",
          seed: options.seed,
          devices: options.devices,
          partition: "iid",
          mode: options.mode === "splitfed" ? "splitfed-v1" : "fedavg",
          rounds: options.rounds,
          localEpochs: 1,
          batchSize: 64,
          learningRate: 0.003,
          minDevices: Math.max(1, Math.ceil(options.devices * 0.6)),
          roundTimeoutMs: 600_000,
        },
      }).catch((error: Error) => {
        throw new UsageError(error.message);
      });
      console.log(
        `wrote ${deployment.dir}: genesis.json, ${deployment.nodes.length} node configs and keys`,
      );
      console.log("start each node (validators first):");
      for (const command of deployment.commands) console.log(`  ${command}`);
    });
}
