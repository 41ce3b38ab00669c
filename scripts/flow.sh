#!/usr/bin/env bash
# The start flow behind `just start` and `just run`: prepare, preflight, y/N, bundle, vm,
# provision, then attach (start) or exec a command (run), and tear the bottle down when
# the agent exits, a step fails, or the user presses Ctrl-C.
#
#   scripts/flow.sh start agent=NAME [backend=docker] [yes=true] [cwd=DIR] [slug=SLUG] [keep=true] [manifest=DIR]
#   scripts/flow.sh start slug=SLUG [yes=true] [keep=false]
#   scripts/flow.sh run agent=NAME [backend=docker] [cwd=DIR] [manifest=DIR] -- CMD [ARG...]
#
# manifest=DIR reads agents and bottles from DIR instead of this checkout's bottles/.
#
# slug=SLUG resumes: a live bottle with that slug is reattached; otherwise it is rebuilt
# under the same slug, keeping its state dir (the hosts approved for it, its supervise
# queue). Its agent, backend and manifest tree come from its saved plan, and it stays up
# when the agent exits unless keep=false. Until you say y, its folder (or one an older
# bottle left under that slug) is as it was: a "n", Ctrl-C or a failing bb-prepare puts
# back what bb-prepare rewrote there. keep=true leaves the bottle running after the
# agent exits. cwd= and manifest= are read from the folder just was run in.
set -uo pipefail
here=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
export PATH="$here/bin:$PATH"
# live_owner, take_over, undo_claim, clear_dead_lock: a bottle's owner record and locks.
. "$here/scripts/flow-owner.sh"

