// Raw rows never leave a device, on the wire, in every mode (issue #7 item 2, issue #9 item 3).
//
// A deployment from `iomt-sfl init` (1 validator, 1 edge, 2 devices) runs as processes of the
// compiled binary. Each device talks to the edge and the validator only through a recording TCP
// proxy of this test: its node config's edge_url and its copy of the genesis (validator
// endpoints) name the proxies, and the test checks from /proc that the device's TCP connections
// only ever go to them. Every byte the devices send is searched for their raw feature values: as
// text in several number formats and as little-endian float32/float64, raw and standardized, for
// a sample of rows × distinctive features. Controls show the search finds the values where they
// are (the CSV's bytes; the values planted into the recorded bytes), so the test can fail.
// SplitFed split training (one device with `iomt-sfl device --clip`: its activation frames must
// respect the clip norm), the FedAvg baseline, and detection (`iomt-sfl detect` in a network
// namespace without any interface up, and under strace when available: no socket connects).
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { requireBinary, runBinary } from "./binary.ts";
import { prepareDataset } from "../../ml/data/prepare.ts";
import { decodeMessage } from "../../ml/wire/frame.ts";

const decoder = new TextDecoder();
const SAMPLE_ROWS = 200;

// ---------------------------------------------------------------- recording proxy

class RecordingProxy {
  readonly chunks: Uint8Array[] = [];
  connections = 0;
  readonly #listener: Deno.Listener;
  readonly #open = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;

  constructor(readonly name: string, readonly target: { hostname: string; port: number }) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async #accept() {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.connections++;
      void this.#relay(conn);
    }
  }

  async #relay(client: Deno.Conn) {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect(this.target);
    } catch {
      client.close();
      return;
    }
    this.#open.add(client);
    this.#open.add(upstream);
    const pump = async (from: Deno.Conn, to: Deno.Conn, record: boolean) => {
      const buffer = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await from.read(buffer);
          if (n === null) break;
          const bytes = buffer.slice(0, n);
          if (record) this.chunks.push(bytes);
          for (let at = 0; at < bytes.length;) at += await to.write(bytes.subarray(at));
        }
        await to.closeWrite().catch(() => {});
      } catch { /* peer reset */ }
    };
    await Promise.allSettled([pump(client, upstream, true), pump(upstream, client, false)]);
    for (const c of [client, upstream]) {
      this.#open.delete(c);
      try {
        c.close();
      } catch { /* closed */ }
    }
  }

  bytes(): Uint8Array {
    return concat(this.chunks);
  }

  async close() {
    this.#listener.close();
    for (const c of this.#open) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#accepting;
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function freePort(): Promise<number> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return await Promise.resolve(port);
}

// ---------------------------------------------------------------- which remote ports a pid uses

/** Remote TCP ports of the sockets process `pid` holds right now (loopback, IPv4 and IPv6). */
function remotePortsOf(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch { /* fd closed meanwhile */ }
    }
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || !inodes.has(cols[9])) continue;
      const state = cols[3];
      if (state === "0A") continue; // LISTEN: none expected, and not a connection
      const remotePort = parseInt(cols[2].split(":")[1], 16);
      if (remotePort !== 0) ports.push(remotePort);
    }
  }
  return ports;
}

// ---------------------------------------------------------------- needles

interface Needles {
  /** Decimal texts of values, matched against whole numeric tokens of the bytes. */
  text: Set<string>;
  /** Byte patterns (8 or 16 bytes) with what they encode, for the report. */
  binary: { bytes: Uint8Array; what: string }[];
  /** Raw values: the CSV cells' own texts (the control finds them in the CSV). */
  literals?: Set<string>;
}

const isDistinctive = (v: number) =>
  Number.isFinite(v) && v !== 0 && Math.abs(v) !== 1 && Math.abs(v) > 1e-4;

function f32(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}
function f64(values: number[]): Uint8Array {
  return new Uint8Array(Float64Array.from(values).buffer);
}

