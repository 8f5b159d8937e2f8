// Rewrites tests/ledger/vectors/*.json. Run after an intended format change:
//   deno run --allow-all tests/ledger/vectors/generate.ts
import { writeFileSync } from "node:fs";
import { buildVectors, vectorText } from "./build.ts";

const dir = new URL(".", import.meta.url).pathname;
for (const [name, value] of Object.entries(await buildVectors())) {
  writeFileSync(dir + name, vectorText(value));
  console.log(`wrote ${dir}${name}`);
}
