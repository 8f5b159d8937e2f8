#!/usr/bin/env bash
# Runs every check and test: format, lint, type check, unit and simulation tests, then the
# end-to-end tests against the compiled binary (dist/iomt-sfl) and in headless Chromium.
# Installs what it needs first (toolchain into ./node_modules; Chromium via apt when root).
set -euo pipefail
cd "$(dirname "$0")"

./compile.sh

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Chromium for the browser tests (apt-get install chromium)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "==> warning: /usr/bin/chromium is missing and this is not root: browser tests will be skipped"
  fi
fi

export PATH="$PWD/tools/toolchain/node_modules/.bin:$PATH"
echo "==> static checks (deno fmt --check, deno lint, deno check)"
deno task --quiet check
echo "==> tests (deno test: unit, simulation, end-to-end, browser)"
deno task --quiet test
