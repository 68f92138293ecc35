#!/usr/bin/env bash
# A Docker engine for `make compose-test`.
#   start:       print the DOCKER_HOST of an engine that answers (Docker Desktop, a system
#                service), else, as root on Linux, start Debian's dockerd in the background with
#                its own state folder (DOCKER_ENGINE_DIR), as on a CI machine with no systemd.
#   stop:        stop the engine this script started (by its pid file), never another.
#   exec -- CMD: run CMD with DOCKER_HOST set; stop the engine afterwards if this call started it.
set -euo pipefail
dir="${DOCKER_ENGINE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-workbook/docker-engine}"
sock="unix://$dir/docker.sock"

answers() { DOCKER_HOST="$1" docker info >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then echo "$DOCKER_HOST"; exit 0; fi
    if answers "unix:///var/run/docker.sock"; then echo "unix:///var/run/docker.sock"; exit 0; fi
    if answers "$sock"; then echo "$sock"; exit 0; fi
    if ! command -v dockerd >/dev/null; then
      echo "no Docker engine: install Docker (Debian: apt-get install docker.io docker-compose)" >&2
      exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
      echo "no Docker engine answers, and starting dockerd needs root: start Docker yourself" >&2
      exit 1
    fi
    mkdir -p "$dir"
    # Never --bridge none: it would delete the docker0 bridge other engines share.
    nohup dockerd --data-root "$dir/root" --exec-root "$dir/exec" -H "$sock" \
      --pidfile "$dir/dockerd.pid" >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 150); do
      answers "$sock" && { echo "$sock"; exit 0; }
      sleep 0.2
    done
    echo "dockerd did not answer within 30 s; its log: $dir/dockerd.log" >&2
    tail -n 20 "$dir/dockerd.log" >&2
    exit 1 ;;
  stop)
    [ -f "$dir/dockerd.pid" ] || exit 0
    pid="$(cat "$dir/dockerd.pid")"
    kill "$pid" 2>/dev/null || exit 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
    echo "dockerd ($pid) did not stop within 20 s" >&2
    exit 1 ;;
  exec)
    shift; [ "${1:-}" = "--" ] && shift
    was_running=0
    [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null && was_running=1
    host="$("$0" start)"
    status=0
    DOCKER_HOST="$host" "$@" || status=$?
    if [ "$was_running" = 0 ] && [ "$host" = "$sock" ]; then "$0" stop; fi
    exit "$status" ;;
  *) echo "usage: $0 start|stop|exec -- CMD" >&2; exit 2 ;;
esac
