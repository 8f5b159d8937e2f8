// Writes the train/validation/test split that `iomt-sfl run` uses for its embedded synthetic data
// (12,000 rows, seed 0, binary labels, 10 IID devices) as CSV (scaled features, label last), so a
// reference model in another tool sees exactly the same rows:
//   deno run -A bench/export_split.ts /tmp/syn && python3 bench/baseline_lr.py /tmp/syn
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { prepareDataset } from "../ml/data/prepare.ts";
import type { LabeledMatrix } from "../ml/data/types.ts";

const outDir = process.argv[2] ?? "split-csv";
mkdirSync(outDir, { recursive: true });
const data = await prepareDataset({
  source: { synthetic: { rows: 12_000, seed: 0 } },
  labelMode: "binary",
  seed: 0,
  devices: { count: 10, partition: "iid" },
});
const dump = (m: LabeledMatrix, name: string) => {
  const width = m.featureNames.length;
  const lines: string[] = [];
  for (let r = 0; r < m.rows; r++) {
    lines.push([...m.features.slice(r * width, (r + 1) * width), m.labels[r]].join(","));
  }
  writeFileSync(join(outDir, `${name}.csv`), lines.join("\n") + "\n");
};
dump(data.train, "train");
dump(data.validation, "validation");
dump(data.test, "test");
console.log(
  `${outDir}: train ${data.train.rows}, validation ${data.validation.rows}, test ${data.test.rows} rows`,
);
