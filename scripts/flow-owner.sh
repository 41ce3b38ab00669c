# The start flow's reading and taking of a bottle's owner record (<bottle dir>/owner.json,
# lib/inventory/owner.ts), in bash: sourced by scripts/flow.sh, and by tests/flow/owner.test.ts
# to race take_over.

# The pid of the start flow that owns the bottle in DIR while that flow lives: the check
# lib/inventory/owner.ts's ownerAlive makes, in bash (a zombie is dead; so is a pid the
# kernel gave to a process that started at another time).
live_owner() {
  local rec pid fields
  # A regular file only: cat would wait on a FIFO there forever.
  [ -f "$1/owner.json" ] || return 1
  rec=$(cat "$1/owner.json" 2>/dev/null) || return 1
  [[ $rec =~ \"pid\":([0-9]+) ]] || return 1
  pid=${BASH_REMATCH[1]}
  kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ] || return 1
  if fields=$(proc_stat "$pid"); then
    read -r -a fields <<<"$fields"
    [ "${fields[0]}" != Z ] || return 1
    if [[ $rec =~ \"procStart\":\"([0-9]+)\" ]] && [ "${fields[19]}" != "${BASH_REMATCH[1]}" ]; then return 1; fi
  fi
  printf '%s' "$pid"
}

# Fields 3 on of /proc/PID/stat (state first, start time 20th), or failure without procfs.
# The command name before them is in parentheses and may hold spaces or ")".
proc_stat() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  printf '%s' "${stat##*) }"
}

# An owner record naming process PID as it is now (ownerRecord in owner.ts).
owner_record() {
  local fields start=""
  if fields=$(proc_stat "$1"); then read -r -a fields <<<"$fields"; start=${fields[19]}; fi
  printf '{"pid":%d,"startedAt":"%s"%s}\n' "$1" "$(date -u +%FT%TZ)" "${start:+,\"procStart\":\"$start\"}"
}

# Take the bottle in DIR over from the start flow that owned it, now gone: its owner record
# goes, and with a PID a record naming that process is made in its place (only where there
# is none: a claimOwner of bb-prepare's may come first). Judged again and done holding the
# record's breaker (owner.json.break, which owner.ts's removeIfDead takes to remove a dead
# record too): two resumes that both found the record dead would otherwise both take the
# bottle, the second removing the record the first had just made. Fails when the bottle is
# held, printing the live holder's pid where there is one (none: a claim came first).
take_over() {
  local dir=$1 pid=${2:-} breaker="$1/owner.json.break" holder rc=0
  until mkdir "$breaker" 2>/dev/null; do
    [ -d "$dir" ] || return 1
    # Its holder's record inside says whether it still runs; one without a record yet, older
    # than 2 s, was left by a process killed between the two (owner.ts: the same 2 s).
    if [ -f "$breaker/owner.json" ]; then
      live_owner "$breaker" >/dev/null || rm -rf "$breaker"
    elif [ $(( $(date +%s) - $(date -r "$breaker" +%s 2>/dev/null || date +%s) )) -gt 2 ]; then
      rm -rf "$breaker"
    fi
    sleep 0.01
  done
  # This process's own pid (called as $(take_over ...), a subshell holds the breaker), whole
  # when it appears: one read half-written would be judged dead, and the breaker taken.
  owner_record "$BASHPID" > "$breaker/.owner.json" && mv "$breaker/.owner.json" "$breaker/owner.json"
  if holder=$(live_owner "$dir"); then
    printf '%s' "$holder"; rc=1
  else
    rm -f "$dir/owner.json"
    if [ -n "$pid" ]; then
      # Whole when it appears (link(2) refuses an existing name), as createFileWhole makes
      # it: a claimOwner reading a half-written record would take it for a dead one.
      local tmp="$dir/.owner.json.tmp-$BASHPID"
      owner_record "$pid" > "$tmp" && ln "$tmp" "$dir/owner.json" 2>/dev/null || rc=1
      rm -f "$tmp"
    fi
  fi
  rm -rf "$breaker"
  return $rc
}

# Give back the claim of the bottle in DIR that bb-prepare made for this flow (PID) and was
# ended (Ctrl-C, killed) before its copy was whole, so before it rewrote anything: the
# record naming PID goes, the one from before the claim (beginCopy saved it in PART, the
# unfinished copy) back in its place, and a record it was still making (a temp file,
# lib/fs-atomic.ts, naming PID) with it.
undo_claim() {
  local dir=$1 pid=$2 part=$3 f
  for f in "$dir"/.owner.json.tmp-*; do
    [ -f "$f" ] && [[ $(cat "$f" 2>/dev/null) =~ \"pid\":$pid[,}] ]] && rm -f "$f"
  done
  [ "$(live_owner "$dir")" = "$pid" ] || return 0
  if [ -f "$part/owner.json" ]; then mv -f "$part/owner.json" "$dir/owner.json"; else rm -f "$dir/owner.json"; fi
}

# Wait while the lock folder LOCK has no owner record yet, for up to the 5 s lib/dir-lock.ts
# gives a taker between making it and writing its record; then remove it if its holder is
# gone or it never got a record (its taker was killed in that moment).
clear_dead_lock() {
  local lock=$1 made i
  for (( i = 0; i < 70; i++ )); do
    [ -d "$lock" ] && [ ! -f "$lock/owner.json" ] || break
    # GNU stat, then BSD's (macOS); neither answers once the folder is gone.
    made=$(stat -c %Y "$lock" 2>/dev/null || stat -f %m "$lock" 2>/dev/null) || made=0
    [ $(( $(date +%s) - made )) -le 5 ] || break
    sleep 0.1
  done
  [ -d "$lock" ] || return 0
  if [ ! -f "$lock/owner.json" ] || ! live_owner "$lock" >/dev/null; then rm -rf "$lock"; fi
}
