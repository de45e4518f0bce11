#!/usr/bin/env bash
# KiBot for `make bench-build` only, never for `make` or `make test`: its own venv
# (.venv-kibot, with system site-packages for pcbnew), pinned in tools/kibot/requirements.txt,
# rsvg-convert, which KiBot's SVG plots need (with -A it would otherwise fail rather than
# fetch a binary), and Xvfb and xdotool: KiAuto opens pcbnew on that display and drives it
# for KiBot's 3D renders.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf '\033[1m[kibot setup]\033[0m %s\n' "$*"; }
die() { printf '[kibot setup] ERROR: %s\n' "$*" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

for pkg in librsvg2-bin xvfb xdotool; do
  if ! dpkg -s $pkg >/dev/null 2>&1; then
    say "installing $pkg"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkg \
      >/dev/null
  fi
done
REQ=tools/kibot/requirements.txt
V=.venv-kibot
if [ ! -x $V/bin/kibot ] || [ ! -f $V/.stamp ] || [ $REQ -nt $V/.stamp ] || \
   [ tools/kibot/generate_interactive_bom.py -nt $V/.stamp ]; then
  say "creating the KiBot venv ($V)"
  /usr/bin/python3 -m venv --system-site-packages $V
  # KiBot's own install notes: no byte-compiling of its package
  $V/bin/pip install -q --no-compile -r $REQ >$V/install.log 2>&1 \
    || { tail -40 $V/install.log; die "KiBot install failed (log: $V/install.log)"; }
  install -m 755 tools/kibot/generate_interactive_bom.py $V/bin/
  touch $V/.stamp
fi
$V/bin/kibot --version >/dev/null || die "$V/bin/kibot does not start"
