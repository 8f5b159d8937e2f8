// One fixture per format: detection from the header, default identity drops, labels, classes,
// missing-value tokens, and the CSV details (quotes, CRLF, newlines inside quotes).
import { assert, assertEquals } from "../../assert.ts";
import { join } from "node:path";
import { ciciomtClassFromFileName } from "../../../ml/data/formats.ts";
import { readCsvRecords, readLineBatches } from "../../../ml/data/lines.ts";
import { openRecordSource } from "../../../ml/data/records.ts";
import { loadTable } from "../../../ml/data/table.ts";

const FIXTURES = new URL("../../fixtures/data/", import.meta.url).pathname;
const fixture = (name: string) => join(FIXTURES, name);
const droppedNames = (t: { dropped: { column: string }[] }) => t.dropped.map((d) => d.column);

Deno.test("format: CICFlowMeter CSV with CRLF, padded names, Infinity/NaN as missing", async () => {
  const table = await loadTable({ path: fixture("cicflowmeter.csv") });
  assertEquals(table.format, "cicflowmeter");
  assertEquals(table.rows, 30);
  assertEquals(table.classNames, ["BENIGN", "DDoS", "PortScan"]);
  for (const id of ["Flow ID", "Src IP", "Src Port", "Dst IP", "Timestamp"]) {
    assert(droppedNames(table).includes(id), id);
  }
  assertEquals(table.timeColumn, "Timestamp");
  assertEquals(table.missing["Flow Byts/s"], 4);
  const dstPort = table.columns.find((c) => c.name === "Dst Port");
  assertEquals(dstPort?.kind, "categorical");
  assert(!table.columns.some((c) => c.name === "Label"));
});

Deno.test("format: CICIoMT2024 directory, class from each file name", async () => {
  const table = await loadTable({ path: fixture("ciciomt") });
  assertEquals(table.format, "ciciomt2024");
  assertEquals(table.files.length, 6);
  assertEquals(table.classNames, ["Benign", "DDoS", "DoS", "MQTT", "Recon", "Spoofing"]);
  assertEquals(table.rows, 12 + 5 * 6);
  assertEquals(table.labelColumns, ["file_class"]);
  // A single file of the set works too.
  const one = await loadTable({ path: fixture("ciciomt/Benign_train.pcap.csv") }, {
    normalLabel: "Benign",
  });
  assertEquals(one.classNames, ["Benign"]);
});

Deno.test("format: CICIoMT2024 file names map to the six categories", () => {
  const cases: [string, string | null][] = [
    ["TCP_IP-DDoS-UDP1_train.pcap.csv", "DDoS"],
    ["TCP_IP-DDoS-SYN3_test.pcap.csv", "DDoS"],
    ["TCP_IP-DoS-ICMP2_train.pcap.csv", "DoS"],
    ["Benign_train.pcap.csv", "Benign"],
    ["Benign_test.pcap.csv", "Benign"],
    ["MQTT-Malformed_Data_train.pcap.csv", "MQTT"],
    ["MQTT-DDoS-Publish_Flood_train.pcap.csv", "MQTT"],
    ["Recon-OS_Scan_train.pcap.csv", "Recon"],
    ["ARP_Spoofing_test.pcap.csv", "Spoofing"],
    ["/data/x/Recon-VulScan_train.pcap.csv", "Recon"],
    ["whatever.csv", null],
  ];
  for (const [name, expected] of cases) {
    assertEquals(ciciomtClassFromFileName(name), expected, name);
  }
});

Deno.test("format: Zeek conn.log TSV, IoT-23 label quirk, - and (empty) are missing", async () => {
  const table = await loadTable({ path: fixture("zeek_conn_labeled.log") });
  assertEquals(table.format, "zeek-conn");
  assertEquals(table.rows, 40);
  assertEquals(table.classNames, ["Benign", "PartOfAHorizontalPortScan"]);
  assertEquals(table.labelColumns, ["detailed-label", "label"]);
  for (const id of ["ts", "uid", "id.orig_h", "id.resp_h", "id.orig_p", "tunnel_parents"]) {
    assert(droppedNames(table).includes(id), id);
  }
  assertEquals(table.timeColumn, "ts");
  assert(table.missing["duration"] > 0);
  assertEquals(table.columns.find((c) => c.name === "proto")?.kind, "categorical");
  assertEquals(table.columns.find((c) => c.name === "orig_bytes")?.kind, "numeric");
});

