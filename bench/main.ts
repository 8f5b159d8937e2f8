// deno task bench [name ...]: runs the named benchmarks (all when none is named).
import process from "node:process";

const BENCHMARKS: Record<string, () => Promise<void>> = {
  cli: async () => (await import("./cli.ts")).benchCli(),
  ledger: async () => (await import("./ledger.ts")).benchLedger(),
  train: async () => {
    const result = await (await import("./train.ts")).benchTrain();
    console.log(result.model + "\n\n" + result.table);
  },
  // bench/data.ts measures as it loads (flags: --rows N --repeat N).
  data: async () => void (await import("./data.ts")),
  privacy: async () => (await import("./privacy.ts")).benchPrivacy(),
};

const names = process.argv.slice(2).filter((a) => !a.startsWith("--") && !/^\d+$/.test(a));
const selected = names.length > 0 ? names : Object.keys(BENCHMARKS);
for (const name of selected) {
  const run = BENCHMARKS[name];
  if (!run) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHMARKS).join(", ")}`);
    process.exit(2);
  }
  console.log(`\n## bench ${name}\n`);
  await run();
}
