#!/usr/bin/env bash
# Installs the pinned toolchain (deno and bun from npm, tools/toolchain/package.json) into
# tools/toolchain/node_modules and the app's npm dependencies into ./node_modules, then generates
# the embedded assets. Re-runs reuse what is installed: npm ci runs only when a lock file changed.
# Use the toolchain with: export PATH="$PWD/tools/toolchain/node_modules/.bin:$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null || { echo "error: npm is required (install Node.js 20 or newer)" >&2; exit 1; }

# npm ci into $1 unless its lock file is unchanged since the last install there.
install_locked() {
  local dir=$1 what=$2 stamp="$1/node_modules/.iomt-sfl-installed"
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "==> $what already installed in $dir/node_modules"
  else
    echo "==> installing $what into $dir/node_modules (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
install_locked tools/toolchain "the pinned toolchain (deno, bun)"
install_locked . "the npm dependencies"
tc=tools/toolchain/node_modules/.bin
echo "==> toolchain: deno $("$tc/deno" --version | head -1 | cut -d' ' -f2), bun $("$tc/bun" --version)"

echo "==> generating embedded assets into ./generated"
"$tc/deno" run --allow-read --allow-write tools/gen_embedded.ts
