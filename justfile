# bot-bottle: the recipes people type. `npx just --list` shows them.
#
# Recipes take `key=value` words (just hands `agent=researcher`, written after the recipe
# name, to the recipe as a literal argument), so each reads its pairs itself.

# --norc: bash reads bashrc files in a non-interactive shell whose stdin is a socket (it
# takes that for an ssh session), and -u would then fail on the system bashrc's $PS1.
set shell := ["bash", "--norc", "-euo", "pipefail", "-c"]
set positional-arguments

export PATH := justfile_directory() / "bin" + ":" + justfile_directory() / "node_modules/.bin" + ":" + env_var('PATH')
# Recipes run in this folder; relative paths you type (cwd=., manifest=m, --plan FILE,
# --state-dir DIR, $BB_STATE_DIR) are read from the folder you ran just in.
export BB_CALLER_DIR := invocation_directory()

# list the recipes
default:
    @just --list --unsorted

# install npm dependencies and build the tool bundles (dist/)
setup:
    npm install --no-audit --no-fund
    npm run build

# build the tool and sidecar bundles (tsup -> dist/)
build:
    npm run build

# run every test (node + deno; docker tier when a Docker engine answers, or --require-docker to fail without one)
[no-exit-message]
test *args:
    npm test -- "$@"

# run the fast tests only (no docker)
[no-exit-message]
test-unit *args:
    node scripts/test.mjs --tier unit "$@"

# resolve an agent into a plan: just prepare agent=researcher [backend=docker] [cwd=DIR] [manifest=DIR]
[no-exit-message]
prepare *args:
    #!/usr/bin/env bash
    set -euo pipefail
    cd "$BB_CALLER_DIR"
    agent=""; extra=()
    for a in "$@"; do
      case "$a" in
        agent=*) agent="${a#agent=}" ;;
        -h | --help) echo "usage: just prepare agent=NAME [backend=docker|smolmachines] [cwd=DIR] [manifest=DIR]"
          echo "Prints the bottle's plan (JSON, stdout) and preflight (stderr); starts nothing."; exit 0 ;;
        # Checked here, as scripts/flow.sh does, so the error names what you typed.
        backend=docker|backend=smolmachines) extra+=(--backend "${a#backend=}") ;;
        backend=*) echo "just prepare: $a is not a backend (docker or smolmachines)" >&2; exit 2 ;;
        cwd=|manifest=) ;; # none given, as for just start
        cwd=*|manifest=*) [ -d "${a#*=}" ] || { echo "just prepare: $a is not a directory" >&2; exit 2; }
          if [[ $a == cwd=* ]]; then extra+=(--cwd "${a#cwd=}"); else extra+=(--manifest-dir "${a#manifest=}"); fi ;;
        *) echo "just prepare: unknown argument '$a' (expected agent=NAME [backend=docker|smolmachines] [cwd=DIR] [manifest=DIR])" >&2; exit 2 ;;
      esac
    done
    [ -n "$agent" ] || { echo "just prepare: missing agent=NAME" >&2; exit 2; }
    bb-prepare "${extra[@]}" -- "$agent"

# start an agent in a bottle and attach to it: just start agent=researcher [backend=docker] [yes=true] [cwd=DIR] [slug=SLUG] [keep=true] [manifest=DIR]; resume a kept one: just start slug=SLUG
[no-exit-message]
start *args:
    @scripts/flow.sh start "$@"

# run one command in a fresh bottle and tear it down: just run agent=shell [backend=docker] [cwd=DIR] [manifest=DIR] -- CMD
[no-exit-message]
run *args:
    @scripts/flow.sh run "$@"

# the live bottles (--json for scripts)
[no-exit-message]
list *args:
    @cd "$BB_CALLER_DIR" && bb-list "$@"

# answer a bottle's agent: just supervise --slug S list | approve ID | deny ID [REASON] | answer ID TEXT
[no-exit-message]
supervise *args:
    @cd "$BB_CALLER_DIR" && bb-supervise "$@"

# remove everything no live bottle owns (one y/N; --yes to skip, --slug S for one bottle)
[no-exit-message]
cleanup *args:
    @cd "$BB_CALLER_DIR" && bb-cleanup "$@"

# benchmarks: just bench proxy [--duration S] [--connections 1,8] [--json] | just bench start [--runs N] | just bench dlp [--runs N]
[no-exit-message]
bench *args:
    @node --import ./node_modules/tsx/dist/loader.mjs tests/bench/main.ts "$@"
