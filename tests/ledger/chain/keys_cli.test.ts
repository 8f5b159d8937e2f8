import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "@commander-js/extra-typings";
import { keysCommand } from "../../../cli/commands/keys.ts";
import { ledgerCommand } from "../../../cli/commands/ledger.ts";
import { UsageError } from "../../../cli/usage_error.ts";
import { genesisHash, parseGenesis } from "../../../ledger/chain/genesis.ts";
import { readKeyFile } from "../../../ledger/crypto/keyfile.ts";
import { configureLogging } from "../../../util/log.ts";

configureLogging({ level: "silent" });

function overrideExits(
  command: Command<unknown[], Record<string, unknown>, Record<string, unknown>>,
): void {
  command.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  for (const child of command.commands) overrideExits(child as never);
}

async function run(make: () => Command, args: string[]): Promise<{ out: string; error?: unknown }> {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
  const command = make();
  overrideExits(command as never);
  try {
    await command.parseAsync(args, { from: "user" });
    return { out: lines.join("\n") };
  } catch (error) {
    return { out: lines.join("\n"), error };
  } finally {
    console.log = original;
  }
}

Deno.test("cli: keys gen writes a 0600 key file and prints its public key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-keys-cli-"));
  try {
    const path = join(dir, "v0.json");
    const result = await run(keysCommand, [
      "gen",
      "--out",
      path,
      "--role",
      "validator",
      "--id",
      "v0",
    ]);
    assert.equal(result.error, undefined, String(result.error));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const key = await readKeyFile(path);
    assert.equal(result.out.split("\n")[0], JSON.parse(readFileSync(path, "utf8")).public_key_hex);
    assert.match(result.out, new RegExp(`role validator {2}id v0 {2}address ${key.address}`));
    const json = await run(keysCommand, ["gen", "--out", join(dir, "d.json"), "--json"]);
    const printed = JSON.parse(json.out);
    assert.equal(printed.role, "device");
    assert.match(printed.id, /^device-[0-9a-f]{8}$/);
    assert.equal(printed.private_key_pkcs8_base64, undefined, "the private key is never printed");

    const again = await run(keysCommand, ["gen", "--out", path]);
    assert.ok(again.error instanceof UsageError);
    assert.match((again.error as Error).message, /^--out: .* already exists/);
    const badId = await run(keysCommand, [
      "gen",
      "--out",
      join(dir, "x.json"),
      "--id",
      "has space",
    ]);
    assert.ok(badId.error instanceof UsageError);
    const badDir = await run(keysCommand, ["gen", "--out", join(dir, "missing", "x.json")]);
    assert.match((badDir.error as Error).message, /^--out: directory .* does not exist/);
    const badRole = await run(keysCommand, ["gen", "--out", join(dir, "y.json"), "--role", "king"]);
    assert.match(
      (badRole.error as Error).message,
      /expected one of: validator, device, edge, admin/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("cli: ledger genesis builds a genesis from key files", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-genesis-cli-"));
  try {
    const validators = [];
    for (let i = 0; i < 4; i++) {
      validators.push(join(dir, `v${i}.json`));
      await run(keysCommand, [
        "gen",
        "--out",
        validators[i],
        "--role",
        "validator",
        "--id",
        `v${i}`,
      ]);
    }
    const device = join(dir, "dev.json");
    await run(keysCommand, ["gen", "--out", device, "--role", "device", "--id", "dev-01"]);
    const out = join(dir, "genesis.json");
    const args = [
      "genesis",
      "--chain-id",
      "ward-3",
      "--validators",
      validators.join(","),
      "--participants",
      device,
      "--time-ms",
      "1000",
      "--out",
      out,
    ];
    const result = await run(ledgerCommand, args);
    assert.equal(result.error, undefined, String(result.error));
    const genesis = parseGenesis(readFileSync(out, "utf8"));
    assert.equal(result.out, genesisHash(genesis));
    assert.deepEqual(genesis.validators.map((v) => v.id), ["v0", "v1", "v2", "v3"]);
    assert.deepEqual(genesis.participants.map((p) => [p.id, p.role]), [["dev-01", "device"]]);
    assert.equal(genesis.genesis_time_ms, 1000);
    const urls = [0, 1, 2, 3].map((i) => `http://127.0.0.1:710${i}`);
    const withUrls = await run(ledgerCommand, [
      ...args.slice(0, -1).concat(join(dir, "g-urls.json")),
      "--endpoints",
      urls.join(","),
    ]);
    assert.equal(withUrls.error, undefined, String(withUrls.error));
    const g2 = parseGenesis(readFileSync(join(dir, "g-urls.json"), "utf8"));
    assert.deepEqual(g2.validators.map((v) => v.endpoint), urls);
    const short = await run(ledgerCommand, [
      ...args.slice(0, -1).concat(join(dir, "g-short.json")),
      "--endpoints",
      urls[0],
    ]);
    assert.match((short.error as Error).message, /^--endpoints: 1 URLs for 4 validators/);
    const three = await run(ledgerCommand, [
      "genesis",
      "--chain-id",
      "w",
      "--validators",
      validators.slice(0, 3).join(","),
      "--out",
      join(dir, "g3.json"),
    ]);
    assert.ok(three.error instanceof UsageError);
    assert.match((three.error as Error).message, /n = 3f \+ 1/);
    const mixed = await run(ledgerCommand, [
      "genesis",
      "--chain-id",
      "w",
      "--validators",
      [...validators.slice(0, 3), device].join(","),
      "--out",
      join(dir, "g4.json"),
    ]);
    assert.match((mixed.error as Error).message, /role device/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
