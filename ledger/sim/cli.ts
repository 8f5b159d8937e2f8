// deno task sim --seeds N --seed S  runs N seeds from S (or replays one) and prints a replay
// command and a short trace for every failure.
import process from "node:process";
import { replayCommand, runSimulation, type SimulationResult } from "./simulator.ts";

export interface CliOptions {
  seeds: number;
  seed: number;
  verbose: boolean;
  unsafeQuorumSize?: number;
  stress: boolean;
}

export function parseArgs(args: readonly string[]): CliOptions {
  const options: CliOptions = { seeds: 100, seed: 1, verbose: false, stress: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const next = args[++i];
      const parsed = Number(next);
      if (next === undefined || !Number.isSafeInteger(parsed) || parsed < 0) {
        throw new Error(`${arg} needs a non-negative integer, got ${next}`);
      }
      return parsed;
    };
    if (arg === "--seeds") options.seeds = value();
    else if (arg === "--seed") options.seed = value();
    else if (arg === "--unsafe-quorum") options.unsafeQuorumSize = value();
    else if (arg === "--verbose" || arg === "-v") options.verbose = true;
    else if (arg === "--stress") options.stress = true;
    else if (arg === "--help" || arg === "-h") {
      console.log(
        "usage: deno task sim [--seeds N] [--seed S] [--verbose] [--stress] [--unsafe-quorum Q]\n" +
          "  runs N seeds starting at S; --seeds 1 --seed S replays one seed",
      );
      throw new Error("help");
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (options.seeds < 1 || options.seeds > 1_000_000) throw new Error("--seeds outside [1, 1e6]");
  return options;
}

export function formatFailure(result: SimulationResult, extra = ""): string {
  const failure = result.failure;
  if (!failure) return `ok seed ${result.seed}`;
  return [
    `FAIL seed ${result.seed}: ${failure.kind} at tick ${failure.tick}: ${failure.message}`,
    `  scenario: ${result.description}`,
    `  replay:   ${replayCommand(result.seed, extra)} --verbose`,
    `  trace (last ${result.trace.length} events):`,
    ...result.trace.map((line) => `    ${line}`),
  ].join("\n");
}

function main(args: readonly string[]): number {
  let options: CliOptions;
  try {
    options = parseArgs(args);
  } catch (error) {
    if ((error as Error).message === "help") return 0;
    console.error((error as Error).message);
    return 2;
  }
  const started = performance.now();
  let failures = 0;
  const totals = { commits: 0, viewChanges: 0, forgedRejected: 0, restarts: 0, transfers: 0 };
  const extra = [
    options.unsafeQuorumSize ? `--unsafe-quorum ${options.unsafeQuorumSize}` : "",
    options.stress ? "--stress" : "",
  ].filter(Boolean).join(" ");
  for (let seed = options.seed; seed < options.seed + options.seeds; seed++) {
    const result = runSimulation({
      seed,
      unsafeQuorumSize: options.unsafeQuorumSize,
      overrides: { stress: options.stress },
      traceLinesMax: options.verbose ? 20000 : 30,
      traceRejections: options.verbose,
    });
    totals.commits += result.stats.commits;
    totals.viewChanges += result.stats.viewChanges;
    totals.forgedRejected += result.stats.forgedRejected;
    totals.restarts += result.stats.restarts;
    totals.transfers += result.stats.transfers;
    if (result.failure) {
      failures++;
      console.log(formatFailure(result, extra));
    } else if (options.verbose) {
      console.log(`ok seed ${seed}: ${result.description}`);
      console.log(`  stats: ${JSON.stringify(result.stats)}`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${options.seeds - failures}/${options.seeds} seeds passed in ${seconds.toFixed(1)} s ` +
      `(commits ${totals.commits}, view changes ${totals.viewChanges}, forged rejected ` +
      `${totals.forgedRejected}, restarts ${totals.restarts}, transferred ${totals.transfers})`,
  );
  return failures === 0 ? 0 : 1;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
