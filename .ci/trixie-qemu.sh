#!/usr/bin/env bash
# Debian 13 (trixie)'s qemu-system-x86_64 (QEMU 10.0.x) in a chroot root of its own, for
# `vmstate-conformance compat` on real 7.2 -> 10.0 dumps and for real 10.0 streams
# (docs/compat.md).  The root is made with
#   mmdebstrap --variant=apt --include=qemu-system-x86 trixie DIR
# (about 40 s and 250 MB) and cached, keyed by the QEMU package version, in
#   ${XDG_CACHE_HOME:-~/.cache}/vmstate-conformance/trixie-qemu/<version>/
# with a `current` symlink to the newest.  Idempotent: a no-op when a root is cached.
# Needs root (mmdebstrap's root mode; the tests run the root's QEMU under chroot, or
# `unshare -r chroot` when not root).  Prints the root's path on its last line.
set -euo pipefail
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vmstate-conformance/trixie-qemu
MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}

if [ -x "$CACHE/current/root/usr/bin/qemu-system-x86_64" ]; then
  echo "$CACHE/current/root"
  exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  else
    echo "trixie-qemu: mmdebstrap not found and no apt-get to install it" >&2
    exit 1
  fi
fi

mkdir -p "$CACHE"
partial="$CACHE/partial.$$"
rm -rf "$partial"
trap 'rm -rf "$partial"' EXIT
mkdir -p "$partial"
# --variant=apt: essential + apt; qemu-system-x86 pulls its libraries and firmware
mmdebstrap --quiet --variant=apt --include=qemu-system-x86 trixie "$partial/root" "$MIRROR"

version=$(chroot "$partial/root" dpkg-query -W -f '${Version}' qemu-system-x86)
version=${version#*:}  # 1:10.0.x+ds-y -> 10.0.x+ds-y
chroot "$partial/root" qemu-system-x86_64 --version | head -1 >"$partial/qemu-version"
echo "$version" >"$partial/package-version"
rm -rf "${CACHE:?}/$version"
mv "$partial" "$CACHE/$version"
trap - EXIT
ln -sfn "$version" "$CACHE/current"
echo "$CACHE/current/root"
