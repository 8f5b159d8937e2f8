// bun tools/build_binary.ts <entry> <outfile>: the single binary, with everything embedded.
// The libSQL client picks its native addon with a computed require(`@libsql/${target}`), which
// a bundler cannot follow; rewrite it to a static require of the linux-x64-gnu addon so that
// `bun build --compile` embeds the .node file.
import type { BunPlugin } from "bun";

const LIBSQL_NATIVE_PACKAGE = "@libsql/linux-x64-gnu";
const COMPUTED_REQUIRE = "return require(`@libsql/${target}`);";

const libsqlStaticNative: BunPlugin = {
  name: "libsql-static-native",
  setup(build) {
    build.onLoad({ filter: /node_modules\/libsql\/index\.js$/ }, async (args) => {
      const source = await Bun.file(args.path).text();
      if (!source.includes(COMPUTED_REQUIRE)) {
        throw new Error(`libsql/index.js changed: "${COMPUTED_REQUIRE}" not found; update tools/build_binary.ts`);
      }
      return {
        loader: "js",
        contents: source.replace(COMPUTED_REQUIRE, `return require(${JSON.stringify(LIBSQL_NATIVE_PACKAGE)});`),
      };
    });
  },
};

const [entry, outfile] = Bun.argv.slice(2);
if (!entry || !outfile) {
  console.error("usage: bun tools/build_binary.ts <entry.ts> <outfile>");
  process.exit(2);
}
const result = await Bun.build({
  entrypoints: [entry],
  compile: { outfile },
  plugins: [libsqlStaticNative],
  minify: true,
  sourcemap: "none",
  // Precompiled bytecode: the runtime skips parsing the ~10 MB bundle at every start. Bytecode
  // needs CommonJS output, hence no top-level await in main.ts.
  format: "cjs",
  bytecode: true,
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
