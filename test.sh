#!/usr/bin/env bash
# Runs every check and test: format, lint, type check, unit and simulation tests, then the
# end-to-end tests against the compiled binary (dist/iomt-sfl) and in headless Chromium.
# Installs what it needs first (toolchain into ./node_modules; Chromium via apt when root).
set -euo pipefail
cd "$(dirname "$0")"

./compile.sh

# The e2e tests run the binary in a network namespace with only loopback (unshare + ip).
if ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing iproute2 and util-linux for the loopback-only namespace tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 util-linux >/dev/null
  fi
fi

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
log=$(mktemp)
set +e
deno task --quiet test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# deno's summary ("ok | 412 passed (10 steps) | 0 failed") as the plain line CI readers expect.
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
passed=$(printf '%s' "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
failed=$(printf '%s' "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
rm -f "$log"
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
