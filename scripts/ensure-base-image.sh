#!/usr/bin/env bash
# Make sure the base image of both bot-bottle images is in the local Docker engine, on
# machines that can reach a Debian mirror but no image registry.
#
#   scripts/ensure-base-image.sh
#
# When the image ($BB_BASE_IMAGE, default debian:bookworm-slim) is present, does nothing.
# Otherwise builds a bookworm root file system with debootstrap (installed with apt-get when
# missing) from the Debian mirror this host's apt uses (fallback http://deb.debian.org/debian),
# trims it like the official slim image (no docs, man pages or locales; apt cleans up after
# itself), and imports it as that image. With a registry, `docker pull debian:bookworm-slim`
# does the same job. Needs root (or passwordless sudo).
set -euo pipefail

image=${BB_BASE_IMAGE:-debian:bookworm-slim}
suite=bookworm
fallback_mirror=http://deb.debian.org/debian

say() { printf 'ensure-base-image: %s\n' "$*" >&2; }

root=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { say "not root and no sudo: cannot run debootstrap"; exit 1; }
  root=(sudo -n)
fi
as_root() { ${root[@]+"${root[@]}"} "$@"; }

if docker image inspect "$image" >/dev/null 2>&1; then
  say "$image is present; nothing to do"
  exit 0
fi

# The first URI this host's apt uses for `suite` (or suite-<x>, e.g. bookworm-security),
# from one-line .list files and deb822 .sources files alike.
host_uri() {
  local want=$1 files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk -v want="$want" '
    /^[[:space:]]*#/ { next }
    /^deb[[:space:]]/ {
      i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == want) { print $i; exit }
      next
    }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (j = 2; j <= NF; j++) if ($j == want && uri != "") { print uri; exit } }
    /^[[:space:]]*$/ { uri = "" }
  ' "${files[@]}"
}

mirror=$(host_uri "$suite")
mirror=${mirror:-$fallback_mirror}
security=$(host_uri "$suite-security")
updates=$(host_uri "$suite-updates")

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap </dev/null
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/bb-base-rootfs.XXXXXX")
cleanup() {
  # debootstrap mounts proc/sys inside the target; never let rm walk into them.
  awk -v d="$dir" 'index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do as_root umount -l "$m" || true; done
  as_root rm -rf --one-file-system "$dir"
}
trap cleanup EXIT

started=$SECONDS
say "building $image: debootstrap --variant=minbase $suite from $mirror (a few minutes)"
as_root debootstrap --variant=minbase "$suite" "$dir" "$mirror" </dev/null >&2

say "trimming and configuring apt sources"
as_root sh -eu -c '
dir=$1 mirror=$2 suite=$3 updates=$4 security=$5
# What the official slim image leaves out, now and on every later install.
cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$dir/usr/share/man/"* "$dir/usr/share/groff/"* "$dir/usr/share/info/"* "$dir/usr/share/lintian/"* "$dir/usr/share/locale/"*
# Like the official image: apt keeps no downloaded packages or caches in image layers.
cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<EOF
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -f "$dir/etc/apt/sources.list"
stanza() { printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" "$1" "$2"; }
{
  stanza "$mirror" "$suite"
  if [ -n "$updates" ]; then echo; stanza "$updates" "$suite-updates"; fi
  if [ -n "$security" ]; then echo; stanza "$security" "$suite-security"; fi
} >"$dir/etc/apt/sources.list.d/debian.sources"
rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/cache/apt/"*.bin "$dir/var/lib/apt/lists/"* "$dir/var/log/"*.log
' sh "$dir" "$mirror" "$suite" "$updates" "$security"

say "importing as $image"
as_root tar -C "$dir" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  - "$image" >/dev/null
say "$image is ready ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1 / 1e6}'), $((SECONDS - started))s)"
