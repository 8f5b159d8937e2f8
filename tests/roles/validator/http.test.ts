// The validator's HTTP API through app.fetch: peer messages that must be refused (and counted,
// with nothing stored), client txs that must be refused, blobs, status and the global model.
import { signTx } from "../../../ledger/chain/tx.ts";
import { toHex } from "../../../ledger/crypto/bytes.ts";
import { sha256HexAsync } from "../../../ledger/crypto/sha256.ts";
import { signRequest } from "../../../net/signed_request.ts";
import { createValidatorApp } from "../../../roles/validator/http.ts";
import { encodeEnvelope, signMessage } from "../../../roles/validator/wire.ts";
import type { Status } from "../../../ledger/pbft/types.ts";
import { assertEquals } from "../../assert.ts";
import { CHAIN_ID, Cluster, testTx } from "./fixtures.ts";

async function withApp(
  test: (
    cluster: Cluster,
    fetch: (path: string, init?: RequestInit) => Promise<Response>,
  ) => Promise<void>,
) {
  const cluster = await Cluster.start();
  try {
    const app = createValidatorApp(cluster.nodes[0]!, cluster.stores[0]!, { version: "test" });
    await test(
      cluster,
      (path, init) => app.fetch(new Request(`http://127.0.0.1${path}`, init)) as Promise<Response>,
    );
  } finally {
    await cluster.stop();
  }
}

function status(replica: number, chainId = CHAIN_ID): Status {
  return {
    kind: "status",
    chainId,
    view: 0,
    viewActive: true,
    lastExecutedHeight: 0,
    stableHeight: 0,
    replica,
    signature: "",
  };
}

const post = (body: string) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body,
});

Deno.test("peer messages: bad signature, unknown sender, wrong chain, malformed, oversized and far-future are refused and counted", async () => {
  await withApp(async (cluster, fetch) => {
    const node = cluster.nodes[0]!;
    const [v0, v1] = cluster.keys.validators;
    const good = await signMessage(v1.privateKey, status(1));
    const ok = await fetch("/v1/pbft", post(encodeEnvelope(CHAIN_ID, [good])));
    assertEquals(ok.status, 202);
    assertEquals((await ok.json()).accepted, 1);

    const cases: [string, string, string][] = [
      [
        "bad_signature",
        encodeEnvelope(CHAIN_ID, [{ ...good, lastExecutedHeight: 5 }]),
        "tampered field",
      ],
      [
        "bad_signature",
        encodeEnvelope(CHAIN_ID, [await signMessage(v0.privateKey, status(1))]),
        "signed by another validator",
      ],
      [
        "unknown_sender",
        encodeEnvelope(CHAIN_ID, [{ ...good, replica: 9 }]),
        "replica index outside genesis",
      ],
      ["wrong_chain", encodeEnvelope("other-chain", [good]), "envelope for another chain"],
      [
        "wrong_chain",
        encodeEnvelope(CHAIN_ID, [await signMessage(v1.privateKey, status(1, "other-chain"))]),
        "message for another chain",
      ],
      ["malformed", "{not json", "not JSON"],
      [
        "malformed",
        encodeEnvelope(CHAIN_ID, [{ ...good, extra: 1 } as unknown as Status]),
        "unknown field",
      ],
      [
        "far_future",
        encodeEnvelope(CHAIN_ID, [
          await signMessage(v1.privateKey, {
            kind: "prepare",
            chainId: CHAIN_ID,
            view: 0,
            height: 1_000_000,
            blockHash: "ab".repeat(32),
            replica: 1,
            signature: "",
          }),
        ]),
        "height far above the window",
      ],
    ];
    for (const [reason, body, what] of cases) {
      const before = node.rejections[reason] ?? 0;
      const response = await fetch("/v1/pbft", post(body));
      assertEquals(response.status, 400, what);
      const answer = await response.json();
      assertEquals(answer.rejected[0].reason, reason, `${what}: ${JSON.stringify(answer)}`);
      assertEquals(node.rejections[reason], before + 1, `${what} is counted under ${reason}`);
    }
    const oversized = await fetch("/v1/pbft", post("x".repeat(node.requestBodyBytesMax + 1)));
    assertEquals(oversized.status, 413);
    assertEquals(node.rejections.oversized, 1);
    assertEquals(await cluster.stores[0]!.height(), 0, "nothing was stored");
    const statusBody = await (await fetch("/v1/status")).json();
    assertEquals(statusBody.rejected_messages.bad_signature, 2);
    assertEquals(statusBody.fatal_error, null, "the replica keeps running");
  });
});

