// `iomt-sfl run`: a whole local trial on loopback with the paper's table at the end.
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  commaList,
  existingPath,
  intInRange,
  listenAddress,
  numberInRange,
  oneOf,
} from "../options.ts";
import { UsageError } from "../usage_error.ts";
import { protectionOf, protectionOptions } from "../protection_flags.ts";

const MODES = ["splitfed", "splitfed-v2", "fedavg"] as const;
const ATTACKS = ["label-flip", "sign-flip", "scale", "gaussian", "free-rider", "sybil"] as const;
const PARTITIONS = ["iid", "dirichlet", "quantity"] as const;

const EXPERIMENTS = ["attacks", "privacy"] as const;

export function runCommand() {
  const [clip, noise, epsilon, delta, nopeek] = protectionOptions();
  return new Command("run")
    .description(
      "run a whole local trial: devices, edge and validators on loopback, training rounds, then the " +
        "per-round table (accuracy, precision, recall, F1, FPR) and report.json + report.html",
    )
    .addOption(
      new Option("--data <file>", "flow data (CSV/Zeek; default: the embedded synthetic IoMT set)")
        .argParser(existingPath("any")),
    )
    .addOption(new Option("--format <format>", "data format (default: detected from the header)"))
    .addOption(
      new Option("--label-mode <mode>", "binary (normal/attack) or multiclass").argParser(
        oneOf(["binary", "multiclass"] as const),
      ).default("binary" as const),
    )
    .addOption(
      new Option("--synthetic-rows <n>", "rows of embedded synthetic data").argParser(
        intInRange(500, 2_000_000),
      ).default(12_000),
    )
    .addOption(new Option("--devices <n>", "devices").argParser(intInRange(1, 200)).default(10))
    .addOption(
      new Option("--rounds <n>", "training rounds").argParser(intInRange(1, 1000)).default(5),
    )
    .addOption(
      new Option("--epochs <n>", "local epochs per round").argParser(intInRange(1, 100)).default(1),
    )
    .addOption(
      new Option("--batch-size <n>", "rows per split step").argParser(intInRange(1, 4096)).default(
        64,
      ),
    )
    .addOption(
      new Option("--learning-rate <x>", "Adam learning rate").argParser(
        numberInRange(0, 1, { exclusiveMin: true }),
      ).default(0.003),
    )
    .addOption(
      new Option("--mode <mode>", `training mode: ${MODES.join(", ")}`).argParser(oneOf(MODES))
        .default("splitfed" as const),
    )
    .addOption(
      new Option("--compare", "also train the FedAvg baseline and show both side by side").default(
        false,
      ),
    )
    .addOption(
      new Option("--in-process", "all roles in this one process (fast; no sockets)").default(false),
    )
    .addOption(
      new Option(
        "--partition <kind>",
        `how training rows are spread over devices: ${PARTITIONS.join(", ")}`,
      ).argParser(oneOf(PARTITIONS)).default("iid" as const),
    )
    .addOption(
      new Option("--alpha <x>", "Dirichlet / quantity skew concentration (smaller = more skewed)")
        .argParser(numberInRange(0, 1000, { exclusiveMin: true })),
    )
    .addOption(
      new Option(
        "--min-devices <n>",
        "a round completes at its timeout with at least this many devices (default: 60% of devices)",
      ).argParser(intInRange(1, 200)),
    )
    .addOption(
      new Option("--round-timeout <seconds>", "bound on one round").argParser(intInRange(5, 86_400))
        .default(600),
    )
    .addOption(
      new Option("--seed <n>", "seed of data, partition, initialisation and batch order").argParser(
        intInRange(0, 2 ** 31 - 1),
      ).default(0),
    )
    .addOption(
      new Option(
        "--out <dir>",
        "where reports, logs and the deployment go (default: ./iomt-runs/<time>)",
      ),
    )
    .addOption(
      new Option("--listen <host:port>", "web UI address").argParser(listenAddress).default({
        hostname: "127.0.0.1",
        port: 0,
      }),
    )
    .addOption(
      new Option("--validators <n>", "validator processes, n = 3f + 1 (1, 4, 7, ...)").argParser(
        intInRange(1, 31),
      ).default(4),
    )
    .addOption(
      new Option("--attack <kind>", `simulated attackers: ${ATTACKS.join(", ")}`).argParser(
        oneOf(ATTACKS),
      ),
    )
    .addOption(
      new Option("--malicious <fraction>", "share of devices that attack (with --attack)")
        .argParser(numberInRange(0, 1)).default(0.3),
    )
    .addOption(
      new Option(
        "--no-defence",
        "plain FedAvg at the edge: validators do not filter updates (the undefended baseline)",
      ),
    )
    .addOption(
      new Option(
        "--hosts <list>",
        "loopback addresses the validators and edge listen on, round robin (e.g. 127.0.0.2,127.0.0.3)",
      ).argParser(commaList).default(["127.0.0.1"]),
    )
    .addOption(
      new Option(
        "--experiment <name>",
        "attacks: clean vs 30 % label-flip and sign-flip, with and without the validators' defence; " +
          "privacy: unprotected vs clip + noise levels vs NoPeek, F1/AUC beside what a curious edge " +
          "reconstructs from the activations it received (use with --in-process)",
      ).argParser(oneOf(EXPERIMENTS)),
    )
    .addOption(clip)
    .addOption(noise)
    .addOption(epsilon)
    .addOption(delta)
    .addOption(nopeek)
    .addOption(
      new Option(
        "--byzantine-validators <k>",
        "simulated Byzantine validators (k ≤ f): they forge signatures or stay silent",
      ).argParser(intInRange(0, 10)).default(0),
    )
    .addOption(
      new Option("--keep-ui", "after the trial, keep serving the web UI until Ctrl-C").default(
        false,
      ),
    )
    .addOption(
      new Option(
        "--read-token <token>",
        "token the web UI and API need for read-only views; default: public on this address",
      ).argParser(adminToken),
    )
    .addOption(
      new Option(
        "--admin-token <token>",
        "token for the UI's admin actions (stop/start rounds, quarantine); default: a random " +
          "one, printed at start",
      ).argParser(adminToken),
    )
    .addOption(
      new Option(
        "--model <key=value,...>",
        "model shape overrides, e.g. lstmUnits=32,convFilters=16",
      ).argParser(commaList),
    )
    .addHelpText(
      "after",
      `
Examples:
  $ iomt-sfl run                                  # embedded synthetic data, 10 devices, 5 rounds
  $ iomt-sfl run --compare --rounds 10            # SplitFed and FedAvg side by side
  $ iomt-sfl run --data wustl-ehms-2020.csv --devices 10 --in-process
  $ iomt-sfl run --clip 1 --noise 0.1 --nopeek 0.1  # protect the activations devices send
  $ iomt-sfl run --epsilon 50 --delta 1e-5        # noise calibrated for rounds × epochs
  $ iomt-sfl run --experiment privacy --in-process --rounds 3`,
    )
    .action(async (options, command) => {
      const globals = command.optsWithGlobals() as unknown as { logLevel: string };
      if (options.format && !options.data) throw new UsageError("--format needs --data");
      if ((options.validators - 1) % 3 !== 0) {
        throw new UsageError(
          `--validators ${options.validators}: PBFT needs n = 3f + 1 (1, 4, 7, 10, ...)`,
        );
      }
      const minDevices = options.minDevices ?? Math.max(1, Math.ceil(options.devices * 0.6));
      if (minDevices > options.devices) {
        throw new UsageError(
          `--min-devices ${minDevices} is more than --devices ${options.devices}`,
        );
      }
      if (options.alpha !== undefined && options.partition === "iid") {
        throw new UsageError("--alpha needs --partition dirichlet or quantity");
      }
      const model = parseModelOverrides(options.model ?? []);
      const outDir = resolve(
        options.out ??
          join("iomt-runs", new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)),
      );
      if (existsSync(outDir)) {
        throw new UsageError(`--out ${outDir} already exists; choose a new directory`);
      }
      for (const host of options.hosts) {
        if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
          throw new UsageError(
            `--hosts: ${host} is not a loopback address (127.x.y.z); a local trial stays on this machine`,
          );
        }
      }
      if (
        options.experiment === "attacks" && (options.inProcess || options.compare || options.attack)
      ) {
        throw new UsageError(
          "--experiment attacks runs its own trials with validators: drop --in-process, --compare and --attack",
        );
      }
      // The privacy experiment trains one trial per setting: 3 rounds unless --rounds says so.
      const rounds = options.experiment === "privacy" &&
          command.getOptionValueSource("rounds") === "default"
        ? 3
        : options.rounds;
      const protection = protectionOf(options, { rounds, localEpochs: options.epochs });
      if (options.experiment === "privacy") {
        if (protection || options.compare || options.attack) {
          throw new UsageError(
            "--experiment privacy runs its own protection settings: drop --clip/--noise/--epsilon/--delta/--nopeek, --compare and --attack",
          );
        }
        if (!options.inProcess) {
          throw new UsageError(
            "--experiment privacy captures what the edge receives in one process: add --in-process",
          );
        }
        if (options.mode === "fedavg") {
          throw new UsageError(
            "--experiment privacy measures split activations: drop --mode fedavg",
          );
        }
      }
      if (protection && options.mode === "fedavg" && !options.compare) {
        throw new UsageError(
          "--clip/--noise/--epsilon/--nopeek protect the activations of split learning; --mode fedavg sends none",
        );
      }
      const f = Math.floor((options.validators - 1) / 3);
      if (options.byzantineValidators > f) {
        throw new UsageError(
          `--byzantine-validators ${options.byzantineValidators}: at most f = ${f} with ${options.validators} validators`,
        );
      }
      if (options.byzantineValidators > 0 && options.inProcess) {
        throw new UsageError("--byzantine-validators needs validator processes: drop --in-process");
      }
      if (options.attack && options.inProcess) {
        throw new UsageError("--attack needs the validators: drop --in-process");
      }
      const { executeRun } = await import("../../roles/run/execute.ts");
      const { planAttack } = await import("../../roles/attack_plan.ts");
      const deviceIds = Array.from({ length: options.devices }, (_, d) => `device-${d}`);
      const attack = options.attack
        ? planAttack(options.attack, options.malicious, deviceIds, options.seed)
        : undefined;
      mkdirSync(outDir, { recursive: true });
      await executeRun({
        trial: {
          data: options.data
            ? { path: resolve(options.data), format: options.format }
            : { synthetic: { rows: options.syntheticRows, seed: options.seed } },
          labelMode: options.labelMode,
          seed: options.seed,
          devices: options.devices,
          partition: options.partition,
          dirichletAlpha: options.alpha,
          mode: options.mode === "splitfed" ? "splitfed-v1" : options.mode,
          rounds,
          localEpochs: options.epochs,
          batchSize: options.batchSize,
          learningRate: options.learningRate,
          model,
          minDevices,
          roundTimeoutMs: options.roundTimeout * 1000,
          attack,
          defence: options.defence,
          ...(protection ? { protection } : {}),
        },
        compare: options.compare,
        inProcess: options.inProcess,
        outDir,
        listen: options.listen,
        logLevel: globals.logLevel,
        keepUi: options.keepUi,
        ...(options.adminToken ? { adminToken: options.adminToken } : {}),
        ...(options.readToken ? { readToken: options.readToken } : {}),
        hosts: [...options.hosts],
        experiment: options.experiment,
        byzantineValidators: options.byzantineValidators,
        validators: options.validators,
      });
    });
}

const MODEL_KEYS = [
  "convFilters",
  "convKernelSize",
  "convLayers",
  "lstmUnits",
  "denseUnits",
  "bidirectional",
] as const;

function parseModelOverrides(items: string[]): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const item of items) {
    const [key, value] = item.split("=");
    if (!(MODEL_KEYS as readonly string[]).includes(key) || value === undefined) {
      throw new UsageError(
        `--model: expected key=value with key one of ${MODEL_KEYS.join(", ")}; got "${item}"`,
      );
    }
    if (key === "bidirectional") {
      if (value !== "true" && value !== "false") {
        throw new UsageError("--model bidirectional=true|false");
      }
      out[key] = value === "true";
    } else {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 4096) {
        throw new UsageError(`--model ${key}: expected an integer 1..4096`);
      }
      out[key] = n;
    }
  }
  return out;
}

/** Admin tokens are bearer secrets: long enough not to be guessed, printable, no spaces. */
function adminToken(value: string): string {
  if (!/^[A-Za-z0-9._~+\/-]{16,256}$/.test(value)) {
    throw new InvalidArgumentError("expected 16-256 characters of A-Z a-z 0-9 . _ ~ + / -");
  }
  return value;
}
