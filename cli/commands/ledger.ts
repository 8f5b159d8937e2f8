// `iomt-sfl ledger verify|show|genesis|quarantine|readmit`: check a stored chain against a
// trusted genesis, print blocks and transactions, write a genesis from key files, and the
// operator's quarantine/readmit transactions.
import { Command, Option } from "@commander-js/extra-typings";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Block, Certificate, Genesis, Tx } from "../../ledger/chain/types.ts";
import type { ChainContext } from "../../ledger/chain/genesis.ts";
import type { LedgerStore } from "../../ledger/store/store.ts";
import { logger } from "../../util/log.ts";
import { commaList, intInRange } from "../options.ts";
import { UsageError } from "../usage_error.ts";
import {
  devicesFromStore,
  deviceTableLines,
  recordOf,
  roundRecordLines,
} from "../../roles/validator/update_summary.ts";

const DB_HELP = "ledger database: a file path, or a libsql:// or http(s):// URL of a libSQL server";
const GENESIS_BYTES_MAX = 64 * 1024 * 1024;
const SHOW_LIMIT_MAX = 10_000;

export function ledgerCommand(): Command {
  const command = new Command("ledger").description("verify, inspect and create ledgers");

  command
    .command("verify")
    .description(
      "recheck every hash link, Merkle root, tx signature, nonce/round rule and commit certificate " +
        "against the genesis validators; names the first bad block. Exit 1 if the ledger is bad.",
    )
    .requiredOption("--db <path|url>", DB_HELP)
    .requiredOption("--genesis <file>", "trusted genesis JSON file")
    .option("--no-blobs", "do not re-hash stored model blobs")
    .option("--json", "print the report as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  $ iomt-sfl ledger verify --db node0/ledger.db --genesis genesis.json",
    )
    .action(async (options) => {
      const genesis = await readGenesisOption(options.genesis);
      const store = await openStore(options.db);
      try {
        const { verifyLedger } = await import("../../ledger/verify.ts");
        const report = await verifyLedger(store, genesis, { blobs: options.blobs });
        if (options.json) {
          console.log(JSON.stringify(report));
        } else {
          console.log(
            `${
              report.ok ? "OK" : "BAD"
            }  chain ${report.chain_id}  genesis ${report.genesis_hash}\n` +
              `verified ${report.verified_height}/${report.stored_height} blocks, ${report.txs_checked} txs, ` +
              `${report.signatures_checked} signatures, ${report.blobs_checked} blobs`,
          );
          if (report.problem) {
            const where = report.problem.height === undefined
              ? ""
              : `first bad block: ${report.problem.height}\n`;
            console.log(`${where}reason: ${report.problem.code}: ${report.problem.message}`);
          }
        }
        if (!report.ok) {
          const at = report.problem?.height === undefined
            ? ""
            : ` at block ${report.problem.height}`;
          throw new Error(`ledger verification failed${at} (${report.problem?.code})`);
        }
      } finally {
        store.close();
      }
    });

  command
    .command("show")
    .description("print blocks, their transactions and certificates")
    .requiredOption("--db <path|url>", DB_HELP)
    .option("--from <height>", "first height to show", intInRange(1, Number.MAX_SAFE_INTEGER), 1)
    .option(
      "--limit <n>",
      `blocks to show (at most ${SHOW_LIMIT_MAX})`,
      intInRange(1, SHOW_LIMIT_MAX),
      20,
    )
    .option("--json", "print one JSON document: {chain_id, genesis_hash, height, blocks:[...]}")
    .addHelpText(
      "after",
      "\nExample:\n  $ iomt-sfl ledger show --db node0/ledger.db --from 10 --limit 5",
    )
    .action(async (options) => {
      const store = await openStore(options.db);
      try {
        await showBlocks(store, options.from, options.limit, options.json ?? false);
      } finally {
        store.close();
      }
    });

  for (const action of ["quarantine", "readmit"] as const) {
    command
      .command(action)
      .description(
        action === "quarantine"
          ? "keep a device out of every round until it is readmitted (a transaction signed with " +
            "the admin key of genesis; waits until committed)"
          : "put a quarantined device on probation (a transaction signed with the admin key)",
      )
      .argument("<device>", "device id in genesis, e.g. device-3")
      .requiredOption("--genesis <file>", "genesis JSON file (names the validators to send to)")
      .requiredOption("--key <file>", "the operator's key file (admin role in genesis)")
      .option("--reason <text>", "why (stored on the chain, at most 200 characters)", "")
      .addHelpText(
        "after",
        `\nExample:\n  $ iomt-sfl ledger ${action} --genesis deploy/genesis.json ` +
          `--key deploy/keys/admin.json device-3${
            action === "quarantine" ? ' --reason "scanning the ward network"' : ""
          }`,
      )
      .action(async (device, options) => {
        const genesis = await readGenesisOption(options.genesis);
        const { readKeyFile } = await import("../../ledger/crypto/keyfile.ts");
        const { LedgerAdmin } = await import("../../roles/ledger_link/ledger_admin.ts");
        let admin;
        try {
          admin = new LedgerAdmin(genesis, await readKeyFile(options.key));
        } catch (error) {
          throw new UsageError(`--key: ${options.key}: ${(error as Error).message}`);
        }
        const result = await admin.act(action, device, options.reason);
        if (!result.accepted) throw new UsageError(`ledger ${action}: ${result.message}`);
        console.log(result.message);
      });
  }

  command
    .command("genesis")
    .description(
      "write a genesis file from validator and participant key files (public parts only)",
    )
    .requiredOption("--chain-id <id>", "chain id, e.g. iomt-sfl-ward3")
    .requiredOption(
      "--validators <files>",
      "comma-separated validator key files, in primary order (n = 3f+1)",
      commaList,
    )
    .addOption(
      new Option(
        "--endpoints <urls>",
        "comma-separated http(s) base URLs of the validators, in the same order",
      ).argParser(commaList),
    )
    .addOption(
      new Option("--participants <files>", "comma-separated device, edge and admin key files")
        .argParser(commaList),
    )
    .option(
      "--time-ms <ms>",
      "genesis time, Unix ms (default: now)",
      intInRange(0, Number.MAX_SAFE_INTEGER),
    )
    .requiredOption("--out <file>", "genesis file to create (never overwritten)")
    .action(async (options) => {
      if (existsSync(options.out)) throw new UsageError(`--out: ${options.out} already exists`);
      const { readKeyFile } = await import("../../ledger/crypto/keyfile.ts");
      const { createGenesis, genesisHash } = await import("../../ledger/chain/genesis.ts");
      const load = async (flag: string, files: string[]) => {
        const keys = [];
        for (const file of files) {
          try {
            keys.push(await readKeyFile(file));
          } catch (error) {
            throw new UsageError(`${flag}: ${file}: ${(error as Error).message}`);
          }
        }
        return keys;
      };
      const validators = await load("--validators", options.validators);
      const participants = await load("--participants", options.participants ?? []);
      if (options.endpoints && options.endpoints.length !== validators.length) {
        throw new UsageError(
          `--endpoints: ${options.endpoints.length} URLs for ${validators.length} validators`,
        );
      }
      const wrongRole = [
        ...validators.filter((k) => k.role !== "validator"),
        ...participants.filter((k) => k.role === "validator"),
      ];
      if (wrongRole.length > 0) {
        throw new UsageError(
          `key ${wrongRole[0].id} has role ${
            wrongRole[0].role
          }; validators go in --validators, others in --participants`,
        );
      }
      let genesis: Genesis;
      try {
        genesis = createGenesis({
          chainId: options.chainId,
          genesisTimeMs: options.timeMs ?? Date.now(),
          validators: validators.map((k, i) => ({
            id: k.id,
            publicKey: k.publicKey,
            endpoint: options.endpoints?.[i],
          })),
          participants: participants.map((k) => ({
            id: k.id,
            publicKey: k.publicKey,
            role: k.role as "device" | "edge" | "admin",
          })),
        });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      writeFileSync(options.out, JSON.stringify(genesis, null, 2) + "\n", { flag: "wx" });
      logger("ledger").info("wrote genesis", {
        path: options.out,
        validators: validators.length,
        participants: participants.length,
      });
      console.log(genesisHash(genesis));
    });

  return command;
}

async function readGenesisOption(path: string): Promise<Genesis> {
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new UsageError(`--genesis: no such file: ${path}`);
  }
  if (statSync(path).size > GENESIS_BYTES_MAX) {
    throw new UsageError(`--genesis: ${path} is larger than ${GENESIS_BYTES_MAX} bytes`);
  }
  const { parseGenesis } = await import("../../ledger/chain/genesis.ts");
  try {
    return parseGenesis(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`--genesis: ${path}: ${(error as Error).message}`);
  }
}

