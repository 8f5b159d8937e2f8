// The UI, embedded in the program as text imports: `deno run`, `deno test`, `deno check`,
// `bun` and `bun build --compile` all inline these files, so the binary serves the UI with no
// files beside it and nothing from the network. The served paths are a fixed table: a request
// either names one of these keys or gets 404; there is no file system to traverse.
import indexHtml from "./ui/index.html" with { type: "text" };
import appJs from "./ui/app.js" with { type: "text" };
import styleCss from "./ui/style.css" with { type: "text" };
import faviconSvg from "./ui/favicon.svg" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };

export const UPLOT_VERSION = "1.6.32";

export interface Asset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  /** Versioned vendor files never change under their URL; our own files revalidate by ETag. */
  immutable: boolean;
  etag: string;
}

const encoder = new TextEncoder();

function asset(text: string, contentType: string, immutable = false): Asset {
  const body = encoder.encode(text);
  return { body, contentType, immutable, etag: `"${fnv1a(body)}-${body.byteLength.toString(36)}"` };
}

/** URL path → asset. `/` serves the page; everything else lives under `/ui/`. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/", asset(indexHtml, "text/html; charset=utf-8")],
  ["/ui/app.js", asset(appJs, "text/javascript; charset=utf-8")],
  ["/ui/style.css", asset(styleCss, "text/css; charset=utf-8")],
  ["/ui/favicon.svg", asset(faviconSvg, "image/svg+xml")],
  [
    `/ui/vendor/uplot-${UPLOT_VERSION}.min.js`,
    asset(uplotJs, "text/javascript; charset=utf-8", true),
  ],
  [`/ui/vendor/uplot-${UPLOT_VERSION}.min.css`, asset(uplotCss, "text/css; charset=utf-8", true)],
]);

/** Bytes the browser downloads for the page (every asset; the page loads all of them). */
export const PAGE_WEIGHT_BYTES = [...ASSETS.values()].reduce((n, a) => n + a.body.byteLength, 0);

function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}