/** Text forms of a raw value: the CSV's literal, JS's shortest form, fixed and exponential. */
function textForms(literal: string | null, v: number): string[] {
  const forms = new Set<string>();
  if (literal !== null) forms.add(literal.trim());
  forms.add(String(v));
  for (const d of [2, 3, 4, 6]) forms.add(v.toFixed(d));
  forms.add(v.toPrecision(6));
  forms.add(v.toExponential(4));
  // Short or integer texts (ports, counts, "97") occur in any HTTP request: not distinctive.
  return [...forms].filter((t) => /[.e]/.test(t) && t.replace(/[^0-9]/g, "").length >= 3);
}

/** Raw values of a sample of CSV rows: text, float64 singles (not float32-exact, so their low
 * bytes are not zeros), float32 and float64 pairs of adjacent numeric columns. */
function rawNeedles(csv: string, rows: number): Needles {
  const lines = csv.trim().split("\n");
  const header = lines[0].split(",");
  const skip = new Set(["StartTime", "SrcAddr", "DstAddr", "SrcMac", "DstMac", "Label"]);
  const text = new Set<string>();
  const literals = new Set<string>();
  const binary: Needles["binary"] = [];
  const step = Math.max(1, Math.floor((lines.length - 1) / rows));
  for (let r = 1; r < lines.length; r += step) {
    const cells = lines[r].split(",");
    const values = cells.map((c, i) =>
      skip.has(header[i]) || !/^\s*-?\d/.test(c) ? NaN : Number(c)
    );
    values.forEach((v, i) => {
      if (!isDistinctive(v)) return;
      const forms = textForms(cells[i], v);
      for (const t of forms) text.add(t);
      if (forms.includes(cells[i].trim())) literals.add(cells[i].trim());
      if (Math.fround(v) !== v) binary.push({ bytes: f64([v]), what: `raw ${header[i]} f64` });
    });
    for (let i = 0; i + 1 < values.length; i++) {
      const [a, b] = [values[i], values[i + 1]];
      if (!isDistinctive(a) || !isDistinctive(b)) continue;
      binary.push({ bytes: f32([a, b]), what: `raw ${header[i]},${header[i + 1]} f32` });
      binary.push({ bytes: f64([a, b]), what: `raw ${header[i]},${header[i + 1]} f64` });
    }
  }
  return { text, binary, literals };
}

/** The device's standardized rows (what its CNN reads): float32 and float64 pairs of adjacent
 * features, and their text. */
function standardizedNeedles(features: Float32Array, width: number, rows: number): Needles {
  const text = new Set<string>();
  const binary: Needles["binary"] = [];
  const total = features.length / width;
  const step = Math.max(1, Math.floor(total / rows));
  for (let r = 0; r < total; r += step) {
    const row = Array.from(features.subarray(r * width, (r + 1) * width));
    row.forEach((v) => {
      if (!isDistinctive(v)) return;
      for (const t of [String(v), v.toFixed(4), v.toFixed(6)]) {
        if (t.replace(/[^0-9]/g, "").length >= 4) text.add(t);
      }
    });
    for (let i = 0; i + 1 < width; i++) {
      if (!isDistinctive(row[i]) || !isDistinctive(row[i + 1])) continue;
      binary.push({ bytes: f32([row[i], row[i + 1]]), what: `standardized f32 [${r}, ${i}]` });
      binary.push({ bytes: f64([row[i], row[i + 1]]), what: `standardized f64 [${r}, ${i}]` });
    }
  }
  return { text, binary };
}

interface Hits {
  text: string[];
  binary: string[];
}

