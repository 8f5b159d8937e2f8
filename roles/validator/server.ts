// Starts one validator process: open the store, restore the replica, serve HTTP, talk to peers.
// The CLI (`iomt-sfl validator`) and `iomt-sfl run` call startValidator; tests use the pieces.
import { chainContext } from "../../ledger/chain/genesis.ts";
import type { Genesis } from "../../ledger/chain/types.ts";
import type { LoadedKey } from "../../ledger/crypto/keyfile.ts";
import { LedgerStore } from "../../ledger/store/store.ts";
import { enableVerifiedSignatureCache } from "../../ledger/crypto/ed25519.ts";

/** Verified signatures remembered per validator process (~150 bytes each). */
const VERIFIED_SIGNATURES_CACHED_MAX = 200_000;
import { serve, type ServerHandle } from "../../runtime/adapter.ts";
import { logger } from "../../util/log.ts";
import { createNodeMetrics } from "../../web/metrics.ts";
import { createValidatorApp } from "./http.ts";
import { ValidatorNode, type ValidatorSettings } from "./node.ts";
import { HttpOutbound } from "./transport.ts";
import { type ByzantineBehaviour, ByzantineOutbound } from "./byzantine.ts";
import { ValidatorClient } from "./client.ts";
import { UpdateApp, type UpdateEvaluator } from "./update_app.ts";
import { updateView } from "./update_view.ts";

export interface StartValidatorOptions {
  genesis: Genesis;
  key: LoadedKey;
  /** File path or libsql:// URL. */
  db: string;
  dbAuthToken?: string;
  hostname: string;
  /** 0 = the port of this validator's genesis endpoint, else a free one. */
  port: number;
  version: string;
  settings?: ValidatorSettings;
  adminToken?: string;
  /** Without it the read-only views are public. */
  readToken?: string;
  /** Update scoring with the ML engine on a validation sample (update_evaluator.ts). */
  evaluate?: UpdateEvaluator;
  /** Simulation only (`run --byzantine-validators`): misbehave on the wire. */
  byzantine?: ByzantineBehaviour;
}

export interface RunningValidator {
  node: ValidatorNode;
  store: LedgerStore;
  /** Update consensus (scores, decisions, reputation) on top of the chain. */
  updates: UpdateApp;
  server: ServerHandle;
  url: string;
  close(): Promise<void>;
}

export async function startValidator(options: StartValidatorOptions): Promise<RunningValidator> {
  const ctx = chainContext(options.genesis);
  const log = logger(`validator ${options.key.id}`);
  // Each tx and commit signature is checked at admission/receipt and again by the store: pay once.
  enableVerifiedSignatureCache(VERIFIED_SIGNATURES_CACHED_MAX);
  const store = await LedgerStore.open(options.db, {
    genesis: options.genesis,
    authToken: options.dbAuthToken,
  });
  let server: ServerHandle | null = null;
  let node: ValidatorNode | null = null;
  try {
    const metrics = createNodeMetrics();
    const httpOutbound = new HttpOutbound({
      chainId: ctx.chainId,
      self: ctx.validatorIndex.get(options.key.address) ?? -1,
      endpoints: ctx.validators.map((v) => v.endpoint),
      log: (line) => log.debug(line),
    });
    const outbound = options.byzantine
      ? new ByzantineOutbound(httpOutbound, options.byzantine)
      : httpOutbound;
    if (options.byzantine) log.warn(`simulated Byzantine validator: ${options.byzantine}`);
    node = await ValidatorNode.open({
      genesis: options.genesis,
      key: options.key,
      store,
      outbound,
      settings: options.settings,
      log,
    });
    // Blobs a device did not upload here are fetched from the peers (hash-checked).
    const peers = ctx.validators.some((v) => v.endpoint)
      ? new ValidatorClient({ genesis: options.genesis, requestTimeoutMs: 5_000 })
      : null;
    const updates = await UpdateApp.attach(node, {
      store,
      key: options.key,
      evaluate: options.evaluate,
      fetchBlob: (sha256) =>
        peers ? peers.getBlob(sha256).catch(() => null) : Promise.resolve(null),
      log: log.child("updates"),
    });
    const app = createValidatorApp(node, store, {
      version: options.version,
      metrics,
      adminToken: options.adminToken,
      readToken: options.readToken,
      view: updateView(updates, options.genesis.genesis_time_ms),
    });
    node.onCommit((block) => {
      metrics.ledgerHeight.set(block.header.height);
      for (const tx of block.txs) {
        metrics.transactions.inc({ type: tx.type.startsWith("x.") ? "extension" : tx.type });
      }
    });
    server = await serve({
      fetch: app.fetch,
      hostname: options.hostname,
      port: options.port,
      maxRequestBodyBytes: node.requestBodyBytesMax,
    });
    node.start();
    const url = `http://${
      options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname
    }:${server.port}`;
    log.info(`listening on ${url}`, { chain: ctx.chainId, peers: ctx.validators.length - 1 });
    const running: RunningValidator = {
      node,
      store,
      updates,
      server,
      url,
      async close() {
        updates.stop();
        await node!.stop();
        await server!.close();
        store.close();
      },
    };
    return running;
  } catch (error) {
    await node?.stop();
    await server?.close();
    store.close();
    throw error;
  }
}
