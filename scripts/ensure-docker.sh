#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`, for CI and fresh Debian/Ubuntu machines.
#
#   scripts/ensure-docker.sh [PIDFILE]
#
# When docker already answers, does nothing. Otherwise installs docker.io with apt-get when
# dockerd is missing, starts dockerd in the background (log: $BB_DOCKERD_LOG, default
# /tmp/bb-dockerd.log; extra flags: $BB_DOCKERD_ARGS) and waits up to
# $BB_DOCKER_WAIT_SECONDS (default 60) for it to answer. If it started dockerd, it writes
# dockerd's PID to PIDFILE (when given) so the caller can stop it; if not, PIDFILE is left
# absent. Prints what it did on stderr. Needs root (or passwordless sudo) to install/start.
set -euo pipefail

pidfile=${1:-}
log=${BB_DOCKERD_LOG:-/tmp/bb-dockerd.log}
wait_s=${BB_DOCKER_WAIT_SECONDS:-60}

say() { printf 'ensure-docker: %s\n' "$*" >&2; }

# A prefix rather than a function, so that `$!` below is dockerd's (or sudo's) PID.
root=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { say "not root and no sudo: cannot install or start dockerd"; exit 1; }
  root=(sudo -n)
fi
as_root() { ${root[@]+"${root[@]}"} "$@"; }

answers() { docker info >/dev/null 2>&1; }

if [ -n "$pidfile" ]; then rm -f "$pidfile"; fi

if command -v docker >/dev/null 2>&1 && answers; then
  say "docker already answers ($(docker info --format '{{.ServerVersion}}' 2>/dev/null)); nothing to do"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  say "dockerd is not installed: installing docker.io with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io </dev/null
fi

# Word splitting of BB_DOCKERD_ARGS is intended: it is a list of flags.
# shellcheck disable=SC2086
${root[@]+"${root[@]}"} dockerd ${BB_DOCKERD_ARGS:-} >"$log" 2>&1 </dev/null &
pid=$!
say "started dockerd (pid $pid, log $log); waiting up to ${wait_s}s for it to answer"

deadline=$((SECONDS + wait_s))
until answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    say "dockerd exited before answering; last lines of $log:"
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "dockerd did not answer within ${wait_s}s; stopping it. Last lines of $log:"
    tail -n 20 "$log" >&2 || true
    as_root kill "$pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done

if [ -n "$pidfile" ]; then echo "$pid" >"$pidfile"; fi
say "dockerd answers ($(docker info --format '{{.ServerVersion}}' 2>/dev/null))"
