#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Chromium, which opens the `distilfuse report` page
# (tests/report/test_browser.py). Installs it with apt-get when it is missing and this user may (root, or
# password-less sudo). Never fails the command it prefixes: when it cannot install, it says why and the
# browser tests skip with the same reason.
for browser in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$browser" >/dev/null 2>&1; then exit 0; fi
done
if [ -n "${DISTILFUSE_CHROMIUM:-}" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ci_setup: no Chromium and no apt-get here; the browser tests will skip (install Chromium to run them)"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "ci_setup: no Chromium, and installing it needs root; the browser tests will skip"
  exit 0
fi
echo "ci_setup: installing chromium with apt-get (for the browser test of the report page)"
if "${as_root[@]}" apt-get update -qq >/dev/null 2>&1 &&
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    chromium fonts-liberation >/dev/null 2>&1; then
  echo "ci_setup: chromium installed"
else
  echo "ci_setup: apt-get could not install chromium (offline?); the browser tests will skip"
fi
exit 0
