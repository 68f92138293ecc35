#!/usr/bin/env bash
# Debian packages pip cannot provide. `stack`: Prometheus (and promtool) and Alertmanager (and
# amtool), which the native stack runs, and mimalloc, which its API runs on. `browser`: Chromium,
# for the test that renders the API's /docs page. `containers`: a Docker engine and compose, for
# `make compose-test` (and mmdebstrap, which builds a base image where no registry answers).
# `bench`: wrk, the load generator of `make bench`. Installs only what is missing; uses sudo when
# not root.
set -euo pipefail
browser_found() {
  for name in chromium chromium-browser google-chrome; do command -v "$name" >/dev/null && return 0; done
  return 1
}
mimalloc_found() {  # the API's allocator (app/allocator.py), a library: no command
  local cache
  cache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)
  [[ "$cache" == *libmimalloc.so.2* ]]
}
missing=()
for need in "$@"; do
  case "$need" in
    stack)
      command -v promtool >/dev/null || missing+=(prometheus)
      command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
      mimalloc_found || missing+=(libmimalloc2.0) ;;
    browser) browser_found || missing+=(chromium) ;;
    containers)
      command -v dockerd >/dev/null || missing+=(docker.io)
      { docker compose version || command -v docker-compose; } >/dev/null 2>&1 || missing+=(docker-compose)
      command -v mmdebstrap >/dev/null || missing+=(mmdebstrap) ;;
    bench) command -v wrk >/dev/null || missing+=(wrk) ;;
    *) echo "usage: $0 [stack] [browser] [containers] [bench]" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "note: ${missing[*]} missing, and this is not Debian/Ubuntu: install them yourself" >&2
  echo "      (macOS: brew install prometheus alertmanager; brew install --cask chromium;" >&2
  echo "      Docker Desktop for the container tests)." >&2
  echo "      Without them, make stack-up stops and names what is missing." >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} (apt-get)"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# On a machine with systemd, Debian starts its own Prometheus (9090) and Alertmanager (9093)
# at once; the workbook's stack runs them itself, with its config, on those same ports.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  for unit in prometheus prometheus-alertmanager; do
    if systemctl is-active --quiet "$unit"; then
      echo "stopping and disabling Debian's $unit service: make stack-up runs its own"
      $sudo systemctl disable --now "$unit"
    fi
  done
fi
