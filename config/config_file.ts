// Configuration precedence, lowest to highest: built-in defaults < config file (--config) <
// environment (IOMT_SFL_*) < command-line flags. commander already ranks "env" above "config"
// and "cli" above both; this module adds the config-file layer and the environment names.
import type { Command, Option } from "@commander-js/extra-typings";
import { readFileSync } from "node:fs";
import { UsageError } from "../cli/usage_error.ts";

export const ENV_PREFIX = "IOMT_SFL_";
/** Config files are small, human-written JSON; a larger one is a mistake. */
export const CONFIG_FILE_BYTES_MAX = 1024 * 1024;

type AnyCommand = Command<unknown[], Record<string, unknown>, Record<string, unknown>>;
type AnyOption = Option<string, undefined, undefined, unknown, false, undefined>;

/** `--log-level` → `IOMT_SFL_LOG_LEVEL`. */
export function envNameForFlag(longFlag: string): string {
  return ENV_PREFIX + longFlag.replace(/^--/, "").replace(/-/g, "_").toUpperCase();
}

/**
 * Gives every long option of every command an IOMT_SFL_* environment variable. commander wires
 * an option's environment listener when the option is added, so each option is re-added here.
 */
export function attachEnvironmentNames(command: AnyCommand): void {
  const options = [...(command.options as readonly AnyOption[])];
  const needsEnv = (option: AnyOption) =>
    option.long && !option.envVar && !option.negate && option.long !== "--version" &&
    option.long !== "--help";
  if (options.some(needsEnv)) {
    (command.options as AnyOption[]).length = 0;
    // Command extends EventEmitter at run time; the typings do not say so.
    const emitter = command as unknown as { removeAllListeners(event: string): void };
    for (const option of options) {
      if (!needsEnv(option)) {
        // keeps its own listeners (--version has a special one)
        (command.options as AnyOption[]).push(option);
        continue;
      }
      option.env(envNameForFlag(option.long!));
      emitter.removeAllListeners(`option:${option.name()}`);
      emitter.removeAllListeners(`optionEnv:${option.name()}`);
      command.addOption(option as never);
    }
  }
  for (const sub of command.commands as readonly AnyCommand[]) attachEnvironmentNames(sub);
}

export type ConfigObject = Record<string, unknown>;

/** Reads and parses a JSON config file; every problem is a UsageError naming the file. */
export function readConfigFile(path: string): ConfigObject {
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > CONFIG_FILE_BYTES_MAX) {
      throw new UsageError(`--config ${path}: file is larger than ${CONFIG_FILE_BYTES_MAX} bytes`);
    }
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--config ${path}: cannot read file (${(error as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config ${path}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--config ${path}: expected a JSON object`);
  }
  return parsed as ConfigObject;
}

/**
 * Applies config values to `command`'s options where neither a flag nor the environment set
 * them. Keys are the long flag names without dashes ("data-dir"); an object value under a
 * subcommand's name configures that subcommand. Unknown keys are usage errors.
 */
export function applyConfig(
  config: ConfigObject,
  root: AnyCommand,
  action: AnyCommand,
  configPath: string,
): void {
  const chain: AnyCommand[] = [];
  for (let c: AnyCommand | null = action; c; c = c.parent as AnyCommand | null) chain.unshift(c);
  if (chain[0] !== root) throw new Error("applyConfig: action is not below root");

  let section: ConfigObject = config;
  let sectionName = "top level";
  for (let depth = 0; depth < chain.length; depth++) {
    const command = chain[depth];
    const child = chain[depth + 1];
    const optionsByKey = new Map<string, AnyOption>();
    for (const option of command.options as readonly AnyOption[]) {
      if (option.long) optionsByKey.set(option.long.replace(/^--/, ""), option);
    }
    const subcommandNames = new Set(
      (command.commands as readonly AnyCommand[]).map((c) => c.name()),
    );
    let next: ConfigObject | undefined;
    for (const [key, value] of Object.entries(section)) {
      const option = optionsByKey.get(key);
      if (option) {
        setFromConfig(command, option, value, `${configPath} (${sectionName}) "${key}"`);
        continue;
      }
      if (subcommandNames.has(key)) {
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          throw new UsageError(`--config ${configPath}: "${key}" must be an object of options`);
        }
        if (child && child.name() === key) next = value as ConfigObject;
        continue;
      }
      const known = [...optionsByKey.keys(), ...subcommandNames].join(", ");
      throw new UsageError(
        `--config ${configPath}: unknown key "${key}" in ${sectionName}; known keys: ${known}`,
      );
    }
    if (!child) break;
    section = next ?? {};
    sectionName = `"${child.name()}"`;
  }
}

function setFromConfig(command: AnyCommand, option: AnyOption, value: unknown, where: string) {
  const key = option.attributeName();
  const source = command.getOptionValueSource(key as never);
  if (source === "cli" || source === "env") return;
  let parsed: unknown;
  if (option.isBoolean()) {
    if (typeof value !== "boolean") throw new UsageError(`${where}: expected true or false`);
    parsed = value;
  } else {
    if (typeof value !== "string" && typeof value !== "number") {
      throw new UsageError(`${where}: expected a string or a number`);
    }
    try {
      parsed = option.parseArg ? option.parseArg(String(value), undefined) : String(value);
    } catch (error) {
      throw new UsageError(`${where}: ${(error as Error).message}`);
    }
  }
  command.setOptionValueWithSource(key as never, parsed as never, "config");
}
