#!/usr/bin/env bash
# Makes sure the image's base (default debian:12-slim) is in local container storage.
#   deploy/image/base.sh [image]         prints the image name to use as DEBIAN_IMAGE
# Tries a pull first (what a user with a registry gets). Where no registry is reachable,
# builds the same thing from Debian's own packages: mmdebstrap's minbase variant of bookworm
# with bookworm-updates and bookworm-security, documentation and locales left out as in the
# official slim image, imported as localhost/debian:12-slim.
set -euo pipefail
want=${1:-debian:12-slim}
local_name=localhost/debian:12-slim

have() { buildah inspect --type image "$1" >/dev/null 2>&1; }

for name in "$want" "$local_name"; do
  if have "$name"; then echo "$name"; exit 0; fi
done
if timeout 60 buildah pull --quiet "docker.io/library/$want" >/dev/null 2>&1; then
  echo "$want"; exit 0
fi
if [ "$want" != debian:12-slim ]; then
  echo "base.sh: cannot pull $want, and only debian:12-slim can be built locally" >&2
  exit 1
fi

echo "base.sh: no registry; building $local_name with mmdebstrap" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mirror=http://deb.debian.org/debian
# merged-usr hook: /usr merged by symlinks with usr-is-merged, not by the usrmerge package (and
# the perl it pulls in), as in the official image
mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$work/rootfs.tar" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" >"$work/log" 2>&1 \
  || { cat "$work/log" >&2; exit 1; }
ctr=$(buildah from scratch)
buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
buildah commit --quiet --rm "$ctr" "$local_name" >/dev/null
echo "$local_name"
