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

# An owner record naming process PID as it is now (ownerRecord in owner.ts); with TOKEN, a
# breaker's `reaping` naming the removal that took it (reap_lock).
owner_record() {
  local fields start=""
  if fields=$(proc_stat "$1"); then read -r -a fields <<<"$fields"; start=${fields[19]}; fi
  printf '{"pid":%d,"startedAt":"%s"%s%s}\n' "$1" "$(date -u +%FT%TZ)" "${start:+,\"procStart\":\"$start\"}" "${2:+,\"token\":\"$2\"}"
}

# Set SELF to the pid of the shell running this (a subshell's own, as $BASHPID says). macOS's
# bash 3.2 has no BASHPID: there a child exec'd in place of a command substitution's
# subshell (so forked by this shell itself) says its parent. Not itself called as $(...),
# whose subshell it would name.
self_pid() {
  SELF=${BASHPID:-$(exec sh -c 'echo "$PPID"')}
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
  until try_lock "$breaker"; do
    [ -d "$dir" ] || return 1
    sleep 0.01
  done
  if holder=$(live_owner "$dir"); then
    printf '%s' "$holder"; rc=1
  else
    rm -f "$dir/owner.json"
    if [ -n "$pid" ]; then
      # Whole when it appears (link(2) refuses an existing name), as createFileWhole makes
      # it: a claimOwner reading a half-written record would take it for a dead one.
      local SELF; self_pid
      local tmp="$dir/.owner.json.tmp-$SELF"
      owner_record "$pid" > "$tmp" && ln "$tmp" "$dir/owner.json" 2>/dev/null || rc=1
      rm -f "$tmp"
    fi
  fi
  rm -rf "$breaker"
  return $rc
}

# Take the lock folder LOCK (a breaker) for this process: made with mkdir, then this
# process's record inside (called as $(take_over ...), a subshell holds it), whole when it
# appears: one read half-written would be judged dead. One left by a process that is gone is
# removed first (reap_lock). Fails while a live process holds it, or once its parent is gone.
# TOKEN goes in the record of a `reaping` (reap_lock). lib/inventory/owner.ts's tryBreaker
# is the same, in TypeScript: both take owner.json.break.
try_lock() {
  local lock=$1 token=${2:-} key SELF
  until mkdir "$lock" 2>/dev/null; do
    [ -d "${lock%/*}" ] || return 1
    key=$(stale_lock "$lock") && reap_lock "$lock" "$key" || return 1
  done
  self_pid
  owner_record "$SELF" "$token" > "$lock/.owner.json" && mv "$lock/.owner.json" "$lock/owner.json"
}

# Whether the lock folder LOCK was left by a process that is gone: its record inside names a
# dead process (or is broken), or it is a `reaping` its remover marked done (reap_lock);
# without a record, it is older than 2 s (its taker was killed between the mkdir and the
# record). Prints what was judged, for reap_lock: the record as read before it was judged,
# or the folder's inode.
stale_lock() {
  local lock=$1 rec made
  if [ -f "$lock/owner.json" ]; then
    rec=$(cat "$lock/owner.json" 2>/dev/null) || return 1
    if [[ $rec =~ \"token\":\"([^\"]+)\" ]] && [ -e "$lock/done.${BASH_REMATCH[1]}" ]; then :
    elif live_owner "$lock" >/dev/null; then return 1; fi
    printf 'record:%s' "$rec"
  else
    made=$(file_stat "$lock" %Y %m) || return 1
    [ $(( $(date +%s) - made )) -gt 2 ] || return 1
    printf 'inode:%s' "$(file_stat "$lock" %i %i)"
  fi
}

# Remove the lock folder LOCK that stale_lock judged left (KEY: what it judged), and only
# that one: between the judgement and a plain rm -rf another process may have removed it and
# taken a fresh one there, which that rm would remove. So the remover first takes LOCK's own
# lock, LOCK/reaping (try_lock: one left by a remover killed there is removed the same way),
# then reads LOCK again: the record judged (a dead process's, which no other folder holds) or
# the inode of a folder still without one means the folder judged, which nobody else removes
# while the remover holds its reaping lock. Otherwise that lock is left in the fresh folder,
# which its live holder removes with it (removed here by name, it could be another's), and
# marked done (done.TOKEN, the token its record names, as owner.ts's reap does): should that
# holder die and leave the folder, the next remover, this process or another, removes it as
# left. A mark that lands in another remover's lock names no token of theirs.
reap_lock() {
  local lock=$1 key=$2 rec token SELF
  self_pid
  token="$SELF-$RANDOM$RANDOM$RANDOM"
  try_lock "$lock/reaping" "$token" || return 1
  case $key in
    record:*) rec=$(cat "$lock/owner.json" 2>/dev/null) && [ "record:$rec" = "$key" ] ;;
    inode:*) [ ! -e "$lock/owner.json" ] && [ "inode:$(file_stat "$lock" %i %i)" = "$key" ] ;;
    *) false ;;
  esac && rm -rf "$lock"
  # Gone with the folder: the mark goes nowhere (a lock of another's there has another token).
  local r=$?
  : 2>/dev/null > "$lock/reaping/done.$token"
  return $r
}

# A field of PATH's stat: GNU stat's format GNU, else BSD's (macOS) BSD; fails once it is gone.
file_stat() {
  stat -c "$2" "$1" 2>/dev/null || stat -f "$3" "$1" 2>/dev/null
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
# gone or it never got a record (its taker was killed in that moment). Judged again and
# removed holding its breaker (LOCK.break), as dir-lock.ts's clearAbandoned does: another
# taker may have cleared it and made a fresh one since, which a plain rm -rf would remove.
clear_dead_lock() {
  local lock=$1 i
  for (( i = 0; i < 70; i++ )); do
    [ -d "$lock" ] && [ ! -f "$lock/owner.json" ] || break
    lock_left "$lock" && break
    sleep 0.1
  done
  lock_left "$lock" || return 0
  until try_lock "$lock.break"; do
    [ -d "${lock%/*}" ] || return 0
    sleep 0.01
  done
  if lock_left "$lock"; then rm -rf "$lock"; fi
  rm -rf "$lock.break"
}

# Whether the lock folder LOCK is there and its holder gone: its record names a dead process,
# or it has none 5 s after it was made (dir-lock.ts's abandoned).
lock_left() {
  local made
  [ -d "$1" ] || return 1
  if [ -f "$1/owner.json" ]; then ! live_owner "$1" >/dev/null; return; fi
  made=$(file_stat "$1" %Y %m) || return 1
  [ $(( $(date +%s) - made )) -gt 5 ]
}