function search(haystack: Uint8Array, needles: Needles): Hits {
  // Text: whole numeric tokens of the bytes read as Latin-1 (a leaked "36.6" is a token; "136.6"
  // is not a leak of it).
  const latin1 = new TextDecoder("latin1").decode(haystack);
  const tokens = new Set(latin1.match(/-?\d+(?:\.\d+)?(?:e[-+]?\d+)?/gi) ?? []);
  const text = [...needles.text].filter((t) => tokens.has(t));
  // Binary: index needles by their first 8 bytes (two u32 words: float64 patterns of float32
  // values share their low word, and activations hold many zero words), scan every byte offset.
  const byHead = new Map<number, Map<number, { bytes: Uint8Array; what: string }[]>>();
  for (const n of needles.binary) {
    const v = new DataView(n.bytes.buffer);
    const head = v.getUint32(0, true), second = v.getUint32(4, true);
    const inner = byHead.get(head) ?? new Map();
    byHead.set(head, inner);
    const list = inner.get(second) ?? [];
    list.push(n);
    inner.set(second, list);
  }
  const view = new DataView(haystack.buffer, haystack.byteOffset, haystack.byteLength);
  const binary: string[] = [];
  for (let at = 0; at + 8 <= haystack.length; at++) {
    const list = byHead.get(view.getUint32(at, true))?.get(view.getUint32(at + 4, true));
    if (!list) continue;
    for (const n of list) {
      if (at + n.bytes.length > haystack.length) continue;
      let same = true;
      for (let k = 8; k < n.bytes.length && same; k++) same = haystack[at + k] === n.bytes[k];
      if (same) binary.push(`${n.what} at byte ${at}`);
    }
  }
  return { text, binary };
}

// ---------------------------------------------------------------- HTTP bodies of the recording

/** Request bodies of a recorded client → server byte stream (Content-Length or chunked). */
function requestBodies(stream: Uint8Array): { head: string; body: Uint8Array }[] {
  const out: { head: string; body: Uint8Array }[] = [];
  let at = 0;
  const findCrlfCrlf = (from: number) => {
    for (let i = from; i + 3 < stream.length; i++) {
      if (
        stream[i] === 13 && stream[i + 1] === 10 && stream[i + 2] === 13 && stream[i + 3] === 10
      ) {
        return i;
      }
    }
    return -1;
  };
  while (at < stream.length) {
    const end = findCrlfCrlf(at);
    if (end < 0) break;
    const head = decoder.decode(stream.subarray(at, end));
    at = end + 4;
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length) {
      out.push({ head, body: stream.subarray(at, at + Number(length[1])) });
      at += Number(length[1]);
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts: Uint8Array[] = [];
      for (;;) {
        const lineEnd = stream.indexOf(13, at);
        const size = parseInt(decoder.decode(stream.subarray(at, lineEnd)), 16);
        at = lineEnd + 2;
        if (!(size > 0)) {
          at += 2;
          break;
        }
        parts.push(stream.subarray(at, at + size));
        at += size + 2;
      }
      out.push({ head, body: concat(parts) });
    } else {
      out.push({ head, body: new Uint8Array(0) });
    }
  }
  return out;
}

// ---------------------------------------------------------------- one deployment

interface Child {
  process: Deno.ChildProcess;
  lines: string[];
  stderr: string[];
  done: Promise<unknown>;
}

function spawn(args: string[], name: string): Child {
  const process = new Deno.Command(requireBinary(), {
    args: ["--log-level", "info", ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "piped", // children exit when this pipe closes (exitWhenParentDies)
  }).spawn();
  const lines: string[] = [];
  const stderr: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      into.push(...parts);
    }
    if (rest) into.push(rest);
  };
  const done = Promise.all([collect(process.stdout, lines), collect(process.stderr, stderr)])
    .catch((error) => stderr.push(`${name}: ${error}`));
  return { process, lines, stderr, done };
}

