// Run under Bun by bun_test.ts: prints what must be identical on Deno and Bun.
import { createHash } from "node:crypto";
import { generateSyntheticRows } from "../../../ml/data/synthetic.ts";
import { prepareDataset } from "../../../ml/data/prepare.ts";

export async function fingerprint(): Promise<string> {
  const hash = createHash("sha256");
  for (const row of generateSyntheticRows({ rows: 3000, seed: 42 })) {
    hash.update(row.join(",") + "\n");
  }
  const fixture = new URL("../../fixtures/data/ton_iot.csv", import.meta.url).pathname;
  const data = await prepareDataset({
    source: { path: fixture },
    labelMode: "multiclass",
    devices: { count: 2, partition: "dirichlet" },
    seed: 1,
  });
  const features = createHash("sha256").update(new Uint8Array(data.train.features.buffer)).digest(
    "hex",
  );
  return JSON.stringify({
    synthetic: hash.digest("hex"),
    features,
    devices: data.report.devices.classCounts,
  });
}

if (import.meta.main) console.log(await fingerprint());
