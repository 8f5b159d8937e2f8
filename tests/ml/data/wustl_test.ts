// The real WUSTL-EHMS-2020 file (read from ../shared/datasets, never copied into the repo):
// loader figures match the data set's README, identifiers are dropped, and with them re-enabled
// the leak guard catches SrcMac.
import { assert, assertEquals } from "../../assert.ts";
import { existsSync } from "node:fs";
import { inspectDataset, prepareDataset } from "../../../ml/data/prepare.ts";
import { loadTable } from "../../../ml/data/table.ts";
import { accuracy, trainLogistic } from "./tiny_models.ts";

const WUSTL = new URL("../../../../shared/datasets/wustl-ehms-2020.csv", import.meta.url).pathname;
const present = existsSync(WUSTL);
if (!present) {
  console.warn(
    `SKIP wustl_test: ${WUSTL} not found (expected at ../shared/datasets/ relative to the repo)`,
  );
}

Deno.test(
  { name: "wustl: rows, classes, dropped identifiers and constants", ignore: !present },
  async () => {
    const table = await loadTable({ path: WUSTL });
    assertEquals(table.format, "wustl-ehms");
    assertEquals(table.rows, 16_318);
    assertEquals(table.header.length, 45);
    assertEquals(table.classNames, ["normal", "Data Alteration", "Spoofing"]);
    const counts = [0, 0, 0];
    for (const l of table.labels) counts[l]++;
    assertEquals(counts, [14_272, 922, 1_124]);
    const dropped = table.dropped.map((d) => d.column);
    for (const id of ["SrcAddr", "DstAddr", "Sport", "SrcMac", "DstMac", "Packet_num"]) {
      assert(
        dropped.includes(id),
        id,
      );
    }
    const flgs = table.columns.find((c) => c.name === "Flgs");
    assert(
      flgs?.kind === "categorical" && flgs.vocabulary.every((v) => v === v.trim()),
      "Flgs values are trimmed",
    );
    const report = await inspectDataset({ source: { path: WUSTL }, labelMode: "binary", seed: 0 });
    const constant = report.dropped.filter((d) => d.reason.startsWith("constant")).map((d) =>
      d.column
    );
    for (const name of ["Dir", "Dport", "SrcGap", "DstGap", "DIntPktAct", "dMinPktSz", "Trans"]) {
      assert(constant.includes(name), `${name} is constant (README)`);
    }
    assertEquals(report.leaks, [], "with identifiers dropped no column alone gives the label away");
  },
);

Deno.test({
  name: "wustl: with identifiers re-enabled the leak guard catches SrcMac",
  ignore: !present,
}, async () => {
  const keep = ["SrcAddr", "DstAddr", "Sport", "SrcMac", "DstMac", "Packet_num"];
  for (const labelMode of ["binary", "multiclass"] as const) {
    const report = await inspectDataset({ source: { path: WUSTL, keep }, labelMode, seed: 0 });
    const srcMac = report.leaks.find((l) => l.column === "SrcMac");
    assert(
      srcMac !== undefined,
      `${labelMode}: SrcMac must be flagged; leaks: ${JSON.stringify(report.leaks)}`,
    );
    assert(srcMac.score >= 0.99);
    assert(report.dropped.some((d) => d.column === "SrcMac" && d.reason.startsWith("leaky")));
  }
});

Deno.test({
  name: "wustl: honest figures: a linear model stays well below the 99% of leaky papers",
  ignore: !present,
}, async () => {
  const data = await prepareDataset({ source: { path: WUSTL }, labelMode: "binary", seed: 0 });
  const model = trainLogistic(data.train, 0, 20);
  const testAccuracy = accuracy(model, data.test);
  console.log(
    `WUSTL-EHMS binary, identifiers dropped: logistic test accuracy ${testAccuracy.toFixed(4)}`,
  );
  assert(testAccuracy > 0.87 && testAccuracy < 0.97, `logistic accuracy ${testAccuracy}`);
});
