// Devices and the edge take a global model only with a valid commit certificate: a model the
// ledger did not certify for the round is refused, and a block whose txs or certificate were
// tampered with does not verify against genesis.
import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { encodeWeights, modelHash } from "../../../ledger/app/blob.ts";
import {
  CertificateError,
  certifiedBlock,
  certifiedRoundModel,
  verifyBlock,
} from "../../../roles/ledger_link/certified.ts";
import { UpdateSubmitter } from "../../../roles/ledger_link/update_submitter.ts";
import { UpdateCluster } from "../validator/update_cluster.ts";

Deno.test("a device refuses a model without a certificate for its round; tampered blocks fail", async () => {
  const global = Float32Array.from({ length: 16 }, (_, i) => i / 16);
  const cluster = await UpdateCluster.start({ devices: 2, initialModelSha256: modelHash(global) });
  try {
    const edge = cluster.client(cluster.edgeKey);
    const device = new UpdateSubmitter({ client: cluster.client(cluster.deviceKeys[0]) });
    await edge.putBlob(encodeWeights(global));
    // Round 1 before any round_open: the genesis model is certified by genesis itself.
    await device.checkModel({ round: 0, deviceModelSha256: modelHash(global) });
    const { id } = await edge.submit("round_open", {
      round: 1,
      global_model_sha256: modelHash(global),
    });
    const opened = await edge.waitForTx(id);
    // waitForTx returns once one validator committed; the one the device asks may apply the block
    // a moment later and still name the genesis model (same hash, height 0). Bounded wait.
    let certified = await device.certifiedModel(0, modelHash(global));
    for (let i = 0; i < 100 && certified.height !== opened.height; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      certified = await device.certifiedModel(0, modelHash(global));
    }
    assertEquals(certified.height, opened.height);
    assert(certified.certificate !== null);

    // An edge offering another model for the round is refused.
    const other = modelHash(global.map((v) => v + 1));
    await assertRejects(
      () => device.checkModel({ round: 0, deviceModelSha256: other }),
      CertificateError,
      "offered",
    );
    // A round the ledger has not opened is refused (bounded wait).
    await assertRejects(
      () => certifiedRoundModel(edge, 2, undefined, { timeoutMs: 300 }),
      CertificateError,
      "newest certified model is for round 1",
    );

    const found = await certifiedBlock(edge, opened.height, { fetch: cluster.fetch });
    assert(found !== null);
    const tamperedTx = structuredClone(found.block);
    (tamperedTx.txs[0].body as { round: number }).round = 2;
    await assertRejects(
      () => verifyBlock(edge.ctx, opened.height, tamperedTx, found.certificate),
      CertificateError,
      "tx_root",
    );
    const badCertificate = structuredClone(found.certificate);
    badCertificate.signatures = badCertificate.signatures.slice(0, 2); // below 2f + 1
    await assertRejects(() => verifyBlock(edge.ctx, opened.height, found.block, badCertificate));
  } finally {
    await cluster.halt();
    await cluster.stop();
  }
});