Deno.test("client txs: malformed, bad signature, unknown sender, wrong chain, replayed and conflicting are refused", async () => {
  await withApp(async (cluster, fetch) => {
    const [a, b] = cluster.keys.devices;
    const tx = await testTx(a, 1);
    const accepted = await fetch("/v1/tx", post(JSON.stringify(tx)));
    assertEquals(accepted.status, 202);
    const { id } = await accepted.json();
    assertEquals(
      (await (await fetch("/v1/tx", post(JSON.stringify(tx)))).json()).duplicate,
      true,
      "same tx again is idempotent",
    );
    for (const node of cluster.live().slice(1)) await node.submitTx(structuredClone(tx));
    await cluster.waitFor("tx committed", () => cluster.live().every((n) => n.committedTxs === 1));
    assertEquals((await (await fetch(`/v1/tx/${id}`)).json()).status, "committed");
    const again = await fetch("/v1/tx", post(JSON.stringify(tx)));
    assertEquals(
      [again.status, (await again.json()).duplicate],
      [202, true],
      "a committed tx sent again answers with its id",
    );
    const outsider = { ...cluster.keys.validators[0], address: "00".repeat(20) };
    const cases: [number, string, unknown][] = [
      [400, "malformed", { hello: 1 }],
      [400, "bad_signature", { ...(await testTx(b, 1)), sig: toHex(new Uint8Array(64)) }],
      [403, "unknown_sender", await signTx(outsider, CHAIN_ID, "x.test", 1, { n: 1 })],
      [400, "wrong_chain", await signTx(b, "other-chain", "x.test", 1, { n: 1 })],
      [409, "replay", await testTx(a, 1, { n: 99 })],
    ];
    for (const [code, reason, body] of cases) {
      const response = await fetch("/v1/tx", post(JSON.stringify(body)));
      const answer = await response.json();
      assertEquals([response.status, answer.error?.code], [code, reason], JSON.stringify(answer));
    }
    const pending = await testTx(b, 7);
    assertEquals((await fetch("/v1/tx", post(JSON.stringify(pending)))).status, 202);
    const conflicting = await fetch("/v1/tx", post(JSON.stringify(await testTx(b, 7, { n: 8 }))));
    assertEquals(conflicting.status, 409);
    assertEquals(await cluster.stores[0]!.height(), 1, "only the good tx's block is stored");
  });
});

Deno.test("blobs: hash checked on receipt, signed uploads only, size limit", async () => {
  await withApp(async (cluster, fetch) => {
    const device = cluster.keys.devices[0];
    const bytes = new TextEncoder().encode("weights".repeat(100));
    const sha = await sha256HexAsync(bytes);
    const put = async (path: string, body: Uint8Array, signed = true) => {
      const headers = signed
        ? await signRequest(
          device,
          { chainId: CHAIN_ID, method: "PUT", path, body },
          Date.now() * 1000 + Math.floor(performance.now() * 1000),
        )
        : {};
      return await fetch(path, { method: "PUT", headers, body: body as Uint8Array<ArrayBuffer> });
    };
    assertEquals((await put(`/v1/blobs/${sha}`, bytes, false)).status, 401);
    assertEquals((await put(`/v1/blobs/${"00".repeat(32)}`, bytes)).status, 400, "hash mismatch");
    assertEquals((await put(`/v1/blobs/${sha}`, bytes)).status, 201);
    const got = await fetch(`/v1/blobs/${sha}`);
    assertEquals(new Uint8Array(await got.arrayBuffer()), bytes);
    assertEquals((await fetch(`/v1/blobs/${"11".repeat(32)}`)).status, 404);
    const limit = cluster.genesis.params.model_update.max_blob_bytes;
    const big = await fetch(`/v1/blobs/${sha}`, {
      method: "PUT",
      headers: { "content-length": String(limit + 1) },
      body: new Uint8Array(16),
    });
    assertEquals(big.status, 413);
    const web = await fetch("/api/v1/status");
    assertEquals(web.status, 200);
    assertEquals((await web.json()).role, "validator");
  });
});

Deno.test("client: txs, blobs and the global model with a certificate checked against genesis", async () => {
  await withApp(async (cluster, fetch) => {
    const { ValidatorClient } = await import("../../../roles/validator/client.ts");
    const viaApp = ((input: string | URL | Request, init?: RequestInit) =>
      fetch(new URL(String(input)).pathname, init)) as typeof globalThis.fetch;
    const validator = cluster.keys.validators[1];
    const client = new ValidatorClient({
      genesis: cluster.genesis,
      signer: validator,
      endpoints: ["http://v0"],
      fetch: viaApp,
    });
    const weights = new Uint8Array(4096).map((_, i) =>
      i % 251
    );
    const { sha256, stored } = await client.putBlob(weights);
    assertEquals(stored, 1);
    // Sent to one validator only; it orders it (or forwards it to the primary).
    const outcome = await client.submit("round_open", { round: 1, global_model_sha256: sha256 });
    await cluster.waitFor("round_open committed", async () => {
      const s = await (await fetch(`/v1/tx/${outcome.id}`)).json();
      return s.status === "committed";
    });
    const model = await client.globalModel();
    assertEquals([model.round, model.sha256, model.bytes], [1, sha256, weights]);
    assertEquals(model.certificate!.signatures.length >= 3, true, "2f+1 commit signatures");
  });
});
