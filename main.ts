#!/usr/bin/env -S deno run --allow-all
// iomt-sfl command-line entry point: parse, run one command, exit 0 ok / 1 failure / 2 usage.
import { CommanderError } from "@commander-js/extra-typings";
import process from "node:process";
import { buildProgram, type CommandFactory } from "./cli/program.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./cli/usage_error.ts";
import { dataCommand } from "./cli/commands/data.ts";
import { detectCommand } from "./cli/commands/detect.ts";
import { keysCommand } from "./cli/commands/keys.ts";
import { ledgerCommand } from "./cli/commands/ledger.ts";
import { runCommand } from "./cli/commands/run.ts";
import { initCommand } from "./cli/commands/init.ts";
import { deviceCommand, edgeCommand } from "./cli/commands/roles.ts";
import { validatorCommand } from "./cli/commands/validator.ts";
import { privacyCommand } from "./cli/commands/privacy.ts";

/** In the order `--help` lists them. */
const COMMANDS: readonly CommandFactory[] = [
  runCommand,
  edgeCommand,
  deviceCommand,
  dataCommand,
  detectCommand,
  ledgerCommand,
  initCommand,
  keysCommand,
  validatorCommand,
  privacyCommand,
] as unknown as CommandFactory[];

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram(COMMANDS);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and --version end parsing through an exception with exit code 0
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`error: ${error.message}\n`);
      return EXIT_USAGE;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    if (process.env.IOMT_SFL_DEBUG && error instanceof Error && error.stack) {
      process.stderr.write(error.stack + "\n");
    }
    return EXIT_FAILURE;
  }
}

if (import.meta.main) {
  // No top-level await: the compiled binary is CommonJS bytecode (fast start).
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
