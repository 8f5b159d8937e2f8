// The UI in headless Chromium against createApp + a seeded MemoryView on a loopback port:
// the page loads without console errors and without any request leaving the node, charts show
// the rounds, the ledger explorer lists verified and failed blocks, live events update the page
// without a reload, admin actions round-trip, keyboard navigation reaches every control, and the
// layout holds at 1280x800 and at phone width. Screenshots go to test-artifacts/web/.
//
// Needs /usr/bin/chromium (`apt-get install -y chromium`); skipped without it unless CI=true.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  lowContrastText,
  unreachedByTab,
  waitFor,
} from "./browser_checks.ts";
import { createApp } from "../../web/app.ts";
import { PAGE_WEIGHT_BYTES } from "../../web/assets.ts";
import {
  ADMIN_TOKEN,
  makeBlock,
  makeRound,
  makeValidators,
  READ_TOKEN,
  seededView,
} from "./fixtures.ts";

const ARTIFACTS = "test-artifacts/web";
const haveChromium = existsSync(CHROMIUM);
const inCi = Deno.env.get("CI") === "true";
if (!haveChromium && !inCi) {
  console.warn(
    `browser test skipped: ${CHROMIUM} not found (apt-get install -y chromium); CI=true makes this a failure`,
  );
}

Deno.test({
  name:
    "UI in headless Chromium: loads clean, live updates, ledger marks, admin, keyboard, narrow layout",
  ignore: !haveChromium && !inCi,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    assert.ok(haveChromium, `${CHROMIUM} is required when CI=true`);
    mkdirSync(ARTIFACTS, { recursive: true });

    const { view, metrics } = seededView(12);
    const adminCalls: string[] = [];
    view.setAdmin({
      startRound: (r) => {
        adminCalls.push(`start ${r.rounds}`);
        view.setStatus({ roundState: "running" });
        return Promise.resolve({ accepted: true, message: `starting ${r.rounds} rounds` });
      },
      stopRound: () => {
        adminCalls.push("stop");
        view.setStatus({ roundState: "stopping" });
        return Promise.resolve({ accepted: true, message: "stopping after this round" });
      },
      quarantine: (id, reason) => {
        adminCalls.push(`quarantine ${id} ${reason}`);
        const d = view.device(id)!;
        view.patchDevice(id, { status: "quarantined", flags: [...d.flags, "quarantined"] });
        return Promise.resolve({ accepted: true, message: "quarantine transaction submitted" });
      },
      readmit: (id) => {
        adminCalls.push(`readmit ${id}`);
        view.patchDevice(id, { status: "active", flags: [] });
        return Promise.resolve({ accepted: true, message: "readmission transaction submitted" });
      },
    });
    const app = createApp(view, { version: "0.1.0", adminToken: ADMIN_TOKEN, metrics });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
    const base = `http://127.0.0.1:${server.addr.port}`;
    const profile = await Deno.makeTempDir({ prefix: "iomt-chromium-" });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: CHROMIUM_ARGS,
    });
    const problems: string[] = [];
    const foreign: string[] = [];
    try {
      const page = context.pages()[0] ?? await context.newPage();
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") {
          problems.push(`console.${m.type()}: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
      page.on("requestfailed", (r) => {
        // An EventSource torn down by the test's own navigation is not a page problem.
        if (!r.url().includes("/api/v1/events")) {
          problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`);
        }
      });
      page.on("request", (r) => {
        if (!r.url().startsWith(base) && !r.url().startsWith("data:")) foreign.push(r.url());
      });

      await t.step("overview loads with status, metrics and a live connection", async () => {
        const res = await page.goto(base + "/", { waitUntil: "load" });
        assert.equal(res?.status(), 200);
        assert.match(res?.headers()["content-security-policy"] ?? "", /default-src 'self'/);
        await page.waitForSelector("#live-text:has-text('Live')");
        await page.waitForSelector("#overview-cards .card:has-text('Ledger height')");
        await page.evaluate(
          () => ((globalThis as unknown as { __noReload: number }).__noReload = 1),
        );
        const cards = await page.locator("#overview-cards").innerText();
        assert.match(cards, /ROLE\s+run/i);
        assert.match(cards, /LEDGER HEIGHT\s+12/i);
        assert.match(cards, /1 quarantined/);
        const weight = await page.evaluate(() =>
          performance.getEntriesByType("resource").concat(
            performance.getEntriesByType("navigation"),
          )
            .filter((e) => !e.name.includes("/api/"))
            .reduce((n, e) => n + (e as PerformanceResourceTiming).encodedBodySize, 0)
        );
        assert.ok(weight > 50_000 && weight < 300_000, `page weight ${weight} bytes`);
        assert.ok(PAGE_WEIGHT_BYTES < 300_000);
        await page.screenshot({ path: `${ARTIFACTS}/1-overview.png`, fullPage: true });
      });

      await t.step(
        "training charts show every round of both modes and follow new rounds live",
        async () => {
          await page.click("#tab-training");
          await page.waitForSelector("#chart-accuracy canvas");
          await page.waitForFunction(() =>
            document.getElementById("chart-loss")?.dataset.lastRound === "12"
          );
          for (const key of ["accuracy", "f1", "fpr", "loss"]) {
            const label = await page.getAttribute(`#chart-${key}`, "aria-label");
            assert.match(
              label ?? "",
              /12 rounds, up to round 12; latest SplitFed .*, FedAvg /,
              key,
            );
          }
          await page.waitForSelector("#cm table.cm tbody tr >> nth=4");
          assert.equal(await page.locator("#cm tbody tr").count(), 5);
          await page.screenshot({ path: `${ARTIFACTS}/2-training.png`, fullPage: true });

          view.publishRound(makeRound(13, "splitfed"));
          view.publishRound(makeRound(13, "fedavg"));
          await page.waitForFunction(() =>
            document.getElementById("chart-accuracy")?.dataset.lastRound === "13"
          );
          assert.match(await page.getAttribute("#chart-f1", "aria-label") ?? "", /13 rounds/);
          assert.equal(
            await page.inputValue("#cm-round"),
            "13",
            "confusion matrix follows the newest round",
          );
          await page.selectOption("#cm-mode", "fedavg");
          await page.selectOption("#cm-round", "4");
          await page.waitForSelector("#cm caption:has-text('round 4, FedAvg')");
        },
      );

      await t.step("ledger explorer lists verified and failed blocks and opens one", async () => {
        await page.click("#tab-ledger");
        await page.waitForSelector("#blocks-table tbody tr[data-height='12']");
        assert.equal(await page.locator("#blocks-table .mark.ok").count(), 12);
        assert.equal(await page.locator("#blocks-table .mark.bad").count(), 1);
        assert.match(await page.locator("#blocks-table tr[data-height='7']").innerText(), /Failed/);
        await page.click("button[aria-label='Show block 7']");
        await page.waitForSelector("#block-detail h2:has-text('Block #7')");
        const detail = await page.locator("#block-detail").innerText();
        assert.match(detail, /fail\s+signatures — commit signature of val-2 does not verify/);
        assert.match(detail, /Global model of round 7/);
        assert.doesNotMatch(await page.locator("main").innerText(), /\[object |undefined|NaN/);
        assert.match(detail, /Transactions \(5\)/);
        await page.screenshot({ path: `${ARTIFACTS}/3-ledger.png`, fullPage: true });

        view.publishBlock(makeBlock(13), { commitLatencyMs: 210 });
        view.setValidators(makeValidators(13));
        await page.waitForSelector("#blocks-table tbody tr:first-child[data-height='13'] .mark.ok");
        await page.click("#blocks-more");
        await page.waitForSelector("#blocks-table tbody tr[data-height='0']");
      });

      await t.step(
        "devices table, and quarantine through the UI with the admin token",
        async () => {
          await page.click("#tab-devices");
          await page.waitForSelector(
            "#devices-table tbody tr[data-device='dev-05'] .badge.quarantined",
          );
          assert.equal(await page.locator("#devices-table tbody tr").count(), 8);
          await page.screenshot({ path: `${ARTIFACTS}/4-devices.png`, fullPage: true });

          await page.fill("#token-input", ADMIN_TOKEN);
          await page.click("#token-form button[type=submit]");
          await page.waitForSelector("#live-text:has-text('Live')");
          await page.click("button[aria-label='Quarantine dev-02']");
          await page.waitForSelector("#quarantine-dialog[open]");
          await page.fill("#q-reason", "update norm outlier");
          await page.click("#quarantine-form button[type=submit]");
          await page.waitForSelector("#devices-table tr[data-device='dev-02'] .badge.quarantined");
          await page.click("button[aria-label='Readmit dev-02']");
          await page.waitForSelector("#devices-table tr[data-device='dev-02'] .badge.active");
          assert.deepEqual(adminCalls, ["quarantine dev-02 update norm outlier", "readmit dev-02"]);
          // A live update re-renders the table; keyboard focus stays on the same device's button.
          await page.focus("button[aria-label='Quarantine dev-03']");
          view.patchDevice("dev-03", { reputation: 0.55 });
          await page.waitForFunction(() =>
            document.querySelector("tr[data-device='dev-03']")?.textContent?.includes("0.55")
          );
          assert.equal(
            await page.evaluate(() => document.activeElement?.getAttribute("aria-label")),
            "Quarantine dev-03",
          );
          await page.fill("#device-filter", "label_flip");
          await page.waitForFunction(() =>
            document.querySelectorAll("#devices-table tbody tr").length === 1
          );
          await page.fill("#device-filter", "");
          await page.waitForFunction(() =>
            document.querySelectorAll("#devices-table tbody tr").length === 8
          );
          // The stream replaced when the token changed was released on the server.
          await waitFor(() => view.subscriberCount === 1, "old event stream released");
        },
      );

      await t.step("validators' state", async () => {
        await page.click("#tab-validators");
        await page.waitForSelector("#validators-table tbody tr >> nth=3");
        assert.match(await page.locator("#validator-cards").innerText(), /HEIGHT\s+13/i);
        assert.equal(await page.locator("#validators-table .mark.bad").count(), 1);
        assert.equal(await page.locator("#rejected-table tbody tr").count(), 3);
        await page.screenshot({ path: `${ARTIFACTS}/5-validators.png`, fullPage: true });
      });

      await t.step("admin start and stop from the overview", async () => {
        await page.click("#tab-overview");
        await page.fill("#start-rounds", "3");
        await page.click("#start-form button[type=submit]");
        await page.waitForSelector("#admin-out:has-text('starting 3 rounds')");
        await page.waitForSelector("#overview-cards .card:has-text('running')");
        await page.click("#stop-round");
        await page.waitForSelector("#admin-out:has-text('stopping after this round')");
        assert.deepEqual(adminCalls.slice(-2), ["start 3", "stop"]);
      });

      await t.step("keyboard alone reaches every tab and every control of every view", async () => {
        await page.click("#tab-overview");
        // The contrast probe itself must see a bad case, or its silence below means nothing.
        await page.evaluate(() => {
          const p = document.createElement("p");
          p.id = "probe";
          p.textContent = "pale probe text";
          p.style.color = "#bbbbbb";
          document.querySelector("main")!.append(p);
        });
        assert.match((await lowContrastText(page)).join(), /pale probe text \(1\.\d+:1\)/);
        await page.evaluate(() => document.getElementById("probe")!.remove());
        for (const name of ["overview", "training", "devices", "ledger", "validators"]) {
          if (name !== "overview") {
            await page.focus('[role="tab"][aria-selected="true"]');
            await page.keyboard.press("ArrowRight");
            assert.equal(await page.evaluate(() => document.activeElement?.id), `tab-${name}`);
            assert.equal(await page.getAttribute(`#tab-${name}`, "aria-selected"), "true");
          }
          const missed = await unreachedByTab(page);
          assert.deepEqual(missed, [], `${name}: not reachable with Tab`);
          assert.deepEqual(await lowContrastText(page), [], `${name}: text below WCAG AA contrast`);
        }
        await page.keyboard.press("Home");
        assert.equal(await page.evaluate(() => document.activeElement?.id), "tab-overview");
        await page.keyboard.press("ArrowLeft");
        assert.equal(await page.evaluate(() => document.activeElement?.id), "tab-validators");
        // A visible focus indicator on the focused control.
        const outline = await page.evaluate(() =>
          getComputedStyle(document.activeElement!).outlineStyle
        );
        assert.equal(outline, "solid");
      });

      await t.step("narrow width: no horizontal scroll of the page, charts fit", async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        await page.click("#tab-overview");
        assert.ok(
          await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1),
          "overview overflows",
        );
        await page.screenshot({ path: `${ARTIFACTS}/6-narrow-overview.png`, fullPage: true });
        await page.click("#tab-training");
        await page.waitForTimeout(200);
        assert.ok(
          await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1),
          "training overflows",
        );
        const w = await page.evaluate(() =>
          document.querySelector("#chart-accuracy canvas")!.getBoundingClientRect().width
        );
        assert.ok(w <= 390, `chart ${w}px wide`);
        await page.screenshot({ path: `${ARTIFACTS}/7-narrow-training.png`, fullPage: true });
      });

      await t.step(
        "a read-protected node: the page asks for the token, then loads and goes live",
        async () => {
          const locked = createApp(seededView(4).view, { version: "0.1.0", readToken: READ_TOKEN });
          const lockedServer = Deno.serve(
            { hostname: "127.0.0.1", port: 0, onListen: () => {} },
            locked.fetch,
          );
          const p2 = await context.newPage();
          try {
            await p2.setViewportSize({ width: 1280, height: 800 });
            // This page's 401s are the point; they are not counted as page problems.
            await p2.goto(`http://127.0.0.1:${lockedServer.addr.port}/`);
            await p2.waitForSelector("#banner:has-text('needs an access token to show its state')");
            await p2.waitForSelector("#live-text:has-text('Disconnected')");
            await p2.screenshot({ path: `${ARTIFACTS}/8-token-required.png` });
            await p2.fill("#token-input", READ_TOKEN);
            await p2.press("#token-input", "Enter");
            await p2.waitForSelector("#live-text:has-text('Live')");
            await p2.waitForSelector("#overview-cards .card:has-text('Ledger height')");
            assert.equal(await p2.isHidden("#banner"), true);
          } finally {
            await p2.close();
            await lockedServer.shutdown();
          }
        },
      );

      await t.step("a device node without ledger or validators says so per view", async () => {
        const deviceView = {
          status: () => ({
            nodeId: "dev-01",
            role: "device" as const,
            startedAt: new Date().toISOString(),
            peers: [{ id: "edge-a", role: "edge" as const, connected: true }],
          }),
        };
        const deviceServer = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen: () => {} },
          createApp(deviceView, { version: "0.1.0" }).fetch,
        );
        const p3 = await context.newPage();
        const scriptErrors: string[] = [];
        p3.on("pageerror", (e) => scriptErrors.push(e.message));
        try {
          // The 501 answers show as failed resource loads in the console; script errors may not.
          await p3.goto(`http://127.0.0.1:${deviceServer.addr.port}/#ledger`);
          await p3.waitForSelector(
            "#ledger-na:has-text('The ledger is not available on a device node')",
          );
          await p3.click("#tab-validators");
          await p3.waitForSelector("#validators-na:has-text('not available on a device node')");
          await p3.click("#tab-training");
          await p3.waitForSelector(
            "#training-na:has-text('Training rounds are not available on a device node')",
          );
          await p3.click("#tab-overview");
          await p3.waitForSelector("#live-text:has-text('No live updates')");
          assert.match(await p3.locator("#overview-cards").innerText(), /ROLE\s+device/i);
          await p3.screenshot({ path: `${ARTIFACTS}/9-device-role.png` });
          assert.deepEqual(scriptErrors, []);
        } finally {
          await p3.close();
          await deviceServer.shutdown();
        }
      });

      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __noReload?: number }).__noReload),
        1,
        "page reloaded",
      );
      assert.deepEqual(foreign, [], "requests left the node");
      assert.deepEqual(problems, [], "console errors or failed requests");
    } finally {
      await context.close();
      await server.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
