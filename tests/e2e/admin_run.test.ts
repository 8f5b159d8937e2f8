// The admin actions of `iomt-sfl run`'s API against the compiled binary during a real
// multi-process trial (devices, edge, 4 validators): stop pauses after the round in progress,
// a quarantine committed on the ledger keeps the device out of the next round, start with a
// round budget runs exactly that many, readmit brings the device back; a wrong token changes
// nothing. After the trial the same API serves the trained model and scores posted flows.
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "../assert.ts";
import { linesOf, requireBinary, waitForLine } from "./binary.ts";

const TOKEN = "e2e-admin-token-0123456789";
const READ_TOKEN = "e2e-read-token-0123456789";
const STEP_TIMEOUT_MS = 240_000;

interface Status {
  roundState?: string;
  round?: number;
}

Deno.test({
  name: "run's admin API: stop, quarantine, start N rounds, readmit — then model and detect",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const out = join(mkdtempSync(join(tmpdir(), "iomt-admin-")), "trial");
    const child = new Deno.Command(requireBinary(), {
      args: [
        "run",
        ...["--devices", "3", "--rounds", "4", "--synthetic-rows", "3000"],
        ...["--batch-size", "128", "--admin-token", TOKEN, "--keep-ui", "--out", out],
        ...["--read-token", READ_TOKEN],
      ],
      stdout: "null",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const lines = linesOf(child.stderr);
    const log: string[] = [];
    try {
      const base = (await waitForLine(lines, /web UI at (http:\/\/\S+?)\/?$/, 60_000))[1];
      // Keep draining stderr (progress bars) so the run never blocks on a full pipe.
      const finishedLine = (async () => {
        for await (const line of { [Symbol.asyncIterator]: () => lines }) {
          log.push(line);
          if (/finished; the web UI stays/.test(line)) return true;
        }
        return false;
      })();
      const api = async (method: string, path: string, body?: unknown, token = TOKEN) => {
        const response = await fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const type = response.headers.get("content-type") ?? "";
        const data = type.includes("json")
          ? await response.json()
          : new Uint8Array(await response.arrayBuffer());
        return { status: response.status, data };
      };
      const status = async () => (await api("GET", "/api/v1/status")).data as Status;
      const until = async (what: string, test: (s: Status) => boolean) => {
        const deadline = Date.now() + STEP_TIMEOUT_MS;
        for (;;) {
          const s = await status();
          if (test(s)) return s;
          if (Date.now() > deadline) {
            throw new Error(
              `${what}: not within ${STEP_TIMEOUT_MS} ms; last status ${JSON.stringify(s)}\n${
                log.slice(-20).join("\n")
              }`,
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      };

      // Read-only views need the read token (or the admin token); the read token cannot administer.
      const anonymous = await fetch(`${base}/api/v1/status`);
      await anonymous.body?.cancel();
      assertEquals(anonymous.status, 401);
      assertEquals((await api("GET", "/api/v1/status", undefined, READ_TOKEN)).status, 200);
      assertEquals(
        (await api("POST", "/api/v1/admin/rounds/stop", undefined, READ_TOKEN)).status,
        403,
      );

      await until("the first round", (s) => (s.round ?? 0) >= 1);
      const refused = await api("POST", "/api/v1/admin/rounds/stop", undefined, "x".repeat(24));
      assertEquals(refused.status, 401, JSON.stringify(refused.data));
      assertEquals((await status()).roundState, "running", "a refused stop changes nothing");

      const stop = await api("POST", "/api/v1/admin/rounds/stop");
      assertEquals(stop.status, 202, JSON.stringify(stop.data));
      const paused = await until("the pause", (s) => s.roundState === "paused");
      const roundsAtPause = paused.round!;
      assert(roundsAtPause >= 1 && roundsAtPause < 4, `paused after round ${roundsAtPause}`);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      assertEquals((await status()).round, roundsAtPause, "no round runs while paused");

      const quarantine = await api("POST", "/api/v1/admin/devices/device-1/quarantine", {
        reason: "e2e: operator's decision",
      });
      assertEquals(quarantine.status, 202, JSON.stringify(quarantine.data));
      const unknown = await api("POST", "/api/v1/admin/devices/device-9/quarantine", {
        reason: "no such device",
      });
      assertEquals(unknown.status, 404, JSON.stringify(unknown.data));

      const one = await api("POST", "/api/v1/admin/rounds/start", { rounds: 1 });
      assertEquals(one.status, 202, JSON.stringify(one.data));
      await until(
        "one more round, then a pause",
        (s) => s.round === roundsAtPause + 1 && s.roundState === "paused",
      );
      const readmit = await api("POST", "/api/v1/admin/devices/device-1/readmit");
      assertEquals(readmit.status, 202, JSON.stringify(readmit.data));
      const start = await api("POST", "/api/v1/admin/rounds/start", {});
      assertEquals(start.status, 202, JSON.stringify(start.data));
      assert(await finishedLine, `the run did not finish:\n${log.slice(-20).join("\n")}`);

      const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
      const rows = report.results[0].rows as { round: number; participants: number }[];
      assertEquals(rows.length, 4);
      const participants = rows.map((r) => r.participants);
      assertEquals(participants[roundsAtPause], 2, `quarantined round: ${participants}`);
      assertEquals(participants[3], 3, `after readmission: ${participants}`);
      for (let r = 0; r < roundsAtPause; r++) assertEquals(participants[r], 3);

      // The trained detector: metadata, weights, and scoring of preprocessed feature vectors.
      const info = await api("GET", "/api/v1/models/global");
      assertEquals(info.status, 200, JSON.stringify(info.data));
      const weights = await api("GET", "/api/v1/models/global/weights");
      assertEquals(weights.status, 200);
      const bytes = weights.data as Uint8Array;
      assertEquals(bytes.byteLength, info.data.sizeBytes);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
      assertEquals(
        Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
        info.data.sha256,
      );
      const metadata = JSON.parse(
        readFileSync(join(out, "splitfed", "model", "metadata.json"), "utf8"),
      );
      const features = metadata.featureNames.length as number;
      const flows = [0, 1, 2].map((i) => ({
        id: `f${i}`,
        features: Array(features).fill(i * 0.5),
      }));
      const detect = await api("POST", "/api/v1/detect", { flows });
      assertEquals(detect.status, 200, JSON.stringify(detect.data));
      assertEquals(detect.data.results.map((r: { id: string }) => r.id), ["f0", "f1", "f2"]);
      const wrong = await api("POST", "/api/v1/detect", { flows: [{ features: [1, 2] }] });
      assertEquals(wrong.status, 400, JSON.stringify(wrong.data));
    } finally {
      try {
        child.kill("SIGINT");
      } catch { /* already gone */ }
      await child.status;
    }
  },
});