async function until(what: string, check: () => boolean, timeoutMs: number, tail: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${tail()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Recorded {
  /** Bytes device-0 and device-1 sent, all connections. */
  sent: Uint8Array[];
  /** Per device: request bodies sent to the edge. */
  edgeBodies: { head: string; body: Uint8Array }[][];
  /** Per device: ports seen in its TCP connections and the proxies' ports. */
  remotePorts: Set<number>[];
  proxyPorts: Set<number>[];
  proxiedConnections: number[];
}

async function runDeployment(
  dir: string,
  csv: string,
  mode: "splitfed" | "fedavg",
  deviceArgs: string[][],
): Promise<Recorded> {
  const started = performance.now();
  const phase = (what: string) =>
    console.log(`${mode}: ${what} after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const validatorPort = await freePort();
  const edgePort = await freePort();
  const deployment = join(dir, mode);
  const init = await runBinary([
    "init",
    "--devices",
    "2",
    "--validators",
    "1",
    "--mode",
    mode,
    "--rounds",
    "1",
    "--validator-port",
    String(validatorPort),
    "--edge-port",
    String(edgePort),
    "--out",
    deployment,
  ]);
  assertEquals(init.code, 0, init.stderr);
  // The trial: the CSV (every node derives the same split from it), small and short.
  for (const file of readdirSync(join(deployment, "nodes"))) {
    const path = join(deployment, "nodes", file);
    const node = JSON.parse(readFileSync(path, "utf8"));
    node.trial = {
      ...node.trial,
      data: { path: csv },
      devices: 2,
      rounds: 1,
      localEpochs: 1,
      batchSize: 64,
      minDevices: 2,
      roundTimeoutMs: 120_000,
    };
    writeFileSync(path, JSON.stringify(node, null, 2));
  }
  const genesis = JSON.parse(readFileSync(join(deployment, "genesis.json"), "utf8"));
  const children: Child[] = [];
  const proxies: RecordingProxy[][] = [];
  const sample = new Map<number, Set<number>>();
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    const validator = genesis.validators[0];
    const v = spawn([
      "validator",
      "--genesis",
      join(deployment, "genesis.json"),
      "--key",
      join(deployment, "keys", "validator-0.json"),
      "--db",
      join(deployment, "data", "validator-0.db"),
      "--listen",
      `127.0.0.1:${validatorPort}`,
    ], "validator-0");
    children.push(v);
    const edge = spawn(["edge", "--node", join(deployment, "nodes", "edge-0.json")], "edge-0");
    children.push(edge);
    const tail = () =>
      children.map((c) => c.stderr.slice(-15).join("\n")).join("\n---\n").slice(-6000);
    await until(
      "the edge to listen",
      () => edge.lines.some((l) => l.includes('"event":"ready"')),
      120_000,
      tail,
    );
    phase("edge listening");
    // Each device: proxies for the edge and the validator, its own genesis copy naming them.
    for (let d = 0; d < 2; d++) {
      const toEdge = new RecordingProxy(`device-${d} → edge`, {
        hostname: "127.0.0.1",
        port: edgePort,
      });
      const toValidator = new RecordingProxy(`device-${d} → validator`, {
        hostname: "127.0.0.1",
        port: validatorPort,
      });
      proxies.push([toEdge, toValidator]);
      const mine = structuredClone(genesis);
      mine.validators[0].endpoint = toValidator.url;
      assertEquals(validator.endpoint, `http://127.0.0.1:${validatorPort}`);
      mine.params.ext.edge_endpoints = { "edge-0": toEdge.url };
      writeFileSync(join(deployment, `genesis-device-${d}.json`), JSON.stringify(mine, null, 2));
      const nodePath = join(deployment, "nodes", `device-${d}.json`);
      const node = JSON.parse(readFileSync(nodePath, "utf8"));
      node.genesis = `genesis-device-${d}.json`;
      node.edge_url = toEdge.url;
      writeFileSync(nodePath, JSON.stringify(node, null, 2));
      const device = spawn(["device", "--node", nodePath, ...deviceArgs[d]], `device-${d}`);
      children.push(device);
      sample.set(device.process.pid, new Set());
    }
    sampler = setInterval(() => {
      for (const [pid, ports] of sample) for (const p of remotePortsOf(pid)) ports.add(p);
    }, 50);
    await until(
      "the edge to finish its round",
      () => edge.lines.some((l) => l.includes('"event":"done"')),
      300_000,
      tail,
    );
    phase("round done");
  } finally {
    clearInterval(sampler);
    for (const c of children) {
      try {
        c.process.kill("SIGTERM");
      } catch { /* exited */ }
    }
    await Promise.all(children.map((c) => c.process.status));
    await Promise.all(children.map((c) => c.done));
    for (const list of proxies) for (const p of list) await p.close();
    phase("processes stopped");
  }
  const pids = [...sample.keys()];
  return {
    sent: proxies.map((list) => concat(list.map((p) => p.bytes()))),
    edgeBodies: proxies.map(([toEdge]) => requestBodies(toEdge.bytes())),
    remotePorts: pids.map((pid) => sample.get(pid)!),
    proxyPorts: proxies.map((list) => new Set(list.map((p) => p.port))),
    proxiedConnections: proxies.map((list) => list.reduce((n, p) => n + p.connections, 0)),
  };
}

// ---------------------------------------------------------------- the test

function checkNoRawValues(
  recorded: Recorded,
  raw: Needles,
  standardized: Needles[],
  mode: string,
) {
  for (let d = 0; d < recorded.sent.length; d++) {
    const sent = recorded.sent[d];
    assert(sent.length > 10_000, `${mode} device-${d} sent only ${sent.length} bytes`);
    assert(
      recorded.proxiedConnections[d] > 0,
      `${mode} device-${d}: no connection via the proxies`,
    );
    // Everything it talked to went through the proxies (sampled every 50 ms from /proc).
    assert(recorded.remotePorts[d].size > 0, `${mode} device-${d}: no connection seen in /proc`);
    for (const port of recorded.remotePorts[d]) {
      assert(
        recorded.proxyPorts[d].has(port),
        `${mode} device-${d} connected to port ${port}, not one of its proxies ${[
          ...recorded.proxyPorts[d],
        ]}`,
      );
    }
    for (const [name, needles] of [["raw", raw], ["standardized", standardized[d]]] as const) {
      const hits = search(sent, needles);
      console.log(
        `${mode} device-${d}: ${sent.length} bytes over ${recorded.proxiedConnections[d]} ` +
          `connections; ${name}: ${needles.text.size} texts, ${needles.binary.length} byte ` +
          `patterns, ${hits.text.length + hits.binary.length} found`,
      );
      assertEquals(
        [...hits.text.slice(0, 5), ...hits.binary.slice(0, 5)],
        [],
        `${mode} device-${d} sent ${name} feature values (${sent.length} bytes searched)`,
      );
      // Control: the same search finds these values when they are in the bytes.
      const planted = concat([sent, ...needles.binary.slice(0, 3).map((n) => n.bytes)]);
      assertEquals(
        search(planted, needles).binary.length >= 3,
        true,
        `${mode} device-${d}: control did not find planted ${name} values`,
      );
    }
  }
}

Deno.test({
  name:
    "raw rows never leave a device: every byte two device processes send (SplitFed, FedAvg) holds none of their feature values; detect opens no socket",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = mkdtempSync(join(tmpdir(), "iomt-wire-"));
    const csv = join(dir, "flows.csv");
    const generated = await runBinary([
      "data",
      "generate",
      "--rows",
      "2000",
      "--seed",
      "3",
      "--out",
      csv,
    ]);
    assertEquals(generated.code, 0, generated.stderr);
    const csvText = readFileSync(csv, "utf8");
    const raw = rawNeedles(csvText, SAMPLE_ROWS);
    assert(raw.text.size > 500 && raw.binary.length > 1000, `few needles: ${raw.text.size}`);

    // What each device's CNN reads: the same preparation the nodes do (data path, seed 0).
    const prepared = await prepareDataset({
      source: { path: csv },
      labelMode: "binary",
      seed: 0,
      devices: { count: 2, partition: "iid" },
    });
    const width = prepared.train.featureNames.length;
    const standardized = prepared.devices.map((p) =>
      standardizedNeedles(p.features, width, SAMPLE_ROWS)
    );

    // Control on real data: the CSV's own bytes contain the raw values as text.
    const literals = raw.literals!;
    const inCsv = new Set(search(new TextEncoder().encode(csvText), raw).text);
    const foundLiterals = [...literals].filter((t) => inCsv.has(t)).length;
    assert(
      literals.size > 200 && foundLiterals === literals.size,
      `control: ${foundLiterals} of ${literals.size} CSV cell texts found in the CSV itself`,
    );
    // Control: a device message that carried its rows instead of activations is caught.
    const leakyRows = new Uint8Array(prepared.devices[0].features.slice(0, 64 * width).buffer);
    assert(
      search(leakyRows, standardized[0]).binary.length > 0,
      "control: rows as float32 not found",
    );

    // SplitFed: device-0 unprotected; device-1 clips its activations with `device --clip`.
    const clip = 0.5;
    const split = await runDeployment(dir, csv, "splitfed", [[], ["--clip", String(clip)]]);
    checkNoRawValues(split, raw, standardized, "splitfed");
    const norms = split.edgeBodies.map((bodies) => {
      const out: number[] = [];
      for (const { head, body } of bodies) {
        if (!head.startsWith("POST /v1/edge/step")) continue;
        const frames = decodeMessage(body, "recorded split step");
        // A split step carries activations and labels: no third frame, no features frame.
        assertEquals(frames.map((f) => f.kind).sort(), ["activations", "labels"]);
        const acts = frames.find((f) => f.kind === "activations")!;
        const [rows] = acts.shape;
        const w = acts.data.length / rows;
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let i = r * w; i < (r + 1) * w; i++) s += acts.data[i] ** 2;
          out.push(Math.sqrt(s));
        }
      }
      return out;
    });
    assert(
      norms[0].length > 500 && norms[1].length > 500,
      `split steps: ${norms.map((n) => n.length)}`,
    );
    assert(
      Math.max(...norms[1]) <= clip * (1 + 1e-5),
      `device-1 (--clip ${clip}) sent a row of norm ${Math.max(...norms[1])}`,
    );
    assert(Math.max(...norms[0]) > clip, "device-0 is unclipped: its norms should exceed the clip");

    // FedAvg baseline: the devices send full model weights.
    const fedavg = await runDeployment(dir, csv, "fedavg", [[], []]);
    checkNoRawValues(fedavg, raw, standardized, "fedavg");

    // Detection: a model artifact, scored with no network at all.
    const modelDir = join(dir, "splitfed", "data", "edge-0", "model");
    const model = existsSync(join(modelDir, "weights.bin"))
      ? modelDir
      : await writeModel(dir, prepared);
    const detectArgs = [requireBinary(), "detect", "--model", model, "--all", "--json", csv];
    const plain = await runBinary(detectArgs.slice(1));
    assertEquals(plain.code, 0, plain.stderr);
    const isolated = await runBinary(detectArgs.slice(1), {
      command: ["unshare", "-n", requireBinary()],
    });
    assertEquals(isolated.code, 0, `detect without any network interface: ${isolated.stderr}`);
    assertEquals(isolated.stdout, plain.stdout, "detect's output depends on the network");
    assert(isolated.stdout.split("\n").filter((l) => l.startsWith("{")).length === 2000);
    if (existsSync("/usr/bin/strace")) {
      const traced = await runBinary(
        ["-f", "-qq", "-e", "trace=connect,sendto,sendmsg", ...detectArgs],
        { command: ["strace"] },
      );
      assertEquals(traced.code, 0, traced.stderr.slice(-2000));
      const inet = traced.stderr.split("\n").filter((l) => /AF_INET6?\b/.test(l));
      assertEquals(inet, [], "detect made IPv4/IPv6 network calls");
      // Control: the same trace does see a connection when the binary makes one.
      const control = await runBinary([
        "-f",
        "-qq",
        "-e",
        "trace=connect",
        requireBinary(),
        "ledger",
        "verify",
        "--db",
        "http://127.0.0.1:9",
        "--genesis",
        join(dir, "splitfed", "genesis.json"),
      ], { command: ["strace"] });
      assert(/connect\(.*AF_INET/.test(control.stderr), "strace control saw no connect");
    }
  },
});

async function writeModel(
  dir: string,
  prepared: Awaited<ReturnType<typeof prepareDataset>>,
): Promise<string> {
  const { saveModel } = await import("../../ml/artifact/model_artifact.ts");
  const { defaultModelConfig } = await import("../../ml/model/config.ts");
  const { deviceLayout, edgeLayout, initParams } = await import("../../ml/model/split_model.ts");
  const config = defaultModelConfig(prepared.train.featureNames.length, 2);
  const out = join(dir, "model");
  await saveModel(out, {
    config,
    device: initParams(deviceLayout(config), 1),
    edge: initParams(edgeLayout(config), 2),
    preprocessing: prepared.preprocessor.toJSON(),
    metadata: {
      createdAt: new Date().toISOString(),
      threshold: 0.5,
      classNames: [...prepared.train.classNames],
      featureNames: [...prepared.train.featureNames],
    },
  });
  return out;
}
