// iomt-sfl node UI: reads the node's API, keeps a bounded copy of its state, and applies the
// server-sent events as they arrive. No framework, no network beyond this node; DOM is built with
// textContent only (never innerHTML), so values from the node cannot inject markup.
"use strict";
(() => {
  const ROUNDS_MAX = 2000;
  const BLOCKS_MAX = 500;
  const DEVICE_ROWS_MAX = 500;
  const ACTIVITY_MAX = 40;
  const MODES = ["splitfed", "fedavg"];
  const MODE_NAME = { splitfed: "SplitFed", fedavg: "FedAvg" };
  const TABS = ["overview", "training", "devices", "ledger", "validators"];
  const TOKEN_KEY = "iomt-sfl-token";
  const TOKEN_NEEDED = "This node needs an access token to show its state. Enter it at the top.";

  const $ = (id) => document.getElementById(id);
  const state = {
    status: null,
    statusAt: 0,
    rounds: { splitfed: new Map(), fedavg: new Map() },
    devices: new Map(),
    blocks: [],
    blocksExhausted: false,
    validators: null,
    selectedBlock: null,
    cmPinned: false,
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    tab: "overview",
    /** Parts this node's role does not serve (answered 501). */
    unavailable: new Set(),
  };

  // ---------- helpers ----------

  /** el("td", {class: "num"}, "12") — children are strings (as text) or nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }
  const pct = (
    v,
    digits = 1,
  ) => (v === undefined || v === null ? "–" : (v * 100).toFixed(digits) + "%");
  const num = (v, digits = 3) => (v === undefined || v === null ? "–" : Number(v).toFixed(digits));
  const shortHash = (h) => (h ? h.slice(0, 10) + "…" : "–");
  function ago(iso) {
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return "–";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }
  const timeEl = (iso) => el("time", { datetime: iso, title: iso, "data-rel": "" }, ago(iso));
  function duration(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return `${d} d ${h} h`;
    if (h > 0) return `${h} h ${m} min`;
    return `${m} min ${s % 60} s`;
  }

  class ApiFailure extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, init = {}) {
    const headers = { accept: "application/json", ...(init.headers || {}) };
    if (state.token) headers.authorization = `Bearer ${state.token}`;
    let res;
    try {
      res = await fetch(path, { ...init, headers });
    } catch {
      throw new ApiFailure(0, "network", "the node did not answer");
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const e = body && body.error
        ? body.error
        : { code: "http_" + res.status, message: res.statusText };
      if (res.status === 401) {
        showBanner(TOKEN_NEEDED);
      }
      throw new ApiFailure(res.status, e.code, e.message);
    }
    return body;
  }
  const post = (path, body) =>
    api(path, {
      method: "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  function showBanner(text) {
    const b = $("banner");
    b.textContent = text;
    b.hidden = !text;
  }

  /**
   * Replaces a container's children; if focus was on a control inside it, moves focus to the
   * control with the same `data-focus-key` in the new content, so a live update does not throw a
   * keyboard user back to the top of the page.
   */
  function replaceKeepingFocus(container, children) {
    const active = document.activeElement;
    const key = active && container.contains(active) ? active.getAttribute("data-focus-key") : null;
    container.replaceChildren(...children);
    if (key) {
      const again = [...container.querySelectorAll("[data-focus-key]")].find((e) =>
        e.getAttribute("data-focus-key") === key
      );
      if (again) again.focus();
    }
  }

  // Rendering is batched to one animation frame, so a burst of events costs one repaint.
  const dirty = new Set();
  let frame = 0;
  function invalidate(...parts) {
    parts.forEach((p) => dirty.add(p));
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    const parts = [...dirty];
    dirty.clear();
    for (const p of parts) RENDER[p]();
  }

  // ---------- tabs ----------

  function selectTab(name, focus) {
    if (!TABS.includes(name)) name = "overview";
    state.tab = name;
    for (const t of TABS) {
      const tab = $("tab-" + t);
      const on = t === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      $("panel-" + t).hidden = !on;
    }
    if (focus) $("tab-" + name).focus();
    if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
    if (name === "training") {
      ensureCharts();
      invalidate("charts");
    }
  }
  $("tablist").addEventListener("click", (e) => {
    const tab = e.target.closest('[role="tab"]');
    if (tab) selectTab(tab.id.slice(4), true);
  });
  $("tablist").addEventListener("keydown", (e) => {
    const i = TABS.indexOf(state.tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    selectTab(TABS[(next + TABS.length) % TABS.length], true);
  });
  addEventListener("hashchange", () => selectTab(location.hash.slice(1), false));

  // ---------- status / overview ----------

  function latest(mode) {
    let best;
    for (const r of state.rounds[mode].values()) if (!best || r.round > best.round) best = r;
    return best;
  }

  function card(label, value, sub) {
    return el(
      "div",
      { class: "card" },
      el("dt", {}, label),
      el("dd", {}, value, sub ? [" ", el("small", {}, sub)] : []),
    );
  }

  const RENDER = {
    overview() {
      const s = state.status;
      const r = latest("splitfed") || latest("fedavg");
      const devs = [...state.devices.values()];
      const quarantined = devs.filter((d) => d.status === "quarantined").length;
      const v = state.validators;
      const cards = [];
      if (s) {
        $("node-label").textContent = `${s.role} · ${s.nodeId}`;
        $("foot-version").textContent = `iomt-sfl ${s.version}`;
        cards.push(card("Role", s.role, s.nodeId));
        cards.push(card("Uptime", el("span", { id: "uptime" }, duration(uptimeNow()))));
        cards.push(
          card("Round", s.round === undefined ? "–" : String(s.round), s.roundState || ""),
        );
        cards.push(
          card("Ledger height", s.ledgerHeight === undefined ? "–" : String(s.ledgerHeight)),
        );
        const connected = s.peers.filter((p) => p.connected).length;
        cards.push(card("Peers", `${connected}/${s.peers.length}`, "connected"));
      }
      cards.push(card("Accuracy", r ? pct(r.metrics.accuracy) : "–", r ? MODE_NAME[r.mode] : ""));
      cards.push(card("Macro F1", r ? pct(r.metrics.f1) : "–"));
      cards.push(card("False positives", r ? pct(r.metrics.fpr, 2) : "–"));
      cards.push(
        card(
          "Devices",
          String(devs.length),
          quarantined ? `${quarantined} quarantined` : "none quarantined",
        ),
      );
      if (v) {
        const healthy = v.validators.filter((x) => x.healthy).length;
        cards.push(card("Validators", `${healthy}/${v.validators.length}`, "healthy"));
      }
      $("overview-cards").replaceChildren(...cards);
      const recent = MODES.flatMap((m) => [...state.rounds[m].values()])
        .sort((a, b) => b.round - a.round || MODES.indexOf(a.mode) - MODES.indexOf(b.mode))
        .slice(0, state.rounds.fedavg.size ? 8 : 5);
      $("recent-table").tBodies[0].replaceChildren(
        ...(recent.length
          ? recent.map((x) =>
            el(
              "tr",
              {},
              el("td", { class: "num" }, String(x.round)),
              el("td", {}, MODE_NAME[x.mode]),
              el("td", { class: "num" }, pct(x.metrics.accuracy)),
              el("td", { class: "num" }, pct(x.metrics.f1)),
              el("td", { class: "num" }, pct(x.metrics.fpr, 2)),
              el("td", { class: "num" }, num(x.metrics.loss)),
              el("td", { class: "num" }, String(x.participants)),
              el("td", { class: "num" }, String(x.rejectedUpdates)),
              el("td", {}, x.finishedAt ? timeEl(x.finishedAt) : "running"),
            )
          )
          : [el("tr", {}, el("td", { colspan: 9, class: "muted" }, "No rounds yet."))]),
      );
    },

    charts() {
      if (!charts) return;
      const xs = [...new Set(MODES.flatMap((m) => [...state.rounds[m].keys()]))].sort((a, b) =>
        a - b
      );
      for (const c of CHARTS) {
        const ys = MODES.map((m) =>
          xs.map((x) => {
            const r = state.rounds[m].get(x);
            return r ? r.metrics[c.key] : null;
          })
        );
        charts[c.key].setData([xs, ...ys]);
        // The canvas says nothing to a screen reader (or a test): the label carries the numbers.
        const box = $("chart-" + c.key);
        const lastOf = (i) => {
          for (let j = xs.length - 1; j >= 0; j--) {
            if (ys[i][j] !== null) return `${MODE_NAME[MODES[i]]} ${c.fmt(ys[i][j])}`;
          }
          return null;
        };
        const latestText = [lastOf(0), lastOf(1)].filter(Boolean).join(", ");
        box.dataset.rounds = String(xs.length);
        box.dataset.lastRound = xs.length ? String(xs[xs.length - 1]) : "";
        box.setAttribute(
          "aria-label",
          `${c.title} per round: ${xs.length} rounds` +
            (xs.length ? `, up to round ${xs[xs.length - 1]}; latest ${latestText}` : ""),
        );
      }
      const hasFedavg = state.rounds.fedavg.size > 0;
      for (const c of Object.values(charts)) c.setSeries(2, { show: hasFedavg });
      $("legend-fedavg").hidden = !hasFedavg;
      notAvailable("training-na", "rounds", "Training rounds are");
      const rounds = [...state.rounds.splitfed.keys(), ...state.rounds.fedavg.keys()];
      const sel = $("cm-round");
      const wanted = [...new Set(rounds)].sort((a, b) => b - a);
      const current = sel.value;
      if (sel.options.length !== wanted.length) {
        sel.replaceChildren(...wanted.map((r) => el("option", { value: r }, `Round ${r}`)));
        if (state.cmPinned && wanted.includes(Number(current))) sel.value = current;
      }
      if (!state.cmPinned || !current) loadConfusion();
    },

    devices() {
      notAvailable("devices-na", "devices", "Devices are");
      const filter = $("device-filter").value.trim().toLowerCase();
      const rows = [];
      const all = [...state.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
      for (const d of all) {
        if (rows.length >= DEVICE_ROWS_MAX) break;
        const hay = [d.id, d.edge || "", d.status, ...d.flags].join(" ").toLowerCase();
        if (filter && !hay.includes(filter)) continue;
        const q = d.status === "quarantined";
        rows.push(el(
          "tr",
          { "data-device": d.id },
          el("th", { scope: "row", class: "mono" }, d.id),
          el("td", {}, d.edge || "–"),
          el("td", {}, el("span", { class: "badge " + d.status }, d.status)),
          el(
            "td",
            {},
            el(
              "span",
              { class: "rep" },
              el("meter", {
                min: 0,
                max: 1,
                low: 0.4,
                high: 0.7,
                optimum: 1,
                value: d.reputation,
                "aria-label": `Reputation of ${d.id}`,
              }),
              d.reputation.toFixed(2),
            ),
          ),
          el("td", { class: "num" }, d.rewards.toFixed(3)),
          el("td", { class: "num" }, `${d.updatesAccepted} / ${d.updatesRejected}`),
          el(
            "td",
            {},
            d.flags.length
              ? d.flags.map((f) => el("span", { class: "badge " + flagClass(f) }, f))
              : "–",
          ),
          el("td", {}, timeEl(d.lastSeen)),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              class: "small" + (q ? "" : " danger-outline"),
              "aria-label": `${q ? "Readmit" : "Quarantine"} ${d.id}`,
              "data-focus-key": `device:${d.id}`,
              onclick: () => (q ? readmit(d.id) : askQuarantine(d.id)),
            }, q ? "Readmit" : "Quarantine"),
          ),
        ));
      }
      if (rows.length === 0) {
        rows.push(
          el(
            "tr",
            {},
            el(
              "td",
              { colspan: 9, class: "muted" },
              state.devices.size ? "No device matches." : "No devices yet.",
            ),
          ),
        );
      }
      replaceKeepingFocus($("devices-table").tBodies[0], rows);
    },

    blocks() {
      notAvailable("ledger-na", "blocks", "The ledger is");
      const rows = state.blocks.map((b) =>
        el(
          "tr",
          { class: b.height === state.selectedBlock ? "selected" : "", "data-height": b.height },
          el(
            "td",
            { class: "num" },
            el("button", {
              type: "button",
              class: "link",
              "aria-label": `Show block ${b.height}`,
              "data-focus-key": `block:${b.height}`,
              onclick: () => showBlock(b.height),
            }, `#${b.height}`),
          ),
          el("td", { class: "mono", title: b.hash }, shortHash(b.hash)),
          el("td", {}, timeEl(b.timestamp)),
          el("td", {}, b.proposer),
          el("td", { class: "num" }, String(b.txCount)),
          el("td", {}, mark(b.verified)),
        )
      );
      if (rows.length === 0) {
        rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No blocks yet.")));
      }
      replaceKeepingFocus($("blocks-table").tBodies[0], rows);
      $("blocks-more").disabled = state.blocksExhausted || state.blocks.length === 0;
    },

    validators() {
      notAvailable("validators-na", "validators", "Validator state is");
      const v = state.validators;
      if (!v) {
        $("validator-cards").replaceChildren(card("Validators", "–", "no state on this node"));
        return;
      }
      const healthy = v.validators.filter((x) => x.healthy).length;
      $("validator-cards").replaceChildren(
        card("View", String(v.view)),
        card("Height", String(v.height)),
        card("Checkpoint", String(v.checkpoint.height), shortHash(v.checkpoint.digest)),
        card("Primary", v.primary),
        card("Faults tolerated", `f = ${v.f}`, `quorum ${2 * v.f + 1}`),
        card("Healthy", `${healthy}/${v.validators.length}`),
      );
      $("validators-table").tBodies[0].replaceChildren(...v.validators.map((x) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", class: "mono" }, x.id),
          el("td", {}, x.isPrimary ? "primary" : "backup"),
          el(
            "td",
            {},
            el(
              "span",
              { class: "mark " + (x.healthy ? "ok" : "bad") },
              x.healthy ? "✓ healthy" : "✗ unhealthy",
            ),
          ),
          el("td", { class: "num" }, String(x.view)),
          el("td", { class: "num" }, String(x.height)),
          el("td", {}, x.lastSeen ? timeEl(x.lastSeen) : "–"),
        )
      ));
      const rej = Object.entries(v.rejectedMessages || {}).sort((a, b) => b[1] - a[1]);
      $("rejected-table").tBodies[0].replaceChildren(
        ...(rej.length
          ? rej.map(([k, n]) =>
            el("tr", {}, el("td", { class: "mono" }, k), el("td", { class: "num" }, String(n)))
          )
          : [el("tr", {}, el("td", { colspan: 2, class: "muted" }, "None."))]),
      );
    },
  };

  /** A role without this part (a device has no ledger) says so instead of showing empty tables. */
  function notAvailable(id, part, what) {
    const p = $(id);
    const off = state.unavailable.has(part);
    p.hidden = !off;
    if (off) {
      p.textContent = `${what} not available on a ${
        state.status ? state.status.role : "this"
      } node.`;
    }
  }

  const flagClass = (f) =>
    /quarantin|flip|poison|byzantine/.test(f)
      ? "flag-bad"
      : /stale|outlier|slow/.test(f)
      ? "flag-warn"
      : "flag";
  const mark = (ok, yes = "✓ Verified", no = "✗ Failed") =>
    el("span", { class: "mark " + (ok ? "ok" : "bad") }, ok ? yes : no);

  function uptimeNow() {
    return state.status ? state.status.uptimeSeconds + (Date.now() - state.statusAt) / 1000 : 0;
  }
  setInterval(() => {
    const u = $("uptime");
    if (u) u.textContent = duration(uptimeNow());
    for (const t of document.querySelectorAll("time[data-rel]")) {
      t.textContent = ago(t.getAttribute("datetime"));
    }
  }, 1000);

  // ---------- training charts ----------

  const CHARTS = [
    { key: "accuracy", title: "Accuracy", fmt: (v) => pct(v) },
    { key: "f1", title: "Macro F1", fmt: (v) => pct(v) },
    { key: "fpr", title: "False positive rate", fmt: (v) => pct(v, 2), axis: (v) => pct(v, 1) },
    { key: "loss", title: "Validation loss", fmt: (v) => num(v, 3) },
  ];
  let charts = null;

  function ensureCharts() {
    if (charts || typeof uPlot !== "function") return;
    charts = {};
    const css = getComputedStyle(document.documentElement);
    const sf = css.getPropertyValue("--sf").trim();
    const fa = css.getPropertyValue("--fa").trim();
    for (const c of CHARTS) {
      const box = $("chart-" + c.key);
      const fmt = (_u, v) => (v === null || v === undefined ? "–" : c.fmt(v));
      charts[c.key] = new uPlot(
        {
          width: Math.max(280, box.clientWidth),
          height: 220,
          scales: { x: { time: false } },
          series: [
            { label: "Round", value: (_u, v) => (v === null || v === undefined ? "–" : String(v)) },
            {
              label: "SplitFed",
              stroke: sf,
              width: 2,
              points: { show: true, size: 5 },
              value: fmt,
              spanGaps: true,
            },
            {
              label: "FedAvg",
              stroke: fa,
              width: 2,
              dash: [6, 4],
              points: { show: true, size: 5 },
              value: fmt,
              spanGaps: true,
            },
          ],
          axes: [
            {
              label: "Round",
              stroke: "#4a5567",
              grid: { stroke: "#e6eaf0" },
              incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
            },
            {
              stroke: "#4a5567",
              grid: { stroke: "#e6eaf0" },
              size: 64,
              values: (_u, vals) => vals.map((v) => (c.axis || c.fmt)(v)),
            },
          ],
        },
        [[], [], []],
        box,
      );
    }
    new ResizeObserver(() => {
      for (const c of CHARTS) {
        const w = $("chart-" + c.key).clientWidth;
        if (w > 0 && charts[c.key].width !== w) charts[c.key].setSize({ width: w, height: 220 });
      }
    }).observe($("panel-training"));
  }

  let cmSeq = 0;
  async function loadConfusion() {
    const round = $("cm-round").value;
    const mode = $("cm-mode").value;
    if (!round) {
      $("cm").replaceChildren(el("p", { class: "muted" }, "No rounds yet."));
      return;
    }
    const seq = ++cmSeq;
    const cached = state.rounds[mode].get(Number(round));
    let detail = cached && cached.confusion ? cached : null;
    try {
      if (!detail) detail = await api(`/api/v1/rounds/${encodeURIComponent(round)}?mode=${mode}`);
    } catch {
      if (seq === cmSeq) {
        $("cm").replaceChildren(
          el("p", { class: "muted" }, `No ${MODE_NAME[mode]} data for round ${round}.`),
        );
      }
      return;
    }
    if (seq !== cmSeq) return;
    if (!detail.confusion) {
      $("cm").replaceChildren(el("p", { class: "muted" }, "This round has no confusion matrix."));
      return;
    }
    const { labels, matrix } = detail.confusion;
    const rowMax = matrix.map((row) => Math.max(1, row.reduce((a, b) => a + b, 0)));
    $("cm").replaceChildren(el(
      "table",
      { class: "cm" },
      el(
        "caption",
        { class: "vh" },
        `Confusion matrix, round ${round}, ${
          MODE_NAME[mode]
        }: rows are actual classes, columns predicted`,
      ),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col" }, "actual ╲ predicted"),
          labels.map((l) => el("th", { scope: "col" }, l)),
        ),
      ),
      el(
        "tbody",
        {},
        matrix.map((row, i) =>
          el(
            "tr",
            {},
            el("th", { scope: "row" }, labels[i]),
            row.map((n, j) => {
              const share = n / rowMax[i];
              const level = n === 0 ? 0 : Math.min(5, 1 + Math.floor(share * 5));
              return el("td", {
                class: `h${level}${i === j ? " diag" : ""}`,
                title: `${(share * 100).toFixed(1)}% of ${labels[i]}`,
              }, String(n));
            }),
          )
        ),
      ),
    ));
  }
  $("cm-round").addEventListener("change", () => {
    state.cmPinned = $("cm-round").selectedIndex > 0;
    loadConfusion();
  });
  $("cm-mode").addEventListener("change", loadConfusion);
  $("cm-form").addEventListener("submit", (e) => e.preventDefault());

  // ---------- ledger ----------

  async function showBlock(height) {
    state.selectedBlock = height;
    invalidate("blocks");
    const box = $("block-detail");
    box.replaceChildren(
      el("h2", { id: "block-h" }, `Block #${height}`),
      el("p", { class: "muted" }, "Loading…"),
    );
    let b;
    try {
      b = await api(`/api/v1/ledger/blocks/${height}`);
    } catch (e) {
      box.replaceChildren(
        el("h2", { id: "block-h" }, `Block #${height}`),
        el("p", { class: "out bad" }, e.message),
      );
      return;
    }
    if (state.selectedBlock !== height) return;
    const c = b.modelCertificate;
    const cc = b.commit;
    box.replaceChildren(
      el("h2", { id: "block-h", tabindex: "-1" }, `Block #${b.height} `, mark(b.verified)),
      el(
        "dl",
        { class: "kv" },
        el("dt", {}, "Hash"),
        el("dd", { class: "mono" }, b.hash),
        el("dt", {}, "Previous"),
        el("dd", { class: "mono" }, b.prevHash),
        el("dt", {}, "Committed"),
        el("dd", {}, b.timestamp),
        el("dt", {}, "Proposer / view"),
        el("dd", {}, `${b.proposer} / ${b.view}`),
      ),
      el("h3", {}, "Verification"),
      el(
        "ul",
        { class: "checks" },
        b.verification.checks.map((ch) =>
          el(
            "li",
            {},
            mark(ch.ok, "✓ pass", "✗ fail"),
            " ",
            el("strong", {}, ch.name),
            ch.detail ? ` — ${ch.detail}` : "",
          )
        ),
      ),
      el("h3", {}, "Commit certificate"),
      cc
        ? el(
          "dl",
          { class: "kv" },
          el("dt", {}, "Signers"),
          el("dd", {}, `${cc.signers.join(", ")} (${cc.signers.length}, quorum ${cc.quorum})`),
          el("dt", {}, "View"),
          el("dd", {}, String(cc.view)),
        )
        : el("p", { class: "muted" }, "None (genesis)."),
      ...(c
        ? [
          el("h3", {}, `Global model of round ${c.round}`),
          el(
            "dl",
            { class: "kv" },
            el("dt", {}, "Model hash"),
            el("dd", { class: "mono" }, c.modelHash),
            el("dt", {}, "Certified by"),
            el("dd", {}, `${c.signers.length} of quorum ${c.quorum}`),
          ),
        ]
        : []),
      el("h3", {}, `Transactions (${b.transactions.length})`),
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          { class: "grid" },
          el("caption", { class: "vh" }, `Transactions in block ${b.height}`),
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ["Type", "From", "Summary", "Id"].map((h) => el("th", { scope: "col" }, h)),
            ),
          ),
          el(
            "tbody",
            {},
            b.transactions.slice(0, 500).map((t) =>
              el(
                "tr",
                {},
                el("td", {}, t.type),
                el("td", { class: "mono" }, t.from),
                el("td", { class: "wrap" }, t.summary),
                el("td", { class: "mono", title: t.id }, shortHash(t.id)),
              )
            ),
          ),
        ),
      ),
    );
  }

  async function loadOlderBlocks() {
    const oldest = state.blocks[state.blocks.length - 1];
    if (!oldest) return;
    try {
      const { blocks } = await api(`/api/v1/ledger/blocks?before=${oldest.height}&limit=50`);
      if (blocks.length === 0) state.blocksExhausted = true;
      state.blocks.push(...blocks);
      if (state.blocks.length > BLOCKS_MAX) state.blocks.length = BLOCKS_MAX;
    } catch (e) {
      showBanner(`Could not load blocks: ${e.message}`);
    }
    invalidate("blocks");
  }
  $("blocks-more").addEventListener("click", loadOlderBlocks);

  // ---------- admin ----------

  function adminOut(text, bad) {
    const o = $("admin-out");
    o.textContent = text;
    o.className = "out" + (bad ? " bad" : "");
  }
  const adminError = (e) =>
    e.status === 401 || e.status === 403
      ? `Refused: ${e.message}. Enter the admin token at the top.`
      : `Refused: ${e.message}`;

  $("start-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const rounds = Number($("start-rounds").value);
    try {
      const r = await post(
        "/api/v1/admin/rounds/start",
        Number.isInteger(rounds) && rounds > 0 ? { rounds } : {},
      );
      adminOut(r.message);
    } catch (err) {
      adminOut(adminError(err), true);
    }
  });
  $("stop-round").addEventListener("click", async () => {
    try {
      adminOut((await post("/api/v1/admin/rounds/stop")).message);
    } catch (err) {
      adminOut(adminError(err), true);
    }
  });

  let quarantineTarget = null;
  let quarantineOpener = null;
  function askQuarantine(id) {
    quarantineTarget = id;
    quarantineOpener = document.activeElement;
    $("q-device").textContent = id;
    $("quarantine-dialog").showModal();
    $("q-reason").select();
  }
  $("q-cancel").addEventListener("click", () => $("quarantine-dialog").close());
  $("quarantine-dialog").addEventListener("close", () => {
    if (quarantineOpener && quarantineOpener.isConnected) quarantineOpener.focus();
  });
  $("quarantine-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = quarantineTarget;
    $("quarantine-dialog").close();
    try {
      const r = await post(`/api/v1/admin/devices/${encodeURIComponent(id)}/quarantine`, {
        reason: $("q-reason").value,
      });
      showBanner("");
      logActivity(`Quarantine of ${id} requested: ${r.message}`);
    } catch (err) {
      showBanner(adminError(err));
    }
  });
  async function readmit(id) {
    try {
      const r = await post(`/api/v1/admin/devices/${encodeURIComponent(id)}/readmit`);
      showBanner("");
      logActivity(`Readmission of ${id} requested: ${r.message}`);
    } catch (err) {
      showBanner(adminError(err));
    }
  }
  $("device-filter").addEventListener("input", () => invalidate("devices"));
  $("device-filter-form").addEventListener("submit", (e) => e.preventDefault());

  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token-input").value.trim();
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    showBanner("");
    connect();
    refreshAll();
  });
  $("token-input").value = state.token;

  // ---------- state updates ----------

  function putRound(r) {
    const m = state.rounds[r.mode];
    if (!m) return;
    m.set(r.round, r);
    if (m.size > ROUNDS_MAX) m.delete(Math.min(...m.keys()));
  }
  function putBlock(b) {
    if (state.blocks.length && b.height <= state.blocks[0].height) {
      const i = state.blocks.findIndex((x) => x.height === b.height);
      if (i >= 0) state.blocks[i] = b;
      return;
    }
    state.blocks.unshift(b);
    if (state.blocks.length > BLOCKS_MAX) state.blocks.length = BLOCKS_MAX;
  }
  function setStatus(s) {
    state.status = s;
    state.statusAt = Date.now();
  }

  function logActivity(text) {
    const list = $("activity");
    list.querySelector(".empty")?.remove();
    const now = new Date();
    list.prepend(
      el(
        "li",
        {},
        el("time", { datetime: now.toISOString() }, now.toLocaleTimeString()),
        el("span", {}, text),
      ),
    );
    while (list.children.length > ACTIVITY_MAX) list.lastElementChild.remove();
  }

  async function refreshAll() {
    const tasks = {
      status: api("/api/v1/status").then(setStatus),
      // Live events may have delivered rounds and blocks newer than this snapshot while it was
      // on its way: merge, never drop them (a block missing from the list looks like a gap).
      rounds: api("/api/v1/rounds?limit=500").then(({ rounds }) => {
        rounds.forEach(putRound);
      }),
      devices: api("/api/v1/devices").then(({ devices }) => {
        state.devices.clear();
        for (const d of devices) state.devices.set(d.id, d);
      }),
      blocks: api("/api/v1/ledger/blocks?limit=50").then(({ blocks }) => {
        const top = blocks.length ? blocks[0].height : 0;
        state.blocks = [...state.blocks.filter((b) => b.height > top), ...blocks];
        if (state.blocks.length > BLOCKS_MAX) state.blocks.length = BLOCKS_MAX;
        state.blocksExhausted = false;
      }),
      validators: api("/api/v1/validators").then((v) => (state.validators = v)),
    };
    const results = await Promise.allSettled(Object.values(tasks));
    state.unavailable = new Set(
      results.flatMap((
        r,
        i,
      ) => (r.status === "rejected" && r.reason.status === 501 ? [Object.keys(tasks)[i]] : [])),
    );
    const failed = results
      .map((r, i) => [Object.keys(tasks)[i], r])
      .filter(([, r]) => r.status === "rejected" && ![404, 501].includes(r.reason.status));
    if (failed.some(([, r]) => r.reason.status === 401)) {
      showBanner(TOKEN_NEEDED);
    } else if (failed.length) {
      showBanner(
        `Could not load ${failed.map(([k]) => k).join(", ")}: ${failed[0][1].reason.message}`,
      );
    }
    // EventSource hides the status of a refused stream; a node that answers reads but not the
    // stream has no live events (a role without them), which is not a lost connection.
    if (state.status && source && source.readyState === EventSource.CLOSED) {
      setLive(false, "No live updates");
    }
    invalidate("overview", "charts", "devices", "blocks", "validators");
  }

  // ---------- live events ----------

  let source = null;
  let everOpened = false;
  function setLive(on, text) {
    $("live-dot").className = "dot " + (on ? "on" : "off");
    $("live-text").textContent = text;
  }
  function connect() {
    if (source) source.close();
    const url = "/api/v1/events" +
      (state.token ? `?access_token=${encodeURIComponent(state.token)}` : "");
    source = new EventSource(url);
    source.addEventListener("open", () => {
      setLive(true, "Live");
      // After a reconnect the events missed meanwhile are gone: reload the state once.
      if (everOpened) refreshAll();
      everOpened = true;
    });
    source.addEventListener("error", () => {
      const closed = source.readyState === EventSource.CLOSED;
      setLive(false, !closed ? "Reconnecting…" : state.status ? "No live updates" : "Disconnected");
    });
    const on = (type, fn) =>
      source.addEventListener(type, (e) => {
        try {
          fn(JSON.parse(e.data));
        } catch (err) {
          console.warn("bad event", type, err);
        }
      });
    on("hello", (s) => {
      setStatus(s);
      invalidate("overview");
    });
    on("status", (s) => {
      if (state.status) setStatus({ ...state.status, ...s });
      invalidate("overview");
    });
    on("round", (r) => {
      putRound(r);
      if (state.status && (state.status.round === undefined || r.round > state.status.round)) {
        state.status.round = r.round;
      }
      if (r.finishedAt) {
        logActivity(
          `Round ${r.round} ${MODE_NAME[r.mode]}: accuracy ${pct(r.metrics.accuracy)}, F1 ${
            pct(r.metrics.f1)
          }`,
        );
      }
      invalidate("overview", "charts");
    });
    on("block", (b) => {
      putBlock(b);
      if (
        state.status &&
        (state.status.ledgerHeight === undefined || b.height > state.status.ledgerHeight)
      ) {
        state.status.ledgerHeight = b.height;
      }
      logActivity(
        `Block #${b.height} by ${b.proposer}, ${b.txCount} txs — ${
          b.verified ? "verified" : "VERIFICATION FAILED"
        }`,
      );
      invalidate("overview", "blocks");
    });
    on("device", (d) => {
      const before = state.devices.get(d.id);
      state.devices.set(d.id, d);
      if (!before || before.status !== d.status) logActivity(`${d.id} is ${d.status}`);
      invalidate("overview", "devices");
    });
    on("validator", (v) => {
      state.validators = v;
      invalidate("overview", "validators");
    });
  }

  selectTab(location.hash.slice(1) || "overview", false);
  connect();
  refreshAll();
})();
