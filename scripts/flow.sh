#!/usr/bin/env bash
# The start flow behind `just start` and `just run`: prepare, preflight, y/N, bundle, vm,
# provision, then attach (start) or exec a command (run), and tear the bottle down when
# the agent exits, a step fails, or the user presses Ctrl-C.
#
#   scripts/flow.sh start agent=NAME [backend=docker] [yes=true] [cwd=DIR] [slug=SLUG] [keep=true] [manifest=DIR]
#   scripts/flow.sh run agent=NAME [backend=docker] [cwd=DIR] [manifest=DIR] -- CMD [ARG...]
#
# manifest=DIR reads agents and bottles from DIR instead of this checkout's bottles/.
#
# slug=SLUG resumes: a live bottle with that slug is reattached; otherwise it is rebuilt
# under the same slug. keep=true leaves the bottle running after the agent exits.
set -uo pipefail
here=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
export PATH="$here/bin:$PATH"

mode=${1:?usage: flow.sh start|run key=value... [-- CMD]}; shift
agent="" backend=docker yes=false cwd="" slug="" keep=false cmd=()
while [ $# -gt 0 ]; do
  case "$1" in
    agent=*) agent="${1#agent=}" ;;
    backend=*) backend="${1#backend=}" ;;
    yes=*) yes="${1#yes=}" ;;
    cwd=*) cwd="${1#cwd=}" ;;
    slug=*) slug="${1#slug=}" ;;
    keep=*) keep="${1#keep=}" ;;
    manifest=*) export BB_MANIFEST_DIR="${1#manifest=}" ;;
    --) shift; cmd=("$@"); break ;;
    # `just` drops a `--` before the command, so in run mode the first word that is not
    # key=value starts the command, and so does an environment assignment (FOO=1 env).
    *) if [ "$mode" = run ] && { [[ "$1" != *=* ]] || [[ "$1" =~ ^[A-Z_][A-Z0-9_]*= ]]; }; then cmd=("$@"); break; fi
       usage="agent=NAME [backend=docker|smolmachines] [yes=true] [cwd=DIR] [slug=SLUG] [keep=true] [manifest=DIR]"
       [ "$mode" = run ] && usage="agent=NAME [backend=docker|smolmachines] [cwd=DIR] [manifest=DIR] -- CMD"
       hint=""; [[ "$1" != *=* ]] && [ -z "$agent" ] && hint=" (did you mean agent=$1?)"
       echo "just $mode: unknown argument '$1'$hint (expected $usage)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$agent" ] || { echo "just $mode: missing agent=NAME (try: just $mode agent=shell)" >&2; exit 2; }
