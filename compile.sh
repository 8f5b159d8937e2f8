#!/usr/bin/env bash
# Builds dist/iomt-sfl: one self-contained executable (runtime, code, web UI, tfjs wasm, libSQL
# native module, database migrations). Uses `bun build --compile`, which works offline.
# `deno compile` needs a runtime download this network cannot reach; with DENORT_BIN set to a
# denort binary it is used instead (untested path: the Bun binary is the tested one).
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup.sh

mkdir -p dist
if [ -n "${DENORT_BIN:-}" ]; then
  echo "==> compiling dist/iomt-sfl with deno compile (DENORT_BIN=$DENORT_BIN)"
  tools/toolchain/node_modules/.bin/deno compile --allow-all --output dist/iomt-sfl main.ts
else
  echo "==> compiling dist/iomt-sfl with bun build --compile"
  tools/toolchain/node_modules/.bin/bun tools/build_binary.ts main.ts dist/iomt-sfl
fi
size_mb=$(( $(stat -c %s dist/iomt-sfl) / 1024 / 1024 ))
echo "==> dist/iomt-sfl ready (${size_mb} MB); try: dist/iomt-sfl --help"
