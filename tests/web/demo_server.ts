// A seeded node UI to look at by hand: `deno run --allow-net tests/web/demo_server.ts [port]`,
// then open http://127.0.0.1:8787/. A new round and block arrive every 3 s; the admin token is
// ADMIN_TOKEN from fixtures.ts. Not a test; the browser test does the checking.
import { createApp } from "../../web/app.ts";
import { ADMIN_TOKEN, makeBlock, makeRound, makeValidators, seededView } from "./fixtures.ts";

const port = Number(Deno.args[0] ?? 8787);
const { view, metrics } = seededView(5);
view.setAdmin({
  startRound: () => Promise.resolve({ accepted: true, message: "demo: rounds keep coming anyway" }),
  stopRound: () => Promise.resolve({ accepted: true, message: "demo: noted" }),
  quarantine: (id) => {
    view.patchDevice(id, { status: "quarantined", flags: ["quarantined"] });
    return Promise.resolve({ accepted: true, message: "demo: quarantined" });
  },
  readmit: (id) => {
    view.patchDevice(id, { status: "active", flags: [] });
    return Promise.resolve({ accepted: true, message: "demo: readmitted" });
  },
});
let round = 5;
setInterval(() => {
  round++;
  view.publishRound(makeRound(round, "splitfed"));
  view.publishRound(makeRound(round, "fedavg"));
  view.publishBlock(makeBlock(round, { failed: round % 9 === 0 }), {
    commitLatencyMs: 120 + Math.random() * 200,
  });
  view.setValidators(makeValidators(round));
}, 3000);
const app = createApp(view, { version: "demo", adminToken: ADMIN_TOKEN, metrics });
Deno.serve({ hostname: "127.0.0.1", port }, app.fetch);
console.log(`admin token: ${ADMIN_TOKEN}`);
