#!/usr/bin/env bash
# Build QEMU's own migration code (7.2 from bookworm's, 10.2 from sid's source package, and
# QEMU master's migration core from the shared overlay laid over the 10.2 tree) for the QEMU
# engine, into ~/.cache/vmstate-conformance/qemu (XDG_CACHE_HOME honoured).
# A no-op apart from a dpkg check when the builds are cached.  From scratch on 2 cores:
# see conformance/qemu/BUILD-NOTES.md for the measured times.
#
# The overlay is read from ../shared/qemu-master beside the checkout (CI and developer
# machines have shared/ there; VMSC_QEMU_MASTER_OVERLAY overrides); it is never copied into
# the project.  Its build is keyed by the overlay's sha256 (master-<hash>): a changed overlay
# rebuilds.  Without the folder the master build is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
OVERLAY=${VMSC_QEMU_MASTER_OVERLAY:-$(pwd)/../shared/qemu-master}
PY=${PYTHON:-python3}
JOBS=${QEMU_BUILD_JOBS:-2}

# What the one-target configure + `ninja tests/unit/test-vmstate` needs (not build-dep qemu):
# compiler, ninja, meson (7.2: Debian 12's is enough; 10.2 gets a pinned pip meson in the
# cache), glib/pixman/zlib/libfdt headers, dpkg-dev for `apt-get source`.
PKGS=(gcc libc6-dev make ninja-build meson pkg-config libglib2.0-dev libpixman-1-dev
      zlib1g-dev libfdt-dev flex bison dpkg-dev xz-utils python3-venv)

cached() {
  "$PY" -c 'import sys
from conformance.qemu.build import locate
sys.exit(0 if all(locate(s) for s in ("7.2", "10.2")) else 1)'
}

if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  need=()
  for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  update=0
  if ! cached; then
    # deb-src lines for `apt-get source qemu`: 7.2 from bookworm (+security), 10.2 from sid
    src=/etc/apt/sources.list.d/vmstate-conformance-src.sources
    if [ ! -f "$src" ]; then
      cat >"$src" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      update=1
    fi
    apt-cache showsrc qemu 2>/dev/null | grep -q '^Version: 1:10\.2\.' || update=1
  fi
  [ ${#need[@]} -gt 0 ] && update=1
  [ "$update" = 1 ] && apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

"$PY" -m conformance.qemu build --debian 7.2 --jobs "$JOBS"
"$PY" -m conformance.qemu build --debian 10.2 --jobs "$JOBS"
if [ -f "$OVERLAY/assemble.sh" ]; then
  "$PY" -m conformance.qemu build --overlay "$OVERLAY" --jobs "$JOBS"
else
  echo "note: no QEMU-master overlay at $OVERLAY (set VMSC_QEMU_MASTER_OVERLAY); auto-alloc has no build"
fi
"$PY" -m conformance.qemu list