Deno.test("format: Zeek conn.log with a separate uid,label file equals the labelled log", async () => {
  const joined = await loadTable({ path: fixture("zeek_conn.log") }, {
    labelsFile: fixture("zeek_labels.csv"),
  });
  const labelled = await loadTable({ path: fixture("zeek_conn_labeled.log") });
  assertEquals(joined.classNames, labelled.classNames);
  assertEquals(Array.from(joined.labels), Array.from(labelled.labels));
  // Without labels there is nothing to train on: a clear error.
  let message = "";
  try {
    await loadTable({ path: fixture("zeek_conn.log") });
  } catch (error) {
    message = (error as Error).message;
  }
  assert(message.includes("no label column"), message);
});

Deno.test("format: Zeek JSON lines", async () => {
  const table = await loadTable({ path: fixture("zeek_conn_json.log") });
  assertEquals(table.format, "zeek-conn");
  assertEquals(table.rows, 40);
  assertEquals(table.classNames, ["Benign", "PartOfAHorizontalPortScan"]);
  const tsv = await loadTable({ path: fixture("zeek_conn_labeled.log") });
  assertEquals(Array.from(table.labels), Array.from(tsv.labels));
});

Deno.test("format: ToN_IoT network CSV uses type for classes, label is label-derived", async () => {
  const table = await loadTable({ path: fixture("ton_iot.csv") });
  assertEquals(table.format, "ton-iot");
  assertEquals(table.classNames, ["normal", "ddos", "scanning", "xss"]);
  for (const id of ["ts", "src_ip", "dst_ip", "src_port"]) {
    assert(droppedNames(table).includes(id), id);
  }
  assertEquals(table.timeColumn, "ts");
  // A quoted http_uri containing a comma stays one field.
  assertEquals(table.columns.find((c) => c.name === "dst_port")?.kind, "categorical");
  const uri = table.columns.find((c) => c.name === "http_uri");
  assert(
    uri?.kind === "categorical" &&
      uri.vocabulary.includes("/index.php?q=<script>alert(1),x</script>"),
  );
});

Deno.test("format: generic CSV with --label, --drop, quotes and a newline inside quotes", async () => {
  const table = await loadTable(
    { path: fixture("generic_quoted.csv") },
    { format: "generic", labelColumn: "class", normalLabel: "ok", drop: ["proto"] },
  );
  assertEquals(table.format, "generic");
  assertEquals(table.rows, 30);
  assertEquals(table.classNames, ["ok", "bad", "worse"]);
  assert(droppedNames(table).includes("host"), "host is an address-like identity column");
  assertEquals(table.dropped.find((d) => d.column === "proto")?.reason, "dropped with --drop");
  const note = table.columns.find((c) => c.name === "note");
  assert(note?.kind === "categorical");
  assert(note.vocabulary.includes("line one\nline two"));
  assert(note.vocabulary.includes('has "quotes", and comma'));
  // --keep re-enables an identity column.
  const kept = await loadTable(
    { path: fixture("generic_quoted.csv") },
    { format: "generic", labelColumn: "class", normalLabel: "ok", keep: ["host"] },
  );
  assert(kept.columns.some((c) => c.name === "host"));
});

Deno.test("format: auto-detection says which format it chose and why", async () => {
  const expected: [string, string][] = [
    ["cicflowmeter.csv", "cicflowmeter"],
    ["ciciomt", "ciciomt2024"],
    ["zeek_conn_labeled.log", "zeek-conn"],
    ["zeek_conn_json.log", "zeek-conn"],
    ["ton_iot.csv", "ton-iot"],
    ["generic_quoted.csv", "generic"],
  ];
  for (const [name, format] of expected) {
    const source = await openRecordSource({ path: fixture(name) });
    assertEquals(source.format, format, name);
    assert(source.formatReason.length > 10, source.formatReason);
  }
});

Deno.test("csv: records from lines, a web stream and an iterable give the same fields", async () => {
  const text = 'a,b,c\r\n1,"x,y",3\r\n4,"multi\nline",6\r\n7,"say ""hi""",9\r\n,,\r\n';
  const collect = async (input: Parameters<typeof readLineBatches>[0]) => {
    const out: { fields: string[]; line: number }[] = [];
    for await (const batch of readCsvRecords(readLineBatches(input), "t")) out.push(...batch);
    return out;
  };
  const bytes = new TextEncoder().encode(text);
  // Split the bytes mid-character and mid-line to exercise the chunk boundaries.
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 5) controller.enqueue(bytes.subarray(i, i + 5));
      controller.close();
    },
  });
  const fromStream = await collect({ stream });
  const fromLines = await collect({ lines: text.split("\n").slice(0, -1) });
  assertEquals(fromStream, [
    { fields: ["a", "b", "c"], line: 1 },
    { fields: ["1", "x,y", "3"], line: 2 },
    { fields: ["4", "multi\nline", "6"], line: 3 },
    { fields: ["7", 'say "hi"', "9"], line: 5 },
    { fields: ["", "", ""], line: 6 },
  ]);
  assertEquals(fromLines, fromStream);
});