mode=${1:?usage: flow.sh start|run key=value... [-- CMD]}; shift
# Paths you type (cwd=., manifest=../m) mean what they mean where you typed them; just
# runs recipes in the checkout, so the justfile hands the folder you were in over.
caller=${BB_CALLER_DIR:-$PWD}
from_caller() {
  case "$1" in
    /*) printf '%s' "$1" ;;
    "~") printf '%s' "$HOME" ;;
    "~/"*) printf '%s/%s' "$HOME" "${1#"~/"}" ;;
    *) printf '%s/%s' "$caller" "$1" ;;
  esac
}
synopsis="agent=NAME [backend=docker|smolmachines] [yes=true] [cwd=DIR] [slug=SLUG] [keep=true] [manifest=DIR]"
[ "$mode" = start ] || synopsis="agent=NAME [backend=docker|smolmachines] [cwd=DIR] [manifest=DIR] -- CMD"
# just start --help, just run --help: what to type (README.md has the rest).
usage() {
  echo "usage: just $mode $synopsis"
  if [ "$mode" = start ]; then
    echo "       just start slug=SLUG [keep=false]"
    echo "Shows what the bottle can reach, asks y/N, starts it and attaches you to the agent; the"
    echo "bottle is torn down when the agent exits, unless keep=true (slug= resumes a kept one)."
  else
    echo "Runs CMD in a fresh bottle without asking, tears it down, and exits with CMD's code."
  fi
}
agent="" backend=docker backend_given="" keep_given=false yes=false cwd="" slug="" keep=false manifest="" cmd=() cmd_after_dashes=false
while [ $# -gt 0 ]; do
  case "$1" in
    agent=*) agent="${1#agent=}" ;;
    backend=*) backend="${1#backend=}"; backend_given=$backend ;;
    yes=*|keep=*|slug=*)
      if [ "$mode" = run ]; then
        echo "just run: ${1%%=*}= is for just start (run starts a fresh bottle, runs the command without asking, and always tears it down)" >&2; exit 2
      fi
      case "$1" in
        yes=*) yes="${1#yes=}" ;;
        keep=*) keep="${1#keep=}"; keep_given=true ;;
        slug=*) slug="${1#slug=}" ;;
      esac ;;
    cwd=*) cwd="${1#cwd=}"; [ -z "$cwd" ] || cwd=$(from_caller "$cwd") ;;
    manifest=*) manifest="${1#manifest=}"; [ -z "$manifest" ] || manifest=$(from_caller "$manifest") ;;
    # A `--` that reaches us is a second one: what follows is the command even when it starts with -.
    --) shift; cmd=("$@"); cmd_after_dashes=true; break ;;
    # Before the command: a command that starts with - comes after a second -- (below).
    -h | --help) usage; exit 0 ;;
    # `just` drops a `--` before the command, so in run mode the first word that is not
    # key=value starts the command, and so does an environment assignment (FOO=1 env).
    *) if [ "$mode" = run ] && { [[ "$1" != *=* ]] || [[ "$1" =~ ^[A-Z_][A-Z0-9_]*= ]]; }; then cmd=("$@"); break; fi
       hint=""; [[ "$1" != *=* ]] && [ -z "$agent" ] && hint=" (did you mean agent=$1?)"
       case "$1" in agent | backend | yes | cwd | slug | keep | manifest) hint=" (did you mean $1=...?)" ;; esac
       # A command where just run takes one: the usage line alone would not say where it goes.
       if [ "$mode" = start ] && [[ "$1" != *=* ]] && [ -n "$agent" ] && [ -z "$hint" ]; then
         echo "just start: unknown argument '$1' (just start attaches the agent and takes no command; to run one: just run agent=$agent -- $1 ...)" >&2; exit 2
       fi
       echo "just $mode: unknown argument '$1'$hint (expected $synopsis)" >&2; exit 2 ;;
  esac
  shift
done
# Set but empty is refused, as every tool refuses it (lib/paths.ts): not the default root.
if [ "${BB_STATE_DIR+set}" = set ] && [ -z "${BB_STATE_DIR//[[:space:]]/}" ]; then
  echo "just $mode: \$BB_STATE_DIR is empty: unset it or give the folder bot-bottle keeps its bottles in" >&2; exit 2
fi
# A relative one is read from the folder you ran just in, as a tool run there would read it.
[ -z "${BB_STATE_DIR:-}" ] || [[ $BB_STATE_DIR == /* ]] || export BB_STATE_DIR="$caller/$BB_STATE_DIR"
state_root=${BB_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/bot-bottle}
[ -z "$slug" ] || [[ "$slug" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "just $mode: slug=$slug is not a slug (lower-case letters, digits and -, as bb-list shows them)" >&2; exit 2; }
# A bottle resumed by slug is the agent, backend, manifest tree and checkout it was made
# from: the words left out are read from its saved plan (with bash: one node start less),
# and an agent= or backend= that differs is refused rather than resuming something else.
has_saved_plan=false saved_cwd_gone=""
# The JSON string $1 (its text between the quotes) as it reads: a path may hold " or \.
# Fails on a \uXXXX (a control character JSON wrote so), which is not read here.
json_unescape() {
  local rest=$1 out=""
  while [[ $rest =~ ^([^\\]*)\\(.)(.*)$ ]]; do
    out+=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
      '"' | '\' | /) out+=${BASH_REMATCH[2]} ;;
      n) out+=$'\n' ;;
      t) out+=$'\t' ;;
      *) return 1 ;;
    esac
    rest=${BASH_REMATCH[3]}
  done
  printf '%s' "$out$rest"
}
if [ -n "$slug" ] && [ -f "$state_root/bottles/$slug/plan.json" ]; then
  has_saved_plan=true
  saved_plan=$(<"$state_root/bottles/$slug/plan.json")
  string='"(([^"\\]|\\.)*)"'
  for field in agent backend manifest cwd; do
    case $field in
      agent) re='"agent": \{[[:space:]]*"name": '$string; given=$agent ;;
      backend) re='"backend": '$string; given=$backend_given ;;
      manifest) re='"manifestDir": '$string; given=$manifest ;;
      # The plan's own (top-level, two spaces in) cwd: no section's field of that name.
      cwd) re=$'\n  "cwd": '$string; given=$cwd ;;
    esac
    [[ $saved_plan =~ $re ]] && was=$(json_unescape "${BASH_REMATCH[1]}") && [ -n "$was" ] || continue
    if [ -z "$given" ]; then
      case $field in
        agent) agent=$was ;;
        backend) backend=$was ;;
        # Only while it is there: a checkout moved since has its bottles/ elsewhere.
        manifest) [ ! -d "$was" ] || manifest=$was ;;
        # A rebuild copies it in again, as the first start did; one gone since is said.
        cwd) if [ -d "$was" ]; then cwd=$was; else saved_cwd_gone=$was; fi ;;
      esac
    elif [ "$field" = agent ] || [ "$field" = backend ] && [ "$given" != "$was" ]; then
      echo "just $mode: slug=$slug is a bottle of $field=$was, not $field=$given (leave $field= out to resume it)" >&2; exit 2
    fi
  done
fi
if [ -z "$agent" ] && [ -n "$slug" ]; then
  echo "just $mode: there is no bottle $slug in $state_root (bb-list shows them); to start a new bottle under that slug, add agent=NAME" >&2; exit 2
fi
[ -n "$agent" ] || { echo "just $mode: missing agent=NAME (try: just $mode agent=shell)" >&2; exit 2; }
# A bottle resumed by slug is one you kept: it stays up when the agent exits (keep=false
# says otherwise), instead of being torn down with the state you resumed it for.
[ "$has_saved_plan" = false ] || [ "$keep_given" = true ] || keep=true
# Checked here so the message names what you typed (backend=, cwd=, slug=), not a flag.
case "$backend" in docker|smolmachines) ;; *) echo "just $mode: backend=$backend is not a backend (docker or smolmachines)" >&2; exit 2 ;; esac
# Each agent runs in a smolvm microVM there: without smolvm the start would fail only once
# the bundle is up (bb-bundle checks its version before it starts one).
if [ "$backend" = smolmachines ] && ! command -v smolvm >/dev/null; then
  echo "just $mode: backend=smolmachines runs the agent with smolvm, which is not on PATH: install it (README, smolmachines), or leave backend= out for docker" >&2; exit 1
fi
for flag in "yes=$yes" "keep=$keep"; do
  case "${flag#*=}" in true|false) ;; *) echo "just $mode: $flag is not true or false" >&2; exit 2 ;; esac
done
[ -z "$cwd" ] || [ -d "$cwd" ] || { echo "just $mode: cwd=$cwd is not a directory" >&2; exit 2; }
if [ -n "$manifest" ]; then
  [ -d "$manifest" ] || { echo "just $mode: manifest=$manifest is not a directory" >&2; exit 2; }
  export BB_MANIFEST_DIR="$manifest"
fi
if [ "$mode" = run ]; then
  [ ${#cmd[@]} -gt 0 ] || { echo "just run: missing the command: just run agent=$agent -- CMD" >&2; exit 2; }
  [[ "${cmd[0]}" != -* ]] || [ "$cmd_after_dashes" = true ] || {
    echo "just run: unknown argument '${cmd[0]}' (the command comes after --: just run agent=$agent -- CMD; just keeps the first -- for itself, so a command that starts with - needs two: just run agent=$agent -- -- ${cmd[0]})" >&2; exit 2; }
  # FOO=1 CMD means what it means in a shell; bb-vm exec runs argv as is (there a first
  # word with "=" names a file), so env does it.
  [[ "${cmd[0]}" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && cmd=(env "${cmd[@]}")
  yes=true
fi

# The flow's files live in the bottle's state dir (flow/), from when bb-prepare names the
# bottle: nothing is made before it, so a flow killed (no trap runs) at any moment, in a
# long attach too, leaves nothing outside what bb-cleanup removes with the bottle.
work=""
current_slug=""
torn_down=false
# A bottle folder that slug= names and that is there already (a stopped bottle's, or what an
# older one left: its approved hosts, its supervise queue) keeps its state dir unless its
# agent ran: ended before the y (a "n", Ctrl-C, bb-prepare failing), it is put back as it
# was; failed while starting, only what started goes.
resuming=false
# That folder, and where bb-prepare copies what it rewrites there for this flow
# (lib/prepare/before.ts): put back before the y, removed at it.
existing="" copy=""
replaced=false
reached_agent=false
bundle_undone=false
declined=false
step_pid=""
tty_modes=""

# Remove this flow's bottle (extra flags: --keep-state); says so when something stays.
remove_bottle() {
  cleanup --slug "$current_slug" "$@" --yes --quiet --state-dir "$state_root" >&2 || echo "warning: teardown of $current_slug was incomplete; run: bb-cleanup" >&2
}

# A teardown step (bb-cleanup, bb-prepare's put-back) in a session of its own: a terminal
# closed mid-way then sends its HUP to the flow (which ignores it) but not to the step and
# the docker commands it runs, which Node and docker would not ignore. setsid(1) where there
# is one (Linux); elsewhere (macOS) own-session.pl, which keeps the flow's ignored HUP and
# TERM from its first instruction. With neither, the step stays in the flow's session.
own_session() {
  if command -v setsid >/dev/null; then
    setsid "$@" </dev/null
  elif command -v perl >/dev/null; then
    perl "$here/scripts/own-session.pl" "$@" </dev/null
  else
    "$@" </dev/null
  fi
}
cleanup() { own_session bb-cleanup "$@"; }

teardown() {
  local code=$?
  # The teardown outlives the signals that follow the one that started it: Ctrl-C reaches
  # every process on the terminal at once, npx's just (a Node wrapper) then sends just a
  # SIGTERM that just passes on to us, and a terminal closed meanwhile sends HUP. Ignored
  # here (and kept from bb-cleanup: cleanup below). A second Ctrl-C does not end the flow
  # part-way (bash would run an exit trap as soon as bb-cleanup ended, before the terminal
  # modes below were put back, leaving your shell raw, or between two steps, leaving the
  # bottle): it ends only the wait for a kept bottle's session at the end (a trap ends
  # `wait`). The teardown's steps are bounded: BB_DOCKER_TIMEOUT per round of docker calls.
  trap - EXIT
  trap '' TERM HUP
  trap ':' INT
  # Ended before the y: the folder slug= named is put back as it was, from the copy
  # bb-prepare made while it held the folder for this flow (none where it refused: BUSY,
  # another flow's), keeping hosts approved meanwhile, and a bundle of the bottle's that
  # still runs (its agent stopped) re-reads that policy. In its own session, as bb-cleanup.
  if [ -n "$copy" ] && [ -d "$copy" ]; then
    if ! own_session bb-prepare --put-back --identity "$slug" --owner-pid $$ --state-dir "$state_root" >&2; then
      echo "warning: could not put $existing back as it was before this flow: files bb-prepare wrote for the plan you did not start are left in it, and the copy of what was there in $copy (the next just start slug=$slug puts it back)" >&2
      work="" # flow/ holds that copy: kept
    fi
  fi
  if [ -n "$copy" ]; then
    # Ended before its copy was whole, bb-prepare rewrote nothing: its claim goes.
    [ -d "$copy" ] || undo_claim "$existing" $$ "$copy.part"
    # A bb-prepare ended while it held the bottle's decision lock (lib/supervise/lock.ts)
    # leaves it, its holder dead: the next taker would clear it; the folder goes back as it
    # was.
    clear_dead_lock "$existing/supervise.lock"
    rm -rf "$copy.part"
    rmdir "$existing/flow" 2>/dev/null
  fi
  # keep=true keeps a bottle whose agent ran, not the parts of one that failed to start.
  if [ -n "$current_slug" ] && { [ "$keep" != true ] || [ "$reached_agent" = false ]; } && [ "$torn_down" = false ]; then
    torn_down=true
    if [ "$resuming" = true ] && [ "$reached_agent" = false ]; then
      # Before the y its folder was put back above, its owner record with it.
      if [ "$replaced" = true ]; then
        echo "» stopping what started of $current_slug (its state dir stays: just start slug=$current_slug tries again)" >&2
        remove_bottle --keep-state
        rm -f "$state_root/bottles/$current_slug/owner.json"
      fi
    elif [ "$declined" = true ]; then
      # A "n" said "not started"; a signal (Ctrl-C at the question, or as bb-prepare ended
      # with its plan printed) would otherwise leave the preflight as the last word.
      [ "$code" -lt 128 ] || echo "» interrupted: $current_slug was not started (nothing of it is left)" >&2
      rm -rf "$state_root/bottles/$current_slug" # only bb-prepare's files: nothing started
    else
      # The session this ends (bb-vm, our step) then knows it is ours (lib/vm/gone.ts).
      local bottle_dir="$state_root/bottles/$current_slug"
      { [ -d "$bottle_dir" ] && mkdir -p "$bottle_dir/flow" && : > "$bottle_dir/flow/tearing-down"; } 2>/dev/null || true
      echo "» tearing down $current_slug" >&2
      if [ "$bundle_undone" = true ]; then
        cleanup --slug "$current_slug" --yes --quiet --state-dir "$state_root" >/dev/null 2>&1 || rm -rf "$state_root/bottles/$current_slug"
      else
        remove_bottle
      fi
    fi
  fi
  # The flow's own files (plan copies); a torn-down bottle took them already.
  [ -z "$work" ] || rm -rf "$work"
  # The session ends with its bottle (docker exec then gives the terminal back); one in a
  # bottle this flow keeps runs on until you leave it, as a foreground step would.
  [ -z "$step_pid" ] || wait "$step_pid" 2>/dev/null
  # Node puts back the terminal modes it found when it started, and a bb-cleanup started
  # while docker exec still held the terminal raw finds raw ones: set them as they were.
  [ -z "$tty_modes" ] || stty "$tty_modes" 2>/dev/null
  exit "$code"
}
# The agent's session (or the command) runs as a job this shell waits for: bash runs a
# trap only once a foreground command ends, but a signal interrupts `wait`. So a SIGTERM
# sent to the flow alone (kill PID, or just passing its own on) tears the bottle down now,
# not when the agent exits; removing the bottle ends the session, which the teardown then
# waits for (a bottle it keeps, it waits for as before). `<&0`: a job's stdin is /dev/null
# otherwise. It stays in this process group, so Ctrl-C still reaches it.
in_step() {
  [ ! -t 0 ] || tty_modes=$(stty -g 2>/dev/null) || tty_modes=""
  "$@" <&0 &
  step_pid=$!
  wait "$step_pid"
}

# A signal ends the flow (the EXIT trap tears down what it knows of); `signals hold` keeps
# one that comes in $held_signal instead, for a step whose outcome the teardown must know
# of first.
held_signal=""
signals() {
  if [ "${1:-}" = hold ]; then
    trap 'held_signal=130' INT; trap 'held_signal=143' TERM; trap 'held_signal=129' HUP
  else
    trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
    [ -z "$held_signal" ] || exit "$held_signal"
  fi
}
trap teardown EXIT
signals

# Resume a bottle another start flow owns (it is starting it, or its agent runs and it
# tears the bottle down when that agent exits): never a second build or a takeover, whose
# teardown would pull the bottle from under the other. Once that flow has it up, you get a
# session beside its agent; until then, nothing.
if [ "$has_saved_plan" = true ] && [ "$mode" = start ] && holder=$(live_owner "$state_root/bottles/$slug"); then
  # Up: bb-provision saved its section into the plan (a rebuild's bb-prepare starts it afresh).
  # Its check that the agent container runs reads no stdin: one piped in is the agent's.
  if grep -q '^  "provision": {' "$state_root/bottles/$slug/plan.json" 2>/dev/null \
     && bb-vm exec --slug "$slug" --state-dir "$state_root" -- true </dev/null >/dev/null 2>&1; then
    echo "» $slug is running and belongs to the start flow pid $holder: attaching beside its agent (the bottle, and this session with it, goes when that flow's agent exits)" >&2
    in_step bb-vm attach --slug "$slug" --state-dir "$state_root"
    exit $?
  fi
  echo "just start: slug=$slug is being started by another start flow (pid $holder); run this again once it is up" >&2
  exit 1
fi

# Resume a live bottle: reattach without rebuilding (the check reads no stdin, as above).
if [ "$has_saved_plan" = true ] && [ "$mode" = start ] \
   && bb-vm exec --slug "$slug" --state-dir "$state_root" -- true </dev/null >/dev/null 2>&1; then
  # Yours from now on: the flow that started it is gone (killed, or keep=false and its
  # terminal closed), and its owner record left behind would make this bottle, with you in
  # it, a dead flow's leftovers that bb-cleanup removes. keep=false: it goes when the agent
  # exits (the teardown below), so this flow owns it meanwhile, and another resume attaches
  # beside it instead of taking it over. Judged again and taken in one step (take_over):
  # another resume may have taken it since the check above, and of two at once one does.
  claim=""; [ "$keep" = true ] || claim=$$
  if ! holder=$(take_over "$state_root/bottles/$slug" $claim); then
    echo "just start: ${holder:+the start flow pid $holder}${holder:-another start flow} took $slug over just now; run this again to attach beside it" >&2; exit 1
  fi
  echo "» $slug is running: reattaching" >&2
  if [ "$keep" = true ]; then
    [ -f "$state_root/bottles/$slug/kept" ] || date -u +%FT%TZ > "$state_root/bottles/$slug/kept"
  else
    current_slug=$slug; reached_agent=true
  fi
  # bb-vm writes here when the session never started: its 125 then, not the agent's own.
  # In the bottle's folder (flow/, as the flow's other files), which bb-cleanup removes.
  not_started="$state_root/bottles/$slug/flow/not-started.$$"
  mkdir -p -m 700 "$state_root/bottles/$slug/flow" && rm -f "$not_started" || exit 1
  in_step bb-vm attach --slug "$slug" --state-dir "$state_root" --not-started-file "$not_started"
  code=$?
  # keep=false tears down a bottle whose agent you ran and left (whatever its exit code, 125
  # too), not one you only meant to look in on whose session never started (docker did not
  # start it: told by docker's words on a terminal, by the engine's events without one)
  # while the bottle still runs: it stays, yours as keep=true leaves it (so that bb-cleanup
  # does not take it for leftovers), this flow's owner record gone.
  if [ -n "$current_slug" ] && [ "$code" -eq 125 ] && [ -s "$not_started" ] \
     && bb-vm exec --slug "$slug" --state-dir "$state_root" -- true </dev/null >/dev/null 2>&1; then
    [ -f "$state_root/bottles/$slug/kept" ] || date -u +%FT%TZ > "$state_root/bottles/$slug/kept"
    rm -f "$state_root/bottles/$slug/owner.json"
    current_slug=""
    echo "» $slug stays up: this session never started (keep=false applies to a session that ran); just start slug=$slug attaches again, just cleanup --slug $slug removes it" >&2
  fi
  rm -f "$not_started"; rmdir "${not_started%/*}" 2>/dev/null
  exit "$code"
fi

# Refused before anything is prepared: there would be nobody to say y to the preflight.
if [ "$yes" != true ] && [ ! -t 0 ]; then
  echo "just $mode: no terminal to ask y/N on; pass yes=true to start without asking" >&2
  exit 2
fi

prep_args=(--backend "$backend" --state-dir "$state_root" --owner-pid $$)
[ -n "$cwd" ] && prep_args+=(--cwd "$cwd")
[ -n "$slug" ] && prep_args+=(--identity "$slug")
# Not running (stopped by a reboot, or its agent died): rebuilt under its slug, its old
# containers replaced once you say y.
if [ "$has_saved_plan" = true ]; then
  prep_args+=(--rebuild)
  echo "» $slug is not running: rebuilding it under the same slug (a new agent container: files changed in the old one, ~/work included, are not carried over)" >&2
  if [ -n "$cwd" ]; then echo "» ~/work is copied afresh from $cwd" >&2
  elif [ -n "$saved_cwd_gone" ]; then echo "» $saved_cwd_gone, the checkout it was started with, is gone: rebuilding without one (cwd=DIR gives one)" >&2
  fi
fi
# bb-prepare rewrites its files in the folder before the y/N, having copied what they were
# aside (into the folder's flow/, so a flow killed meanwhile leaves nothing outside it; the
# next rebuild puts such a copy back), for the teardown to put back. Not while another live
# flow holds the folder: its bb-prepare (BUSY) would refuse it anyway.
if [ -n "$slug" ] && [ -d "$state_root/bottles/$slug" ]; then
  existing="$state_root/bottles/$slug"
  if holder=$(live_owner "$existing"); then
    echo "just $mode: slug=$slug is being started by another start flow (pid $holder); run this again once it is up" >&2; exit 1
  fi
  resuming=true
  copy="$existing/flow/before.$$"
  prep_args+=(--copy-before)
fi
# A Ctrl-C while bb-prepare runs reaches it too, which undoes what it made and exits 130;
# one that reaches the flow as bb-prepare ends, its plan out (a new bottle's folder made),
# waits until the slug is recorded here, for the teardown to remove that bottle.
signals hold
# The agent after --: a name that starts with - is still a name, not an option.
plan_text=$(bb-prepare "${prep_args[@]}" -- "$agent") || exit $?
# The plan is written with "slug" second, top level (lib/plan/io.ts); read it with bash
# rather than one more node start. Slugs are [a-z0-9-] (SLUG_PATTERN).
[[ $plan_text =~ \"slug\":\ \"([a-z0-9][a-z0-9-]*)\" ]] || { echo "just $mode: bb-prepare's plan has no slug" >&2; exit 1; }
current_slug=${BASH_REMATCH[1]}
# Declined until you say y (yes=true says it): nothing of the bottle has started, so a
# teardown till then (a "n", Ctrl-C at the question or a signal held above) removes only
# bb-prepare's files, with no engine to ask.
declined=true
signals
work="$state_root/bottles/$current_slug/flow"
mkdir -p "$work" && printf '%s\n' "$plan_text" > "$work/plan.json" || exit 1

if [ "$yes" != true ]; then
  read -r -p "Start this bottle? [y/N] " answer
  case "$answer" in y|Y|yes|YES) ;; *) echo "not started" >&2; exit 1 ;; esac
fi
declined=false
# Yes: the folder is this start's now; the copy goes (not put back from then on), renamed
# away first so that one cut short by a kill is never taken for a whole one.
if [ -n "$copy" ]; then
  [ ! -d "$copy" ] || { mv "$copy" "$copy.gone" && rm -rf "$copy.gone"; } || exit 1
  copy=""
fi
if [ "$resuming" = true ]; then
  replaced=true
  bb-cleanup --slug "$current_slug" --keep-state --yes --quiet --state-dir "$state_root" >&2 || exit $?
fi

# One pipe, so each tool starts (and bb-vm looks its image up) while the one before it
# works; tee keeps every stage's plan. --no-wait: the agent container starts while the
# bundle's daemons come up; bb-provision waits for them before it touches the bottle.
bb-bundle --no-wait --plan "$work/plan.json" | tee "$work/bundled.json" \
  | BB_PIPE_STEP=1 bb-vm | tee "$work/vm.json" \
  | BB_PIPE_STEP=1 bb-provision > "$work/ready.json"
stages=("${PIPESTATUS[@]}")
# bb-bundle undoes its own work when it fails (a signal aside): the state dir is all there
# is to tear down, even when the Docker engine it could not reach cannot be asked.
[ "${stages[0]}" -eq 0 ] || [ "${stages[0]}" -ge 128 ] || bundle_undone=true
# The first step that failed says why; the ones after it only saw no plan arrive (and,
# told by BB_PIPE_STEP, say nothing).
for code in "${stages[@]}"; do [ "$code" -eq 0 ] || exit "$code"; done
# A kept bottle outlives this flow: hand it over now that it is complete. The kept record
# makes it yours (bb-list and bb-cleanup leave it be, running or stopped by a reboot, until
# you remove it); our owner record left behind would make it the leftovers of a killed
# flow as soon as this shell is gone.
if [ "$keep" = true ]; then
  date -u +%FT%TZ > "$state_root/bottles/$current_slug/kept"
  rm -f "$state_root/bottles/$current_slug/owner.json"
fi

reached_agent=true
if [ "$mode" = start ]; then
  if [ "$keep" = true ]; then
    echo "» attaching to $current_slug (keep=true: it stays up when the agent exits; just start slug=$current_slug reattaches, just cleanup --slug $current_slug removes it)" >&2
  else
    echo "» attaching to $current_slug (exit the agent to stop the bottle)" >&2
  fi
  # What the agent asks for over supervise waits for you in another terminal.
  if grep -q '"supervise": "http' "$work/ready.json" 2>/dev/null; then
    echo "» when the agent asks for a host or a question: just supervise --slug $current_slug list (then approve ID, deny ID REASON, answer ID TEXT)" >&2
  fi
  in_step bb-vm attach --plan "$work/ready.json"
else
  in_step bb-vm exec --plan "$work/ready.json" -- "${cmd[@]}"
fi
