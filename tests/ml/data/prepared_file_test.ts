// The prepared data file `run` hands to its processes: round trip equal to prepareDataset, and
// every damaged or mismatched file refused with a reason (never another trial's data).
import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { Buffer } from "node:buffer";
import { prepareDataset, type PrepareOptions } from "../../../ml/data/prepare.ts";
import {
  decodePreparedDataset,
  encodePreparedDataset,
  prepareOptionsKey,
} from "../../../ml/data/prepared_file.ts";

const options: PrepareOptions = {
  source: { synthetic: { rows: 3000, seed: 4 } },
  labelMode: "binary",
  seed: 3,
  devices: { count: 4, partition: "iid" },
};
const data = await prepareDataset(options);
const bytes = await encodePreparedDataset(data, options);

Deno.test("prepared file: decodes to the same splits, partitions and preprocessor", async () => {
  // A Node Buffer (what readFileSync returns) whose slice() is a view: decoding must copy.
  const fromDisk = Buffer.concat([Buffer.alloc(3), Buffer.from(bytes)]).subarray(3);
  const back = await decodePreparedDataset(fromDisk, options, "test");
  for (const split of ["train", "validation", "test"] as const) {
    assertEquals(back[split].rows, data[split].rows, split);
    assertEquals(back[split].features, data[split].features, split);
    assertEquals(back[split].labels, data[split].labels, split);
    assertEquals(back[split].featureNames, data[split].featureNames);
    assertEquals(back[split].classNames, data[split].classNames);
  }
  assertEquals(back.devices.length, 4);
  back.devices.forEach((device, d) => {
    assertEquals(device.features, data.devices[d].features, `device ${d}`);
    assertEquals(device.labels, data.devices[d].labels, `device ${d}`);
  });
  assertEquals(back.preprocessor.toJSON(), data.preprocessor.toJSON());
  assertEquals(back.report, data.report);
});

Deno.test("prepared file: options key ignores key order and undefined", () => {
  assertEquals(
    prepareOptionsKey({ seed: 1, source: { synthetic: { seed: 2, rows: 3 } } }),
    prepareOptionsKey({
      source: { synthetic: { rows: 3, seed: 2 } },
      seed: 1,
      labelMode: undefined,
    }),
  );
  assert(
    prepareOptionsKey({ seed: 1, source: { synthetic: { seed: 2, rows: 3 } } }) !==
      prepareOptionsKey({ seed: 2, source: { synthetic: { seed: 2, rows: 3 } } }),
  );
});

Deno.test("prepared file: another trial's options are refused", async () => {
  await assertRejects(
    () => decodePreparedDataset(bytes, { ...options, seed: 4 }, "node x"),
    Error,
    "node x: not a usable prepared data file: it was prepared for",
  );
  await assertRejects(
    () =>
      decodePreparedDataset(bytes, { ...options, devices: { count: 5, partition: "iid" } }, "x"),
    Error,
    "it was prepared for",
  );
});

Deno.test("prepared file: damage anywhere is caught by the digest or the bounds", async () => {
  const cases: [string, (b: Uint8Array) => Uint8Array, string][] = [
    ["empty", () => new Uint8Array(0), "0 bytes is too short"],
    ["magic", (b) => flip(b, 0), "wrong magic"],
    ["version", (b) => flip(b, 8), "version"],
    ["header byte", (b) => flip(b, 30), "SHA-256 does not match"],
    ["a feature byte", (b) => flip(b, Math.floor(b.length / 2)), "SHA-256 does not match"],
    ["the digest", (b) => flip(b, b.length - 1), "SHA-256 does not match"],
    ["truncated", (b) => b.subarray(0, b.length - 100), "SHA-256 does not match"],
  ];
  for (const [what, damage, reason] of cases) {
    await assertRejects(
      () => decodePreparedDataset(damage(bytes.slice()), options, what),
      Error,
      `${what}: not a usable prepared data file: ${reason}`,
    );
  }
});

Deno.test("prepared file: a consistent file whose sections disagree with its header", async () => {
  // Re-seal a file with a header that claims one row more: the digest passes, the bounds do not.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headerLength)));
  header.rows.test += 1;
  const forged = await reseal(bytes, header);
  await assertRejects(
    () => decodePreparedDataset(forged, options, "forged"),
    Error,
    "data bytes, the header's row counts need",
  );
  const badDevices = structuredClone(
    JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headerLength))),
  );
  badDevices.deviceRows[0] += 1;
  const forgedDevices = await reseal(bytes, badDevices);
  await assertRejects(
    () => decodePreparedDataset(forgedDevices, options, "devices"),
    Error,
    "device row counts do not add up",
  );
  const nonFinite = bytes.slice();
  const firstFeature = (16 + headerLength + 3) & ~3;
  new DataView(nonFinite.buffer).setFloat32(firstFeature, Number.NaN, true);
  const resealedNan = await resealBytes(nonFinite);
  await assertRejects(
    () => decodePreparedDataset(resealedNan, options, "nan"),
    Error,
    "non-finite value at row 0",
  );
});

function flip(b: Uint8Array, at: number): Uint8Array {
  b[at] ^= 0xff;
  return b;
}

/** The file's sections with another header, aligned and digested like the encoder does. */
async function reseal(original: Uint8Array, header: unknown): Promise<Uint8Array> {
  const view = new DataView(original.buffer, original.byteOffset, original.byteLength);
  const oldHeaderEnd = (16 + view.getUint32(12, true) + 3) & ~3;
  const sections = original.subarray(oldHeaderEnd, original.length - 32);
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const headerEnd = (16 + headerBytes.length + 3) & ~3;
  const out = new Uint8Array(headerEnd + sections.length + 32);
  out.set(original.subarray(0, 12), 0);
  new DataView(out.buffer).setUint32(12, headerBytes.length, true);
  out.set(headerBytes, 16);
  out.set(sections, headerEnd);
  return await resealBytes(out);
}

async function resealBytes(b: Uint8Array): Promise<Uint8Array> {
  const end = b.length - 32;
  b.set(
    new Uint8Array(await crypto.subtle.digest("SHA-256", b.subarray(0, end) as BufferSource)),
    end,
  );
  return b;
}
