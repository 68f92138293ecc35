#!/usr/bin/env bash
# Run a second command beside the main one (`make test`: the container tests beside the suite).
#   scripts/beside.sh LOG SECOND MAIN...
# SECOND, a shell command (none when empty), runs in the background, its output in LOG, printed
# once MAIN has ended; the exit code is MAIN's, else SECOND's. Ctrl-C stops both, and waits for
# SECOND to clean up: a background job of a script ignores Ctrl-C, so SECOND runs in a process
# group of its own (job control) and is sent the interrupt.
set -uo pipefail
log=$1 second=$2
shift 2

pid=
if [ -n "$second" ]; then
  set -m
  bash -c "$second" </dev/null >"$log" 2>&1 &
  pid=$!
  set +m
  echo "started beside this command, its output in $log: $second"
fi
trap '[ -n "$pid" ] && kill -INT -- "-$pid" 2>/dev/null' INT TERM

"$@"
status=$?
if [ -n "$pid" ]; then
  while :; do  # a signal interrupts `wait`: wait again until SECOND has ended
    wait "$pid"
    second_status=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  echo "--- $log (exit code $second_status)"
  cat "$log"
  [ "$status" = 0 ] && status=$second_status
fi
exit "$status"
