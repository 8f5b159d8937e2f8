// Negative space: every kind of bad input fails with a message naming file, line and column,
// or is skipped and counted with skipBadRows. Nothing is half-loaded.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BadRowError, DataError } from "../../../ml/data/errors.ts";
import { readLineBatches } from "../../../ml/data/lines.ts";
import { inspectDataset } from "../../../ml/data/prepare.ts";
import { openRecordSource } from "../../../ml/data/records.ts";
import { loadTable } from "../../../ml/data/table.ts";

const FIXTURES = new URL("../../fixtures/data/", import.meta.url).pathname;
const fixture = (name: string) => join(FIXTURES, name);
const generic = { format: "generic" as const, labelColumn: "class", normalLabel: "ok" };

Deno.test("bad input: ragged row names file and line; skipBadRows skips and counts it", async () => {
  const path = fixture("bad_ragged.csv");
  const error = await assertRejects(() => loadTable({ path }, generic), BadRowError);
  assertStringIncludes(error.message, `${path}, line 8: expected 6 fields, found 5`);
  const table = await loadTable({ path }, { ...generic, skipBadRows: true });
  assertEquals(table.rows, 11);
  assertEquals(table.badRows.skipped, 1);
  assertEquals(table.badRows.byKind, { ragged: 1 });
});

Deno.test("bad input: text in a numeric column names file, line and column", async () => {
  const path = fixture("bad_text_numeric.csv");
  const error = await assertRejects(() => loadTable({ path }, generic), BadRowError);
  assertStringIncludes(
    error.message,
    `${path}, line 10, column "pkts": text "many" in a numeric column`,
  );
  const table = await loadTable({ path }, { ...generic, skipBadRows: true });
  assertEquals(table.badRows.byKind, { "non-numeric": 1 });
  // The skipped row left no trace: every column has the same length.
  for (const column of table.columns) {
    assertEquals(
      column.kind === "numeric" ? column.values.length : column.codes.length,
      table.rows,
    );
  }
  assertEquals(table.labels.length, table.rows);
});

Deno.test("bad input: empty file, header only", async () => {
  await assertRejects(
    () => loadTable({ path: fixture("bad_empty.csv") }, generic),
    DataError,
    "file is empty",
  );
  await assertRejects(
    () => loadTable({ path: fixture("bad_header_only.csv") }, generic),
    DataError,
    "no data rows after the header",
  );
});

Deno.test("bad input: a missing label column, a missing label value", async () => {
  const path = fixture("generic_quoted.csv");
  const error = await assertRejects(
    () => loadTable({ path }, { format: "generic", labelColumn: "verdict" }),
    DataError,
  );
  assertStringIncludes(error.message, `${path}, line 1, column "verdict": label column not found`);
  await assertRejects(
    () => loadTable({ path }, { format: "generic" }),
    DataError,
    "no label column",
  );
  const missing = fixture("bad_missing_label.csv");
  await assertRejects(
    () => loadTable({ path: missing }, generic),
    BadRowError,
    `line 6, column "class": missing label`,
  );
  const table = await loadTable({ path: missing }, { ...generic, skipBadRows: true });
  assertEquals(table.badRows.byKind, { "missing-label": 1 });
});

Deno.test("bad input: binary junk is refused, not parsed", async () => {
  const error = await assertRejects(
    () => loadTable({ path: fixture("bad_binary.bin") }, generic),
    DataError,
  );
  assert(/not UTF-8|NUL bytes|longer than/.test(error.message), error.message);
  assertStringIncludes(error.message, fixture("bad_binary.bin"));
});

Deno.test("bad input: an unterminated quote names the line it starts on", async () => {
  const path = fixture("bad_unterminated_quote.csv");
  await assertRejects(
    () => loadTable({ path }, generic),
    DataError,
    `${path}, line 5: unterminated quoted field at end of file`,
  );
});

Deno.test("bad input: a directory with mixed schemas names the file and column", async () => {
  const error = await assertRejects(
    () => openRecordSource({ path: fixture("ciciomt_mixed") }),
    DataError,
  );
  assertStringIncludes(
    error.message,
    'Recon-Port_Scan_train.pcap.csv, line 1, column "Rate_x": mixed schemas',
  );
});

Deno.test("bad input: lines longer than the limit fail instead of growing memory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-bad-"));
  try {
    const path = join(dir, "long.csv");
    writeFileSync(path, "a,b\n1," + "9".repeat(5000) + "\n");
    const read = async () => {
      for await (const _ of readLineBatches({ path }, { lineCharsMax: 1000 })) { /* drain */ }
    };
    await assertRejects(read, DataError, "line 2: line longer than 1000 characters");
    // Same limit with no newline at all (one huge line, e.g. a binary without NULs).
    writeFileSync(path, "x".repeat(300_000));
    await assertRejects(
      async () => {
        for await (const _ of readLineBatches({ path }, { lineCharsMax: 100_000 })) { /* drain */ }
      },
      DataError,
      "line 1: line longer than",
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("bad input: invalid UTF-8 and NUL bytes name the line", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-bad-"));
  try {
    const path = join(dir, "bytes.csv");
    writeFileSync(
      path,
      new Uint8Array([...new TextEncoder().encode("a,b\n1,2\n3,"), 0xff, 0xfe, 10]),
    );
    await assertRejects(
      async () => {
        for await (const _ of readLineBatches({ path })) { /* drain */ }
      },
      DataError,
      "line 3: not UTF-8",
    );
    writeFileSync(path, "a,b\n1,2\n3,\u00004\n");
    await assertRejects(
      async () => {
        for await (const _ of readLineBatches({ path })) { /* drain */ }
      },
      DataError,
      "line 3: contains NUL bytes",
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("bad input: usage-level mistakes in options are data errors naming the column", async () => {
  const path = fixture("ton_iot.csv");
  await assertRejects(
    () => loadTable({ path }, { drop: ["nope"] }),
    DataError,
    'column "nope": no such column',
  );
  await assertRejects(
    () => loadTable({ path }, { keep: ["nope"] }),
    DataError,
    'column "nope": no such column',
  );
  await assertRejects(
    () => inspectDataset({ source: { path }, allowLeaky: ["src_ip"] }),
    DataError,
    "--allow-leaky names a column that is not a feature",
  );
  await assertRejects(
    () =>
      loadTable({ path: fixture("generic_quoted.csv") }, {
        format: "generic",
        labelColumn: "class",
      }),
    DataError,
    "no normal class among the labels",
  );
  await assertRejects(
    () => loadTable({ path: join(FIXTURES, "nothing-here.csv") }),
    DataError,
    "no such file",
  );
});

Deno.test("bad input: a bad JSON line in a Zeek JSON log is a bad row", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iomt-bad-"));
  try {
    const path = join(dir, "conn.json");
    const good = (i: number, label: string) =>
      JSON.stringify({
        ts: 1 + i,
        uid: `C${i}`,
        "id.orig_h": "10.0.0.1",
        proto: "tcp",
        duration: i / 10,
        label,
      });
    writeFileSync(
      path,
      [good(1, "Benign"), good(2, "Malicious"), "{not json", good(3, "Benign")].join("\n") + "\n",
    );
    await assertRejects(() => loadTable({ path }), BadRowError, `${path}, line 3: not valid JSON`);
    const table = await loadTable({ path }, { skipBadRows: true });
    assertEquals(table.rows, 3);
    assertEquals(table.badRows.byKind, { "bad-json": 1 });
  } finally {
    rmSync(dir, { recursive: true });
  }
});
