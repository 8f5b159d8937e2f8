// An in-process cluster with update consensus: 4 validators (f = 1) over the in-memory transport,
// real Ed25519 keys, real libSQL files in a temp dir, each with an UpdateApp; clients (devices,
// the edge) reach the validators' HTTP apps through `fetch` (app.fetch, no port).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGenesis, DEFAULT_PARAMS } from "../../../ledger/chain/genesis.ts";
import type { Genesis } from "../../../ledger/chain/types.ts";
import { keyFromSeedHex, type LoadedKey } from "../../../ledger/crypto/keyfile.ts";
import { LedgerStore } from "../../../ledger/store/store.ts";
import { ValidatorClient } from "../../../roles/validator/client.ts";
import { createValidatorApp } from "../../../roles/validator/http.ts";
import { MemoryNetwork } from "../../../roles/validator/memory_transport.ts";
import { ValidatorNode } from "../../../roles/validator/node.ts";
import { UpdateApp, type UpdateEvaluator } from "../../../roles/validator/update_app.ts";
import { updateView } from "../../../roles/validator/update_view.ts";
import { FAST_SETTINGS, seedHex } from "./fixtures.ts";

export const UPDATE_CHAIN_ID = "iomt-sfl-update-test";

export interface UpdateClusterOptions {
  devices: number;
  /** ledger/app parameter overrides (genesis params.update_consensus). */
  updateConsensus?: Record<string, number | string | boolean>;
  initialModelSha256?: string;
  evaluate?: UpdateEvaluator;
}

