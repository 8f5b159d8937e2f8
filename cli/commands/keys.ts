// `iomt-sfl keys gen`: a new Ed25519 key file (mode 0600) for a validator, device, edge or admin.
import { Command, Option } from "@commander-js/extra-typings";
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { logger } from "../../util/log.ts";
import { oneOf } from "../options.ts";
import { UsageError } from "../usage_error.ts";

const ROLES = ["validator", "device", "edge", "admin"] as const;
const ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export function keysCommand(): Command {
  const command = new Command("keys").description("manage Ed25519 key files");
  command
    .command("gen")
    .description(
      "generate an Ed25519 key pair and write it as a JSON key file with mode 0600; prints the public key",
    )
    .requiredOption("--out <file>", "key file to create (never overwritten)")
    .addOption(
      new Option("--role <role>", `what the key is for: ${ROLES.join(", ")}`).argParser(
        oneOf(ROLES),
      ).default(
        "device" as (typeof ROLES)[number],
      ),
    )
    .option(
      "--id <name>",
      "name in genesis and logs, e.g. v0 or dev-07 (default: role-<address prefix>)",
    )
    .option("--json", "print the public part as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  $ iomt-sfl keys gen --out keys/v0.json --role validator --id v0\n  $ iomt-sfl keys gen --out keys/dev-01.json --role device --id dev-01 --json",
    )
    .action(async (options) => {
      if (options.id !== undefined && !ID_PATTERN.test(options.id)) {
        throw new UsageError(
          `--id: expected 1-64 characters of A-Z a-z 0-9 . _ : -, got ${
            JSON.stringify(options.id)
          }`,
        );
      }
      if (existsSync(options.out)) {
        throw new UsageError(
          `--out: ${options.out} already exists; refusing to overwrite a key file`,
        );
      }
      const dir = dirname(options.out);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        throw new UsageError(`--out: directory ${dir} does not exist`);
      }
      const { generateKeyPair, addressOf } = await import("../../ledger/crypto/ed25519.ts");
      const { keyFileFor, writeKeyFile } = await import("../../ledger/crypto/keyfile.ts");
      const pair = await generateKeyPair();
      const id = options.id ?? `${options.role}-${addressOf(pair.publicKey).slice(0, 8)}`;
      const file = keyFileFor(pair, options.role, id);
      writeKeyFile(options.out, file);
      logger("keys").info("wrote key file", {
        path: options.out,
        role: file.role,
        id: file.id,
        mode: "0600",
      });
      if (options.json) {
        const { private_key_pkcs8_base64: _secret, ...publicPart } = file;
        console.log(JSON.stringify({ ...publicPart, path: options.out }));
      } else {
        console.log(file.public_key_hex);
        console.log(`role ${file.role}  id ${file.id}  address ${file.address}`);
      }
    });
  return command;
}
