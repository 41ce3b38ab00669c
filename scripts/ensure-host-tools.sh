#!/usr/bin/env bash
# Make sure the host programs the tests drive are installed, from Debian's packages:
#   git, ssh/ssh-keygen  the git-gate suites      sshd      git-gate over SSH
#   skopeo               the OCI registry and the smolvm stand-in's pack
#   sqlite3              the smolvm stand-in's state DB
#   socat, nsenter, ip   the smolvm stand-in's relays into its guests' network namespaces
#   mitmdump             the proxy benchmark's baseline      script    the terminal tests
#   bsdtar               the checkout packing under macOS's tar
#
#   scripts/ensure-host-tools.sh
#
# Installs only what is missing (apt-get, as root or with passwordless sudo); says what it
# installed. On a machine without apt, lists what is missing and exits 1.
set -euo pipefail

say() { printf 'ensure-host-tools: %s\n' "$*" >&2; }

# command-or-path package
wanted=(
  "git git"
  "ssh openssh-client"
  "ssh-keygen openssh-client"
  "/usr/sbin/sshd openssh-server"
  "skopeo skopeo"
  "sqlite3 sqlite3"
  "socat socat"
  "nsenter util-linux"
  "ip iproute2"
  "mitmdump mitmproxy"
  "script util-linux"
  "curl curl"
  "bsdtar libarchive-tools"
)

missing=()
for w in "${wanted[@]}"; do
  read -r cmd pkg <<<"$w"
  if [[ $cmd == /* ]]; then [ -x "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  say "all present"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || { say "missing (install them): ${missing[*]}"; exit 1; }
root=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { say "not root and no sudo: cannot install ${missing[*]}"; exit 1; }
  root=(sudo -n)
fi
say "installing ${missing[*]} with apt-get"
${root[@]+"${root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
# The tests run their own sshd on loopback: keep the package from starting a system-wide
# one on port 22 (policy-rc.d answering 101 is how Debian says "do not start services").
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | ${root[@]+"${root[@]}"} tee /usr/sbin/policy-rc.d >/dev/null
  ${root[@]+"${root[@]}"} chmod 755 /usr/sbin/policy-rc.d
  trap '${root[@]+"${root[@]}"} rm -f /usr/sbin/policy-rc.d' EXIT
fi
${root[@]+"${root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