# Checked here so the message names what you typed (backend=, cwd=, slug=), not a flag.
case "$backend" in docker|smolmachines) ;; *) echo "just $mode: backend=$backend is not a backend (docker or smolmachines)" >&2; exit 2 ;; esac
[ -z "$cwd" ] || [ -d "$cwd" ] || { echo "just $mode: cwd=$cwd is not a directory" >&2; exit 2; }
[ -z "$slug" ] || [[ "$slug" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "just $mode: slug=$slug is not a slug (lower-case letters, digits and -, as bb-list shows them)" >&2; exit 2; }
if [ "$mode" = run ]; then
  [ ${#cmd[@]} -gt 0 ] || { echo "just run: missing the command: just run agent=$agent -- CMD" >&2; exit 2; }
  # FOO=1 CMD means what it means in a shell; docker exec runs argv as is, so env does it.
  [[ "${cmd[0]}" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && cmd=(env "${cmd[@]}")
  yes=true
fi

state_root=${BB_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/bot-bottle}
work=$(mktemp -d "${TMPDIR:-/tmp}/bb-flow.XXXXXX")
current_slug=""
torn_down=false

teardown() {
  local code=$?
  trap - EXIT INT TERM HUP
  if [ -n "$current_slug" ] && [ "$keep" != true ] && [ "$torn_down" = false ]; then
    torn_down=true
    echo "» tearing down $current_slug" >&2
    bb-cleanup --slug "$current_slug" --yes --quiet --state-dir "$state_root" >&2 || echo "warning: teardown of $current_slug was incomplete; run: bb-cleanup" >&2
  fi
  rm -rf "$work"
  exit "$code"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Resume a live bottle: reattach without rebuilding.
if [ -n "$slug" ] && [ "$mode" = start ] && [ -f "$state_root/bottles/$slug/plan.json" ] \
   && bb-vm exec --slug "$slug" --state-dir "$state_root" -- true >/dev/null 2>&1; then
  echo "» $slug is running: reattaching" >&2
  keep=true
  bb-vm attach --slug "$slug" --state-dir "$state_root"
  exit $?
fi

# Refused before anything is prepared: there would be nobody to say y to the preflight.
if [ "$yes" != true ] && [ ! -t 0 ]; then
  echo "just $mode: no terminal to ask y/N on; pass yes=true to start without asking" >&2
  exit 2
fi

prep_args=("$agent" --backend "$backend" --state-dir "$state_root" --owner-pid $$)
[ -n "$cwd" ] && prep_args+=(--cwd "$cwd")
[ -n "$slug" ] && prep_args+=(--identity "$slug")
bb-prepare "${prep_args[@]}" > "$work/plan.json" || exit $?
# The plan is written with "slug" second, top level (lib/plan/io.ts); read it with bash
# rather than one more node start. Slugs are [a-z0-9-] (SLUG_PATTERN).
plan_text=$(<"$work/plan.json")
[[ $plan_text =~ \"slug\":\ \"([a-z0-9][a-z0-9-]*)\" ]] || { echo "just $mode: bb-prepare's plan has no slug" >&2; exit 1; }
current_slug=${BASH_REMATCH[1]}
# From here the flow's files live in the bottle's state dir, so even a SIGKILLed flow
# (no trap runs) leaves nothing that bb-cleanup does not remove with the bottle.
bottle_work="$state_root/bottles/$current_slug/flow"
mkdir -p "$bottle_work" && mv "$work/plan.json" "$bottle_work/" && rm -rf "$work" && work="$bottle_work"

if [ "$yes" != true ]; then
  read -r -p "Start this bottle? [y/N] " answer
  case "$answer" in y|Y|yes|YES) ;; *) echo "not started" >&2; exit 1 ;; esac
fi

# One pipe, so each tool starts (and bb-vm looks its image up) while the one before it
# works; tee keeps every stage's plan. --no-wait: the agent container starts while the
# bundle's daemons come up; bb-provision waits for them before it touches the bottle.
bb-bundle --no-wait --plan "$work/plan.json" | tee "$work/bundled.json" \
  | bb-vm | tee "$work/vm.json" \
  | bb-provision > "$work/ready.json"
stages=("${PIPESTATUS[@]}")
# The first step that failed says why; the ones after it only saw no plan arrive.
for code in "${stages[@]}"; do [ "$code" -eq 0 ] || exit "$code"; done
# A kept bottle outlives this flow: hand it over now that it is complete. Without an owner
# record it is live while its agent runs; with ours left behind, bb-cleanup would take it
# for the leftovers of a killed flow as soon as this shell is gone.
if [ "$keep" = true ]; then rm -f "$state_root/bottles/$current_slug/owner.json"; fi

if [ "$mode" = start ]; then
  if [ "$keep" = true ]; then
    echo "» attaching to $current_slug (keep=true: it stays up when the agent exits; just start slug=$current_slug reattaches, just cleanup removes it)" >&2
  else
    echo "» attaching to $current_slug (exit the agent to stop the bottle)" >&2
  fi
  bb-vm attach --plan "$work/ready.json"
else
  bb-vm exec --plan "$work/ready.json" -- "${cmd[@]}"
fi
