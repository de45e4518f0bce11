#!/usr/bin/env bash
# A real Home Assistant for the bridge tests (tests/server/test_homeassistant.py), cached.
#
# Home Assistant needs Python >= 3.13.2; Debian 12 has 3.11. No reachable registry ships a
# CPython 3.13 binary for bookworm (npm's portable-python downloads its build at install time,
# PyPI's python-build-standalone installers do too), so this builds CPython from the Debian
# source package of the next release (upstream tarball, plain ./configure, no PGO: ~5 min on
# 2 cores) and installs the pinned Home Assistant into a venv of its own (~3 min).
# Everything lands in $OMD_HA_CACHE (default ~/.cache/omd-ha), shared by all checkouts of this
# machine; a second run only checks the stamps and exits.
set -euo pipefail
HA_VERSION=2026.2.3          # newest on PyPI that runs on Python 3.13
PAHO_VERSION=2.1.0           # homeassistant/components/mqtt/manifest.json of that release
FRONTEND_VERSION=20260128.6  # homeassistant/components/frontend/manifest.json (always loaded)
PY_SUITE=trixie              # Debian release whose python3.13 source package is built
CACHE=${OMD_HA_CACHE:-$HOME/.cache/omd-ha}
say() { printf '\033[1m[setup-ha]\033[0m %s\n' "$*"; }
die() { printf '[setup-ha] ERROR: %s\n' "$*" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # two checkouts running set-up at once build once

PY="$CACHE/python/bin/python3.13"
if [ ! -x "$PY" ] || [ ! -f "$CACHE/python/.stamp" ]; then
  BUILD_DEPS=(libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev liblzma-dev uuid-dev
              libreadline-dev pkg-config)
  need=(); for p in "${BUILD_DEPS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing CPython build dependencies: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # the machine's own Debian mirror (first URIs of the bookworm entry), never a named host
  MIRROR=$(awk '/^URIs:/{u=$2} /^Suites:.*bookworm( |$)/{print u; exit}' \
             /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || die "cannot find the Debian mirror in /etc/apt/sources.list(.d)"
  # a private apt state: the system's sources and package lists stay untouched
  APTD="$CACHE/apt"; mkdir -p "$APTD/lists/partial" "$APTD/src"
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" "$PY_SUITE" > "$APTD/src.sources"
  APTOPT=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$APTD/srcparts"
          -o "Dir::State::Lists=$APTD/lists" -o "Dir::Cache=$APTD/cache")
  mkdir -p "$APTD/srcparts" "$APTD/cache/archives/partial"; cp "$APTD/src.sources" "$APTD/srcparts/"
  say "fetching the python3.13 source package ($PY_SUITE)"
  apt-get "${APTOPT[@]}" update -qq
  (cd "$APTD/src" && rm -rf ./* && apt-get "${APTOPT[@]}" source --download-only -qq python3.13)
  ORIG=$(ls "$APTD"/src/python3.13_*.orig.tar.xz | head -1)
  [ -f "$ORIG" ] || die "no python3.13 orig tarball downloaded"
  BUILD="$CACHE/build"; rm -rf "$BUILD"; mkdir -p "$BUILD"
  tar -xJf "$ORIG" -C "$BUILD"
  SRC=$(find "$BUILD" -maxdepth 1 -mindepth 1 -type d | head -1)
  say "building CPython from $(basename "$ORIG") (several minutes)"
  rm -rf "$CACHE/python"
  (cd "$SRC" && ./configure -q --prefix="$CACHE/python" --with-ensurepip=install >"$CACHE/build.log" 2>&1 \
     && make -s -j"$(nproc)" >>"$CACHE/build.log" 2>&1 && make -s install >>"$CACHE/build.log" 2>&1) \
    || { tail -30 "$CACHE/build.log"; die "CPython build failed (log: $CACHE/build.log)"; }
  "$PY" -c 'import ssl, sqlite3, ctypes, zlib, bz2, lzma, uuid' || die "CPython built without a needed module"
  rm -rf "$BUILD"
  touch "$CACHE/python/.stamp"
fi

VENV="$CACHE/venv-$HA_VERSION"
WANT="homeassistant==$HA_VERSION paho-mqtt==$PAHO_VERSION home-assistant-frontend==$FRONTEND_VERSION"
if [ ! -x "$VENV/bin/hass" ] || [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$WANT" ]; then
  say "installing Home Assistant $HA_VERSION (+ MQTT and frontend requirements) into $VENV"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q $WANT >"$CACHE/pip.log" 2>&1 \
    || { tail -30 "$CACHE/pip.log"; die "Home Assistant install failed"; }
  echo "$WANT" > "$VENV/.stamp"
fi
ln -sfn "$VENV" "$CACHE/current"
say "Home Assistant $HA_VERSION ready: $CACHE/current/bin/hass"
