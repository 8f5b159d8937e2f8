// Page checks shared by the browser tests (this one against createApp, and the end-to-end one
// against the compiled binary): Chromium launch settings, keyboard reach, text contrast.
import type { Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Flags for a quiet, offline, reproducible headless Chromium (headless itself is Playwright's option). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/**
 * Visible text whose colour against its effective background is below WCAG AA (4.5:1, or 3:1
 * for large text). Backgrounds are found by walking up to the first opaque one.
 */
export async function lowContrastText(page: Page): Promise<string[]> {
  return await page.evaluate(() => {
    const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (e: Element | null): number[] => {
      for (; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const out: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const e = n.parentElement!;
      const text = n.textContent?.trim();
      if (!text || !e.checkVisibility() || e.closest(".vh")) continue;
      const style = getComputedStyle(e);
      const fg = lum(rgb(style.color));
      const bg = lum(background(e));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) out.push(`${text.slice(0, 30)} (${ratio.toFixed(2)}:1)`);
    }
    return [...new Set(out)];
  });
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Marks every visible control that should be in the tab order, presses Tab from the top of the
 * page until focus wraps, and returns the controls focus never reached.
 */
export async function unreachedByTab(page: Page): Promise<string[]> {
  const expected = await page.evaluate(() => {
    const sel = "a[href], button, input, select, textarea, [tabindex]";
    const out: string[] = [];
    document.querySelectorAll("[data-kb]").forEach((e) => e.removeAttribute("data-kb"));
    let i = 0;
    for (const e of document.querySelectorAll<HTMLElement>(sel)) {
      if (e.tabIndex < 0 || (e as HTMLButtonElement).disabled || !e.checkVisibility()) continue;
      if (e.closest("dialog:not([open])")) continue;
      const key = `${i++}:${
        e.id || e.getAttribute("aria-label") || e.textContent?.trim().slice(0, 30)
      }`;
      e.dataset.kb = key;
      out.push(key);
    }
    (document.activeElement as HTMLElement | null)?.blur();
    return out;
  });
  const reached = new Set<string>();
  for (let n = 0; n < expected.length + 10; n++) {
    await page.keyboard.press("Tab");
    const key = await page.evaluate(() =>
      (document.activeElement as HTMLElement | null)?.dataset.kb ?? ""
    );
    if (key) reached.add(key);
    if (reached.size === expected.length) break;
  }
  return expected.filter((k) => !reached.has(k));
}
