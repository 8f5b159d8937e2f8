// Builds the iomt-sfl command tree. Each command lives in cli/commands/<name>.ts and keeps its
// heavy imports (tfjs, libSQL) inside its action, so that `--help` starts fast.
import { Command, Option } from "@commander-js/extra-typings";
import packageJson from "../package.json" with { type: "json" };
import { applyConfig, attachEnvironmentNames, readConfigFile } from "../config/config_file.ts";
import { configureLogging, LOG_LEVELS, type LogLevel } from "../util/log.ts";
import { oneOf } from "./options.ts";

export const VERSION: string = packageJson.version;

const EXAMPLES = `
Examples:
  $ iomt-sfl --version
  $ iomt-sfl --log-level debug --help

Configuration: flags override IOMT_SFL_* environment variables (shown beside each option),
which override the JSON file given with --config, which overrides built-in defaults.
Exit codes: 0 ok, 1 failure, 2 usage error.`;

export interface GlobalOptions {
  config?: string;
  dataDir: string;
  logLevel: LogLevel;
  logJson: boolean;
}

/** Subcommand factories, in the order `--help` lists them. */
export type CommandFactory = () => Command<
  unknown[],
  Record<string, unknown>,
  Record<string, unknown>
>;

export function buildProgram(commands: readonly CommandFactory[]) {
  const program = new Command("iomt-sfl")
    .description(
      "Split federated intrusion detection for Internet of Medical Things networks: devices " +
        "train a small CNN on their own flow records, an edge trains the BiLSTM, and PBFT " +
        "validators agree on honest model updates in a hash-chained ledger.",
    )
    .version(VERSION, "-V, --version", "print the version and exit")
    .addOption(new Option("--config <file>", "JSON configuration file"))
    .addOption(
      new Option("--data-dir <dir>", "where nodes keep databases, models and reports").default(
        "./iomt-data",
      ),
    )
    .addOption(
      new Option("--log-level <level>", `log verbosity: ${LOG_LEVELS.join(", ")}`)
        .argParser(oneOf(LOG_LEVELS))
        .default("info" as LogLevel),
    )
    .addOption(new Option("--log-json", "log JSON lines to stderr instead of text").default(false))
    .addHelpText("after", EXAMPLES)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });

  for (const factory of commands) {
    const command = factory();
    program.addCommand(command);
  }
  inheritSettings(program);
  attachEnvironmentNames(program as never);

  // `iomt-sfl` alone: show the help on stderr and exit 2, like any other usage error.
  program.action(() => program.help({ error: true }));

  program.hook("preAction", (root, action) => {
    const globals = root.opts() as GlobalOptions;
    if (globals.config) {
      applyConfig(readConfigFile(globals.config), root as never, action as never, globals.config);
    }
    const resolved = root.opts() as GlobalOptions;
    configureLogging({ level: resolved.logLevel, json: resolved.logJson });
  });
  return program;
}

/** commander copies exitOverride/output settings only to commands made with `.command()`. */
function inheritSettings(
  parent: Command<unknown[], Record<string, unknown>, Record<string, unknown>>,
) {
  for (
    const child of parent.commands as Command<
      unknown[],
      Record<string, unknown>,
      Record<string, unknown>
    >[]
  ) {
    child.copyInheritedSettings(parent);
    inheritSettings(child);
  }
}

/** The global options as resolved for any command (walks up to the root). */
export function globalOptions(
  command: { optsWithGlobals(): Record<string, unknown> },
): GlobalOptions {
  return command.optsWithGlobals() as unknown as GlobalOptions;
}