export class UpdateCluster {
  readonly nodes: (ValidatorNode | null)[] = [null, null, null, null];
  readonly stores: (LedgerStore | null)[] = [null, null, null, null];
  readonly apps: (UpdateApp | null)[] = [null, null, null, null];
  readonly #http: (((request: Request) => Response | Promise<Response>) | null)[] = [
    null,
    null,
    null,
    null,
  ];
  readonly network: MemoryNetwork;
  readonly endpoints = [0, 1, 2, 3].map((i) => `http://v${i}.test`);

  private constructor(
    readonly dir: string,
    readonly validatorKeys: LoadedKey[],
    readonly deviceKeys: LoadedKey[],
    readonly edgeKey: LoadedKey,
    /** A well-formed key that is not in genesis. */
    readonly outsiderKey: LoadedKey,
    readonly genesis: Genesis,
    readonly evaluate: UpdateEvaluator | undefined,
  ) {
    this.network = new MemoryNetwork(genesis.chain_id);
  }

  static async start(options: UpdateClusterOptions): Promise<UpdateCluster> {
    const validatorKeys = await Promise.all(
      [0, 1, 2, 3].map((i) => keyFromSeedHex(seedHex(0x50 + i), "validator", `v${i}`)),
    );
    const deviceKeys = await Promise.all(
      Array.from(
        { length: options.devices },
        (_, i) => keyFromSeedHex(seedHex(0x80 + i), "device", `dev-${i}`),
      ),
    );
    const edgeKey = await keyFromSeedHex(seedHex(0x70), "edge", "edge-0");
    const outsiderKey = await keyFromSeedHex(seedHex(0x7f), "device", "outsider");
    const endpoints = [0, 1, 2, 3].map((i) => `http://v${i}.test`);
    const genesis = createGenesis({
      chainId: UPDATE_CHAIN_ID,
      genesisTimeMs: 1_764_400_000_000,
      validators: validatorKeys.map((k, i) => ({
        id: k.id,
        publicKey: k.publicKey,
        endpoint: endpoints[i],
      })),
      participants: [
        ...deviceKeys.map((k) => ({ id: k.id, publicKey: k.publicKey, role: "device" as const })),
        { id: edgeKey.id, publicKey: edgeKey.publicKey, role: "edge" as const },
      ],
      params: {
        ...structuredClone(DEFAULT_PARAMS),
        checkpoint_interval_blocks: 8,
        update_consensus: options.updateConsensus ?? {},
        ...(options.initialModelSha256 ? { initial_model_sha256: options.initialModelSha256 } : {}),
      },
    });
    const cluster = new UpdateCluster(
      mkdtempSync(join(tmpdir(), "iomt-update-")),
      validatorKeys,
      deviceKeys,
      edgeKey,
      outsiderKey,
      genesis,
      options.evaluate,
    );
    for (let i = 0; i < 4; i++) await cluster.startNode(i);
    return cluster;
  }

  /** Routes a request to the validator whose endpoint host it names. */
  readonly fetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const index = this.endpoints.findIndex((e) => request.url.startsWith(e + "/"));
    const app = this.#http[index];
    if (!app) throw new TypeError(`fetch failed: ${request.url} is unreachable`);
    return await app(request);
  };

  client(key?: LoadedKey): ValidatorClient {
    return new ValidatorClient({
      genesis: this.genesis,
      signer: key,
      fetch: this.fetch,
      requestTimeoutMs: 30_000,
    });
  }

  async startNode(index: number): Promise<void> {
    const store = await LedgerStore.open(join(this.dir, `v${index}.db`), {
      genesis: this.genesis,
    });
    const node = await ValidatorNode.open({
      genesis: this.genesis,
      key: this.validatorKeys[index],
      store,
      outbound: this.network.outbound(index),
      blockSource: async (peer, height) => {
        const peerStore = this.stores[peer];
        if (!peerStore) return null;
        for await (const c of peerStore.readCommitted(height, height)) {
          return c.certificate ? { block: c.block, certificate: c.certificate } : null;
        }
        return null;
      },
      settings: FAST_SETTINGS,
    });
    const app = await UpdateApp.attach(node, {
      store,
      key: this.validatorKeys[index],
      evaluate: this.evaluate,
      // Peers' blob stores, as GET /v1/blobs/:sha256 would serve them.
      fetchBlob: async (sha256) => {
        for (const [peer, s] of this.stores.entries()) {
          if (peer === index || !s) continue;
          const bytes = await s.getBlob(sha256);
          if (bytes) return bytes;
        }
        return null;
      },
      resultRetryMs: 2_000,
    });
    const http = createValidatorApp(node, store, {
      version: "test",
      view: updateView(app, this.genesis.genesis_time_ms),
    });
    this.nodes[index] = node;
    this.stores[index] = store;
    this.apps[index] = app;
    this.#http[index] = (request) => http.fetch(request);
    this.network.attach(index, node);
    this.network.setDown(index, false);
    node.start();
  }

  async crash(index: number): Promise<void> {
    this.network.setDown(index, true);
    this.network.detach(index);
    this.#http[index] = null;
    this.apps[index]?.stop();
    await this.nodes[index]?.stop();
    await this.apps[index]?.idle();
    this.stores[index]?.close();
    this.nodes[index] = null;
    this.stores[index] = null;
    this.apps[index] = null;
  }

  /** Stops every node and app but keeps the stores open (for verifyLedger on a quiet chain). */
  async halt(): Promise<void> {
    for (let i = 0; i < 4; i++) {
      this.network.setDown(i, true);
      this.apps[i]?.stop();
      await this.nodes[i]?.stop();
      await this.apps[i]?.idle();
    }
  }

  async stop(): Promise<void> {
    for (let i = 0; i < 4; i++) await this.crash(i);
    rmSync(this.dir, { recursive: true, force: true });
  }

  liveApps(): UpdateApp[] {
    return this.apps.filter((a): a is UpdateApp => a !== null);
  }

  async waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      for (const [i, node] of this.nodes.entries()) {
        if (node?.fatalError) throw new Error(`${what}: v${i} failed: ${node.fatalError.message}`);
        const fatal = this.apps[i]?.fatalError;
        if (fatal) throw new Error(`${what}: v${i} update consensus failed: ${fatal.message}`);
      }
      if (Date.now() > deadline) {
        const states = this.nodes.map((n, i) =>
          n
            ? `v${i}: h=${n.app.committed.height} app=${this.apps[i]?.processedHeight}`
            : `v${i}: down`
        );
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; ${states.join(", ")}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Waits until every live validator has applied the result of `round`. */
  async waitForRound(round: number, timeoutMs = 30_000): Promise<void> {
    await this.waitFor(
      `round ${round} result on every validator`,
      () => this.liveApps().every((a) => (a.state?.lastClosedRound ?? 0) >= round),
      timeoutMs,
    );
  }
}
