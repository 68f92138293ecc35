#!/usr/bin/env bash
# Debian packages the tests need and pip cannot provide: Chromium (a real browser renders the
# API's /docs page). Installs only what is missing; uses sudo when not root.
set -euo pipefail
browser_found() {
  for name in chromium chromium-browser google-chrome; do command -v "$name" >/dev/null && return 0; done
  return 1
}
browser_found && exit 0
if ! command -v apt-get >/dev/null; then
  echo "note: Chromium is missing and this is not Debian/Ubuntu, so it is not installed for you." >&2
  echo "      Install it (macOS: brew install --cask chromium; Fedora: sudo dnf install chromium)," >&2
  echo "      or the one browser test, test_the_docs_page_renders_in_a_real_browser, will fail." >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing chromium (apt-get)"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium
