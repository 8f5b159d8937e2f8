// `iomt-sfl validator`: run one PBFT validator of a ledger (roles/validator). Heavy imports
// (libSQL, hono, the PBFT core) load inside the action so that `--help` stays fast.
import { Command, Option } from "@commander-js/extra-typings";
import { readFileSync } from "node:fs";
import process from "node:process";
import { existingPath, listenAddress, oneOf } from "../options.ts";
import { UsageError } from "../usage_error.ts";
import type { UpdateEvaluator } from "../../roles/validator/update_app.ts";

const GENESIS_BYTES_MAX = 64 * 1024 * 1024;

export function validatorCommand(): Command {
  return new Command("validator")
    .description(
      "run one PBFT validator: orders signed transactions into blocks with its peers from genesis, " +
        "stores the certified chain, serves blobs, the ledger API and the web UI",
    )
    .requiredOption(
      "--genesis <file>",
      "genesis JSON file (validators with their endpoints)",
      existingPath("file"),
    )
    .requiredOption(
      "--key <file>",
      "this validator's key file (iomt-sfl keys gen --role validator)",
      existingPath("file"),
    )
    .option(
      "--db <path|url>",
      "ledger database: a file path or a libsql:// URL (default: <data-dir>/<id>/ledger.db)",
    )
    .addOption(
      new Option(
        "--listen <host:port>",
        "address to serve on (default: the host:port of this validator's genesis endpoint)",
      )
        .argParser(listenAddress),
    )
    .addOption(
      new Option(
        "--byzantine <behaviour>",
        "simulation only (run --byzantine-validators): silent (sends nothing) or forge (bad signatures)",
      ).argParser(oneOf(["silent", "forge"] as const)),
    )
    .addOption(
      new Option(
        "--evaluate-trial <node-config>",
        "score updates' loss and accuracy on the validation split of the trial in this node config (init/run write it)",
      ).argParser(existingPath("file")),
    )
    .option(
      "--admin-token <token>",
      "bearer token for the web API's admin actions (≥ 16 characters)",
    )
    .option(
      "--read-token <token>",
      "bearer token the web API and UI need for read-only views (≥ 16 characters); default: public",
    )
    .addHelpText(
      "after",
      "\nExample:\n  $ iomt-sfl validator --genesis genesis.json --key v0.key.json --db node0/ledger.db --listen 127.0.0.1:7101",
    )
    .action(async (options, command) => {
      const { exitWhenParentDies } = await import("../../roles/supervisor.ts");
      exitWhenParentDies();
      const { parseGenesis, chainContext } = await import("../../ledger/chain/genesis.ts");
      const { readKeyFile } = await import("../../ledger/crypto/keyfile.ts");
      const { startValidator } = await import("../../roles/validator/server.ts");
      const { onSignal } = await import("../../runtime/adapter.ts");
      const { VERSION, globalOptions } = await import("../program.ts");
      const { join } = await import("node:path");
      const { mkdirSync } = await import("node:fs");

      const text = readFileSync(options.genesis, "utf8");
      if (text.length > GENESIS_BYTES_MAX) {
        throw new UsageError(`${options.genesis}: genesis larger than ${GENESIS_BYTES_MAX} bytes`);
      }
      let genesis;
      try {
        genesis = parseGenesis(text);
      } catch (error) {
        throw new UsageError(`${options.genesis}: ${(error as Error).message}`);
      }
      const ctx = chainContext(genesis);
      let key;
      try {
        key = await readKeyFile(options.key);
      } catch (error) {
        throw new UsageError(`${options.key}: ${(error as Error).message}`);
      }
      const index = ctx.validatorIndex.get(key.address);
      if (index === undefined) {
        throw new UsageError(
          `key ${key.id} (${key.address}) in ${options.key} is not a validator of chain ${ctx.chainId}; ` +
            `use one of the validator keys listed in ${options.genesis} (${
              ctx.validators.map((v) => v.id).join(", ")
            }) ` +
            `or regenerate the genesis with this key (iomt-sfl ledger genesis --validators ...)`,
        );
      }
      const missing = ctx.validators.filter((v, i) => i !== index && !v.endpoint).map((v) => v.id);
      if (missing.length > 0) {
        throw new UsageError(
          `${options.genesis}: validators ${
            missing.join(", ")
          } have no "endpoint"; peers cannot reach them`,
        );
      }
      let listen = options.listen;
      if (!listen) {
        const endpoint = ctx.validators[index].endpoint;
        if (!endpoint) {
          throw new UsageError(
            `validator ${key.id} has no endpoint in genesis: give --listen HOST:PORT`,
          );
        }
        const url = new URL(endpoint);
        listen = {
          hostname: url.hostname.replace(/^\[|\]$/g, ""),
          port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
        };
      }
      const globals = globalOptions(command as never);
      let db = options.db;
      if (!db) {
        const dir = join(globals.dataDir, key.id);
        mkdirSync(dir, { recursive: true });
        db = join(dir, "ledger.db");
      }
      // With the trial's description, score every update's loss and accuracy on its validation
      // split; every validator derives the same split from the same data and seed.
      // The evaluator (tfjs, the trial's data) loads while the validator starts listening, so
      // peers and the edge reach it sooner; a load failure still stops the validator below.
      let evaluate: UpdateEvaluator | undefined;
      let evaluatorReady: Promise<UpdateEvaluator> | undefined;
      if (options.evaluateTrial) {
        const { trialEvaluator } = await import("../../roles/validator/trial_evaluator.ts");
        const ready = trialEvaluator(options.evaluateTrial);
        ready.catch(() => {}); // awaited after the start
        evaluatorReady = ready;
        evaluate = async (weights, context) => (await ready)(weights, context);
      }
      const running = await startValidator({
        genesis,
        key,
        db,
        dbAuthToken: process.env.IOMT_SFL_DB_AUTH_TOKEN,
        hostname: listen.hostname,
        port: listen.port,
        version: VERSION,
        adminToken: options.adminToken,
        readToken: options.readToken,
        byzantine: options.byzantine,
        evaluate,
      });
      if (evaluatorReady) {
        try {
          await evaluatorReady;
        } catch (error) {
          await running.close();
          throw error;
        }
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        onSignal("SIGINT", stop);
        onSignal("SIGTERM", stop);
        running.node.onCommit(() => {
          if (running.node.fatalError) resolve();
        });
        const watch = setInterval(() => {
          if (running.node.fatalError) resolve();
        }, 500);
        (watch as unknown as { unref?: () => void }).unref?.();
      });
      const fatal = running.node.fatalError;
      await running.close();
      if (fatal) throw new Error(`validator stopped: ${fatal.message}`);
    });
}
