// In-process validator clusters for tests: 4 validators (f = 1) with deterministic keys, real
// Ed25519 signatures and real libSQL files in a temp directory.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGenesis, DEFAULT_PARAMS } from "../../../ledger/chain/genesis.ts";
import { signTx } from "../../../ledger/chain/tx.ts";
import type { Genesis, Tx } from "../../../ledger/chain/types.ts";
import { keyFromSeedHex, type LoadedKey } from "../../../ledger/crypto/keyfile.ts";
import { LedgerStore } from "../../../ledger/store/store.ts";
import { MemoryNetwork } from "../../../roles/validator/memory_transport.ts";
import { ValidatorNode, type ValidatorSettings } from "../../../roles/validator/node.ts";

export const CHAIN_ID = "iomt-sfl-validator-test";

export function seedHex(label: number): string {
  return label.toString(16).padStart(2, "0").repeat(32);
}

export interface ClusterKeys {
  validators: LoadedKey[];
  devices: LoadedKey[];
}

export async function clusterKeys(devices = 4): Promise<ClusterKeys> {
  return {
    validators: await Promise.all(
      [0, 1, 2, 3].map((i) => keyFromSeedHex(seedHex(0x50 + i), "validator", `v${i}`)),
    ),
    devices: await Promise.all(
      Array.from(
        { length: devices },
        (_, i) => keyFromSeedHex(seedHex(0x80 + i), "device", `dev-${i}`),
      ),
    ),
  };
}

export function clusterGenesis(
  keys: ClusterKeys,
  endpoints?: string[],
  batchTxsMax = 100,
): Genesis {
  return createGenesis({
    chainId: CHAIN_ID,
    genesisTimeMs: 1_764_400_000_000,
    validators: keys.validators.map((k, i) => ({
      id: k.id,
      publicKey: k.publicKey,
      endpoint: endpoints?.[i],
    })),
    participants: keys.devices.map((k) => ({
      id: k.id,
      publicKey: k.publicKey,
      role: "device" as const,
    })),
    params: {
      ...structuredClone(DEFAULT_PARAMS),
      checkpoint_interval_blocks: 4,
      batch: { ...DEFAULT_PARAMS.batch, max_txs_per_block: batchTxsMax },
    },
  });
}

/** An extension tx (`x.test`): checked for signature and nonce only, like any ledger tx. */
export function testTx(
  key: LoadedKey,
  nonce: number,
  body: Record<string, number | string> = { n: nonce },
): Promise<Tx> {
  return signTx(key, CHAIN_ID, "x.test", nonce, body);
}

export const FAST_SETTINGS: ValidatorSettings = {
  replica: { statusIntervalMs: 30, viewChangeTimeoutMs: 1_500, batchTimeoutMs: 2 },
};

export class Cluster {
  readonly nodes: (ValidatorNode | null)[] = [null, null, null, null];
  readonly stores: (LedgerStore | null)[] = [null, null, null, null];
  readonly network: MemoryNetwork;

  private constructor(
    readonly dir: string,
    readonly keys: ClusterKeys,
    readonly genesis: Genesis,
    readonly settings: ValidatorSettings,
  ) {
    this.network = new MemoryNetwork(genesis.chain_id);
  }

  static async start(settings: ValidatorSettings = FAST_SETTINGS): Promise<Cluster> {
    const keys = await clusterKeys();
    const cluster = new Cluster(
      mkdtempSync(join(tmpdir(), "iomt-validator-")),
      keys,
      clusterGenesis(keys),
      settings,
    );
    for (let i = 0; i < 4; i++) await cluster.startNode(i);
    return cluster;
  }

  dbPath(index: number): string {
    return join(this.dir, `v${index}.db`);
  }

  async startNode(index: number): Promise<ValidatorNode> {
    const store = await LedgerStore.open(this.dbPath(index), { genesis: this.genesis });
    const node = await ValidatorNode.open({
      genesis: this.genesis,
      key: this.keys.validators[index],
      store,
      outbound: this.network.outbound(index),
      // Ledger sync reads a live peer's database, as GET /v1/blocks/:height would.
      blockSource: async (peer, height) => {
        const store = this.stores[peer];
        if (!store) return null;
        for await (const c of store.readCommitted(height, height)) {
          return c.certificate ? { block: c.block, certificate: c.certificate } : null;
        }
        return null;
      },
      settings: this.settings,
    });
    this.nodes[index] = node;
    this.stores[index] = store;
    this.network.attach(index, node);
    this.network.setDown(index, false);
    node.start();
    return node;
  }

  /** Like kill -9: the node stops at once and its store is closed, nothing flushed beyond what was. */
  async crash(index: number): Promise<void> {
    this.network.setDown(index, true);
    this.network.detach(index);
    await this.nodes[index]?.stop();
    this.stores[index]?.close();
    this.nodes[index] = null;
    this.stores[index] = null;
  }

  async stop(): Promise<void> {
    for (let i = 0; i < 4; i++) await this.crash(i);
    rmSync(this.dir, { recursive: true, force: true });
  }

  live(): ValidatorNode[] {
    return this.nodes.filter((n): n is ValidatorNode => n !== null);
  }

  async waitFor(
    what: string,
    condition: () => boolean | Promise<boolean>,
    timeoutMs = 15_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      for (const node of this.live()) {
        if (node.fatalError) {
          throw new Error(`${what}: validator failed: ${node.fatalError.message}`);
        }
      }
      if (Date.now() > deadline) {
        const states = this.live().map((n) =>
          JSON.stringify({
            i: n.self,
            h: n.app.committed.height,
            view: n.status().view,
            mempool: n.status().mempool_txs,
          })
        );
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; nodes: ${states.join(" ")}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Height reached by every live node. */
  minHeight(): number {
    return Math.min(...this.live().map((n) => n.app.committed.height));
  }
}
