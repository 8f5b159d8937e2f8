#!/usr/bin/env bash
# Installs the pinned toolchain (deno and bun, from package.json devDependencies) and all npm
# dependencies into ./node_modules, then generates the embedded assets. Re-runs reuse what is
# already installed: npm ci runs only when package-lock.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.iomt-sfl-installed
if [ -x node_modules/.bin/deno ] && [ -x node_modules/.bin/bun ] && [ -f "$stamp" ] &&
  cmp -s package-lock.json "$stamp"; then
  echo "==> toolchain already installed in ./node_modules (deno $(node_modules/.bin/deno --version | head -1 | cut -d' ' -f2), bun $(node_modules/.bin/bun --version))"
else
  command -v npm >/dev/null || { echo "error: npm is required (install Node.js 20+)" >&2; exit 1; }
  echo "==> installing the pinned toolchain (deno, bun) and dependencies into ./node_modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

echo "==> generating embedded assets (tfjs wasm) into ./generated"
node_modules/.bin/deno run --allow-read --allow-write tools/gen_embedded.ts
