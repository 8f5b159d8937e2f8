// Deterministic test chain: fixed seeds, fixed times, 4 validators (f = 1), 3 devices, 1 edge,
// 1 admin. Ed25519 signatures are deterministic, so every hash here is stable across runs.
import { toHex } from "../../../ledger/crypto/bytes.ts";
import { keyFromSeedHex, type LoadedKey } from "../../../ledger/crypto/keyfile.ts";
import { blockHash, buildBlock } from "../../../ledger/chain/block.ts";
import { makeCertificate, signCommit } from "../../../ledger/chain/certificate.ts";
import {
  type ChainContext,
  chainContext,
  createGenesis,
  primaryOf,
} from "../../../ledger/chain/genesis.ts";
import { signTx, txHash } from "../../../ledger/chain/tx.ts";
import type {
  Block,
  Certificate,
  Genesis,
  Tx,
  TxBody,
  TxType,
} from "../../../ledger/chain/types.ts";

export const GENESIS_TIME_MS = 1_764_400_000_000;
export const STATE_ROOT = "ab".repeat(32);

export function seedHex(label: number): string {
  return label.toString(16).padStart(2, "0").repeat(32);
}

export interface TestKeys {
  validators: LoadedKey[];
  devices: LoadedKey[];
  edge: LoadedKey;
  admin: LoadedKey;
}

export async function testKeys(): Promise<TestKeys> {
  return {
    validators: await Promise.all(
      [0, 1, 2, 3].map((i) => keyFromSeedHex(seedHex(0x10 + i), "validator", `v${i}`)),
    ),
    devices: await Promise.all(
      [0, 1, 2].map((i) => keyFromSeedHex(seedHex(0x20 + i), "device", `dev-${i}`)),
    ),
    edge: await keyFromSeedHex(seedHex(0x30), "edge", "edge-0"),
    admin: await keyFromSeedHex(seedHex(0x40), "admin", "admin-0"),
  };
}

export function testGenesis(keys: TestKeys): Genesis {
  return createGenesis({
    chainId: "iomt-sfl-test",
    genesisTimeMs: GENESIS_TIME_MS,
    validators: keys.validators.map((k) => ({ id: k.id, publicKey: k.publicKey })),
    participants: [
      ...keys.devices.map((k) => ({ id: k.id, publicKey: k.publicKey, role: "device" as const })),
      { id: keys.edge.id, publicKey: keys.edge.publicKey, role: "edge" as const },
      { id: keys.admin.id, publicKey: keys.admin.publicKey, role: "admin" as const },
    ],
  });
}

/** Builds a valid chain block by block, with nonces and quorum certificates handled. */
export class ChainBuilder {
  height = 0;
  prevHash: string;
  timeMs = GENESIS_TIME_MS;
  readonly nonces = new Map<string, number>();
  readonly blocks: { block: Block; certificate: Certificate; hash: string }[] = [];

  private constructor(
    readonly keys: TestKeys,
    readonly genesis: Genesis,
    readonly ctx: ChainContext,
  ) {
    this.prevHash = ctx.genesisHash;
  }

  static async create(): Promise<ChainBuilder> {
    const keys = await testKeys();
    const genesis = testGenesis(keys);
    return new ChainBuilder(keys, genesis, chainContext(genesis));
  }

  async tx<T extends TxType>(sender: LoadedKey, type: T, body: TxBody<T>): Promise<Tx<T>> {
    const nonce = (this.nonces.get(sender.address) ?? 0) + 1;
    this.nonces.set(sender.address, nonce);
    return await signTx(sender, this.genesis.chain_id, type, nonce, body);
  }

  /** Next block at view 0 (or `view`), certified by validators `signers` (default: first 3). */
  async block(
    txs: Tx[],
    options: { view?: number; signers?: number[] } = {},
  ): Promise<{ block: Block; certificate: Certificate; hash: string }> {
    const view = options.view ?? 0;
    this.timeMs += 1000;
    const block = buildBlock({
      chainId: this.genesis.chain_id,
      height: this.height + 1,
      prevHash: this.prevHash,
      view,
      proposer: primaryOf(this.ctx, view).address,
      timeMs: this.timeMs,
      stateRoot: STATE_ROOT,
      txs,
    });
    const hash = blockHash(block);
    const target = {
      chainId: this.genesis.chain_id,
      height: block.header.height,
      view,
      blockHash: hash,
    };
    const signers = (options.signers ?? [0, 1, 2]).map((i) => this.keys.validators[i]);
    const certificate = await makeCertificate(
      this.ctx,
      target,
      await Promise.all(signers.map((k) => signCommit(k, target))),
    );
    this.height += 1;
    this.prevHash = hash;
    const committed = { block, certificate, hash };
    this.blocks.push(committed);
    return committed;
  }

  /** A small chain: round 1 opened, 3 device updates and an edge update, round closed, admin action. */
  async standardChain(): Promise<void> {
    const [v0] = this.keys.validators;
    await this.block([
      await this.tx(v0, "round_open", { round: 1, global_model_sha256: "00".repeat(32) }),
    ]);
    const updates: Tx[] = [];
    for (const [i, device] of this.keys.devices.entries()) {
      updates.push(
        await this.tx(device, "model_update", {
          round: 1,
          sample_count: 100 + i,
          blob_sha256: toHex(new Uint8Array(32).fill(i + 1)),
          blob_size_bytes: 4096,
          metrics: { train_loss_e6: 250_000 + i },
        }),
      );
    }
    await this.block(updates);
    await this.block([
      await this.tx(this.keys.edge, "edge_update", {
        round: 1,
        sample_count: 303,
        blob_sha256: "ee".repeat(32),
        blob_size_bytes: 8192,
        devices: this.keys.devices.map((d) => d.address),
      }),
    ], { view: 1 });
    await this.block([], { view: 1 });
    await this.block([
      await this.tx(v0, "round_close", {
        round: 1,
        aggregate_sha256: "cc".repeat(32),
        accepted: updates.map((u) => txHash(u)),
      }),
      await this.tx(this.keys.validators[1], "round_result", {
        round: 1,
        global_model_sha256: "cc".repeat(32),
        record: { accepted: 3, rejected: 0 },
      }),
      await this.tx(this.keys.admin, "quarantine", {
        target: this.keys.devices[2].address,
        reason: "norm outlier",
      }),
    ], { view: 1, signers: [0, 1, 2, 3] });
  }
}
