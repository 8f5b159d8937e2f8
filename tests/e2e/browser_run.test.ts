// The web UI of the compiled binary during a real short run, in headless Chromium: the page
// loads without console errors or requests leaving the node, the training charts follow the
// rounds live, the devices table lists every device, and the keyboard reaches every control.
// Screenshots go to test-artifacts/e2e/. Needs /usr/bin/chromium (fails in CI without it).
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";
import { assert, assertEquals } from "../assert.ts";
import { CHROMIUM, CHROMIUM_ARGS, unreachedByTab } from "../web/browser_checks.ts";
import { linesOf, requireBinary, waitForLine } from "./binary.ts";

const ARTIFACTS = "test-artifacts/e2e";
const haveChromium = existsSync(CHROMIUM);
const inCi = Deno.env.get("CI") === "true";

Deno.test({
  name:
    "browser: the binary's UI during a short run shows rounds live, devices, and is keyboard-reachable",
  ignore: !haveChromium && !inCi,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assert(haveChromium, `${CHROMIUM} is required when CI=true`);
    mkdirSync(ARTIFACTS, { recursive: true });
    const out = join(mkdtempSync(join(tmpdir(), "iomt-ui-")), "trial");
    const run = new Deno.Command(requireBinary(), {
      args: [
        "run",
        "--devices",
        "3",
        "--rounds",
        "3",
        "--synthetic-rows",
        "2000",
        "--batch-size",
        "128",
        "--keep-ui",
        "--out",
        out,
      ],
      stdout: "null",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const lines = linesOf(run.stderr);
    const problems: string[] = [];
    const foreign: string[] = [];
    const profile = mkdtempSync(join(tmpdir(), "iomt-chromium-"));
    let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
    try {
      const [, url] = await waitForLine(lines, /web UI at (http:\/\/127\.0\.0\.1:\d+\/)/, 60_000);
      const [, adminToken] = await waitForLine(lines, /admin token (\S+)/, 10_000);
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1280, height: 800 },
        args: CHROMIUM_ARGS,
      });
      const page = context.pages()[0] ?? await context.newPage();
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") {
          problems.push(`console.${m.type()}: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
      page.on("response", (r) => {
        if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
      });
      page.on("request", (r) => {
        if (!r.url().startsWith(url.replace(/\/$/, "")) && !r.url().startsWith("data:")) {
          foreign.push(r.url());
        }
      });
      const response = await page.goto(url, { waitUntil: "load" });
      assertEquals(response?.status(), 200);
      await page.waitForSelector("#live-text:has-text('Live')");
      await page.click("#tab-training");
      // Rounds arrive over server-sent events while the page stays loaded.
      await page.waitForFunction(
        () => document.getElementById("chart-f1")?.dataset.rounds === "1",
        undefined,
        { timeout: 300_000 },
      );
      await page.screenshot({ path: `${ARTIFACTS}/run-1-first-round.png`, fullPage: true });

      // The operator, through the UI: stop after the round in progress, quarantine a device on
      // the ledger, start again. The devices table shows the validators' decision.
      await page.fill("#token-input", adminToken);
      await page.click("#token-form button[type=submit]");
      await page.click("#tab-overview");
      await page.click("#stop-round");
      await page.waitForSelector("#admin-out:not(.bad):has-text('paus')", { timeout: 30_000 });
      await page.waitForFunction(
        () => (document.querySelector("main") as HTMLElement | null)?.innerText.includes("paused"),
        undefined,
        { timeout: 300_000 },
      );
      await page.screenshot({ path: `${ARTIFACTS}/run-1b-paused.png`, fullPage: true });
      await page.click("#tab-devices");
      await page.click("button[aria-label='Quarantine device-1']");
      await page.click("#quarantine-form button[type=submit]");
      await page.waitForSelector("button[aria-label='Readmit device-1']", { timeout: 60_000 });
      await page.screenshot({ path: `${ARTIFACTS}/run-1c-quarantined.png`, fullPage: true });
      await page.click("#tab-overview");
      await page.click("#start-form button[type=submit]");
      await page.waitForSelector("#admin-out:not(.bad):has-text('round')", { timeout: 30_000 });
      await waitForLine(lines, /finished; the web UI stays/, 600_000);
      await page.waitForFunction(
        () => document.getElementById("chart-f1")?.dataset.rounds === "3",
        undefined,
        { timeout: 30_000 },
      );
      const label = await page.getAttribute("#chart-f1", "aria-label");
      assert(/3 rounds, up to round 3/.test(label ?? ""), `chart label: ${label}`);
      await page.screenshot({ path: `${ARTIFACTS}/run-2-training.png`, fullPage: true });

      await page.click("#tab-devices");
      await page.waitForSelector("#devices-table tbody tr");
      const deviceRows = await page.locator("#devices-table tbody tr").count();
      assertEquals(deviceRows, 3);
      await page.screenshot({ path: `${ARTIFACTS}/run-3-devices.png`, fullPage: true });

      // The ledger explorer: the validators' certified blocks, each re-verified, none failed.
      await page.click("#tab-ledger");
      await page.waitForSelector("#blocks-table tbody tr", { timeout: 30_000 });
      const verified = await page.locator("#blocks-table .mark.ok").count();
      assert(verified >= 3, `expected verified blocks, saw ${verified}`);
      assertEquals(
        await page.locator("#blocks-table .mark.bad").count(),
        0,
        "no block may fail verification",
      );
      // No gap: blocks that arrived live while a refresh (e.g. the token entered above) was on
      // its way stay listed.
      const heights = await page.locator("#blocks-table tbody tr[data-height]").evaluateAll(
        (rows) => rows.map((r) => Number((r as HTMLElement).dataset.height)),
      );
      assert(heights.length >= 3, `blocks listed: ${heights}`);
      for (let i = 1; i < heights.length; i++) {
        assertEquals(heights[i], heights[i - 1] - 1, `block list ${heights.join(",")}`);
      }
      await page.screenshot({ path: `${ARTIFACTS}/run-4-ledger.png`, fullPage: true });

      await page.click("#tab-validators");
      await page.screenshot({ path: `${ARTIFACTS}/run-5-validators.png`, fullPage: true });
      assert(
        !/\[object |undefined|NaN/.test(await page.locator("main").innerText()),
        "no broken values on the page",
      );

      await page.click("#tab-overview");
      assertEquals(await unreachedByTab(page), [], "keyboard must reach every control");
      assertEquals(problems, [], "no console errors");
      assertEquals(foreign, [], "no request may leave the node");
    } finally {
      await context?.close().catch(() => {});
      try {
        run.kill("SIGTERM");
      } catch { /* exited */ }
      await run.status;
      await lines.return?.(undefined);
    }
  },
});