/** Opens an existing ledger read-only; a path that does not exist is a usage error, not a new file. */
async function openStore(db: string): Promise<LedgerStore> {
  const { LedgerStore, isRemoteUrl } = await import("../../ledger/store/store.ts");
  const isPath = !isRemoteUrl(db) && !db.startsWith("file:") && db !== ":memory:";
  if (isPath && (!existsSync(db) || !statSync(db).isFile())) {
    throw new UsageError(`--db: no such file: ${db}`);
  }
  try {
    return await LedgerStore.open(db, { readOnly: true, authToken: authToken() });
  } catch (error) {
    throw new UsageError(`--db: ${(error as Error).message}`);
  }
}

function authToken(): string | undefined {
  // The token of a libSQL server is a secret: from the environment only, never a flag.
  return globalThis.process?.env?.IOMT_SFL_DB_AUTH_TOKEN || undefined;
}

async function showBlocks(
  store: LedgerStore,
  from: number,
  limit: number,
  json: boolean,
): Promise<void> {
  const ctx = store.context;
  const height = await store.height();
  const to = from + limit - 1;
  if (json) {
    const { txHash } = await import("../../ledger/chain/tx.ts");
    const blocks = [];
    for await (const c of store.readCommitted(from, to)) {
      blocks.push({
        height: c.height,
        hash: c.hash,
        header: c.block.header,
        txs: c.block.txs.map((tx) => ({ hash: txHash(tx), ...tx })),
        certificate: c.certificate,
      });
    }
    const updates = await devicesFromStore(store, deviceIdsOf(ctx));
    console.log(
      JSON.stringify({
        chain_id: ctx?.chainId ?? null,
        genesis_hash: ctx?.genesisHash ?? null,
        height,
        blocks,
        devices: updates.devices,
      }),
    );
    return;
  }
  const counts = await store.counts();
  console.log(
    `chain ${ctx?.chainId ?? "(no genesis)"}  genesis ${
      short(ctx?.genesisHash)
    }  height ${height}  ` +
      `(${counts.transactions} txs, ${counts.blobs} blobs, ${counts.checkpoints} checkpoints)`,
  );
  const { txHash } = await import("../../ledger/chain/tx.ts");
  let shown = 0;
  for await (const c of store.readCommitted(from, to)) {
    console.log(formatBlock(ctx, c.hash, c.block, c.certificate));
    c.block.txs.forEach((tx, i) => {
      console.log(`    [${i}] ${formatTx(ctx, tx)}  tx ${short(txHash(tx))}`);
      const record = recordOf(tx);
      if (record) { for (const line of roundRecordLines(record)) console.log(`          ${line}`); }
    });
    shown += 1;
  }
  if (shown === 0) {
    console.log(from > height ? `no blocks from height ${from} (last is ${height})` : "no blocks");
  }
  // Update consensus: reputation, credits and status from every committed round result.
  const updates = await devicesFromStore(store, deviceIdsOf(ctx));
  if (updates.devices.length > 0) {
    console.log(`devices after ${updates.rounds} committed round result(s):`);
    for (const line of deviceTableLines(updates.devices)) console.log(`  ${line}`);
  }
}

