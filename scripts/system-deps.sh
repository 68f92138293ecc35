#!/usr/bin/env bash
# Debian packages the tests need and pip cannot provide: Chromium (a real browser renders the
# API's /docs page) and Prometheus (promtool checks the alert rules). Installs only what is
# missing; uses sudo when not root.
set -euo pipefail
browser_found() {
  for name in chromium chromium-browser google-chrome; do command -v "$name" >/dev/null && return 0; done
  return 1
}
missing=()
browser_found || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "note: ${missing[*]} missing, and this is not Debian/Ubuntu: install them yourself" >&2
  echo "      (macOS: brew install --cask chromium; brew install prometheus), or the tests" >&2
  echo "      that use them (the browser test, the alert rule checks) fail and say so." >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} (apt-get)"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