function formatBlock(
  ctx: ChainContext | null,
  hash: string,
  block: Block,
  certificate: Certificate | null,
): string {
  const h = block.header;
  const cert = certificate
    ? `cert ${certificate.signatures.length}/${
      ctx?.validators.length ?? "?"
    } (view ${certificate.view})`
    : "NO CERT";
  return `#${h.height}  ${short(hash)}  prev ${short(h.prev_hash)}  view ${h.view}  proposer ${
    nameOf(ctx, h.proposer)
  }  ` +
    `${new Date(h.time_ms).toISOString()}  txs ${h.tx_count}  state ${
      short(h.state_root)
    }  ${cert}`;
}

function formatTx(ctx: ChainContext | null, tx: Tx): string {
  const head = `${tx.type.padEnd(12)}  from ${nameOf(ctx, tx.from)}  nonce ${tx.nonce}`;
  const b = tx.body as Record<string, unknown>;
  switch (tx.type) {
    case "model_update":
    case "edge_update":
      return `${head}  round ${b.round}  samples ${b.sample_count}  blob ${
        short(b.blob_sha256 as string)
      } (${b.blob_size_bytes} B)` +
        (Array.isArray(b.devices) ? `  devices ${b.devices.length}` : "");
    case "round_open":
      return `${head}  round ${b.round}` +
        (b.global_model_sha256 ? `  global ${short(b.global_model_sha256 as string)}` : "");
    case "round_close":
      return `${head}  round ${b.round}` +
        (Array.isArray(b.accepted) ? `  accepted ${b.accepted.length}` : "") +
        (Array.isArray(b.rejected) ? `  rejected ${b.rejected.length}` : "") +
        (b.aggregate_sha256 ? `  aggregate ${short(b.aggregate_sha256 as string)}` : "");
    case "round_result":
      return `${head}  round ${b.round}` +
        (b.global_model_sha256 ? `  global ${short(b.global_model_sha256 as string)}` : "") +
        `  record ${JSON.stringify(b.record).slice(0, 60)}`;
    case "quarantine":
    case "readmit":
      return `${head}  target ${nameOf(ctx, b.target as string)}  reason ${
        JSON.stringify(b.reason)
      }`;
    default:
      return `${head}  body ${JSON.stringify(tx.body).slice(0, 80)}`;
  }
}

function deviceIdsOf(ctx: ChainContext | null): string[] {
  return ctx ? [...ctx.keys.values()].filter((k) => k.role === "device").map((k) => k.id) : [];
}

function nameOf(ctx: ChainContext | null, address: string): string {
  return ctx?.keys.get(address)?.id ?? short(address);
}

function short(hex: string | undefined): string {
  return hex === undefined ? "-" : `${hex.slice(0, 12)}…`;
}
