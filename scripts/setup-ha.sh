#!/usr/bin/env bash
# Real Home Assistant releases for the bridge tests (tests/server/test_homeassistant.py), cached.
#
# Home Assistant needs Python >= 3.13.2 (>= 3.14.2 from 2026.3 on); Debian 12 has 3.11. No
# reachable registry ships a CPython binary for bookworm (npm's portable-python downloads its
# build at install time, PyPI's python-build-standalone installers do too), so this builds
# CPython from the upstream tarball inside the Debian source package of a later Debian release
# (plain ./configure, no PGO: ~5 min on 2 cores) and installs each pinned Home Assistant
# release into a venv of its own, with the frontend and MQTT requirements its manifests name.
# Everything lands in $OMD_HA_CACHE (default ~/.cache/omd-ha), shared by all checkouts of this
# machine; a second run only checks the stamps and exits.
#
# The releases: scripts/ha-versions.txt (one "HA_VERSION PYTHON DEBIAN_SUITE" a line).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${OMD_HA_CACHE:-$HOME/.cache/omd-ha}
say() { printf '\033[1m[setup-ha]\033[0m %s\n' "$*"; }
die() { printf '[setup-ha] ERROR: %s\n' "$*" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # two checkouts running set-up at once build once

build_deps() {
  local deps=(libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev liblzma-dev uuid-dev
              libreadline-dev pkg-config) need=() p
  for p in "${deps[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing CPython build dependencies: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

# build_python python3.13 trixie -> $CACHE/python3.13/bin/python3.13
build_python() {
  local pkg=$1 suite=$2 prefix="$CACHE/$1"
  if [ -x "$prefix/bin/$pkg" ] && [ -f "$prefix/.stamp" ]; then return; fi
  build_deps
  # the Debian mirror the machine already uses (scripts/setup.sh knows how to find it)
  local mirror
  mirror=$(scripts/setup.sh --print-debian-mirror) \
    || die "cannot find the Debian mirror in /etc/apt/sources.list(.d)"
  # a private apt state: the system's sources and package lists stay untouched
  local aptd="$CACHE/apt-$suite"
  mkdir -p "$aptd/lists/partial" "$aptd/parts" "$aptd/cache/archives/partial" "$aptd/src"
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$suite" > "$aptd/parts/src.sources"
  local opt=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$aptd/parts"
             -o "Dir::State::Lists=$aptd/lists" -o "Dir::Cache=$aptd/cache")
  say "fetching the $pkg source package ($suite)"
  apt-get "${opt[@]}" update -qq 2>/dev/null
  (cd "$aptd/src" && rm -rf ./* && apt-get "${opt[@]}" source --download-only -qq "$pkg" 2>/dev/null)
  local orig
  orig=$(ls "$aptd"/src/"${pkg}"_*.orig.tar.xz 2>/dev/null | head -1)
  [ -f "$orig" ] || die "no $pkg orig tarball downloaded from $suite"
  local build="$CACHE/build-$pkg"
  rm -rf "$build" "$prefix"; mkdir -p "$build"
  tar -xJf "$orig" -C "$build"
  local src
  src=$(find "$build" -maxdepth 1 -mindepth 1 -type d | head -1)
  say "building CPython from $(basename "$orig") (several minutes)"
  (cd "$src" && ./configure -q --prefix="$prefix" --with-ensurepip=install >"$CACHE/build-$pkg.log" 2>&1 \
     && make -s -j"$(nproc)" >>"$CACHE/build-$pkg.log" 2>&1 && make -s install >>"$CACHE/build-$pkg.log" 2>&1) \
    || { tail -30 "$CACHE/build-$pkg.log"; die "CPython build failed (log: $CACHE/build-$pkg.log)"; }
  "$prefix/bin/$pkg" -c 'import ssl, sqlite3, ctypes, zlib, bz2, lzma, uuid' \
    || die "$pkg built without a module Home Assistant needs"
  rm -rf "$build" "$prefix/lib/$pkg/test"
  touch "$prefix/.stamp"
}

# install_ha 2026.2.3 python3.13 -> $CACHE/ha-2026.2.3/bin/hass
install_ha() {
  local version=$1 pkg=$2 venv="$CACHE/ha-$1"
  if [ -x "$venv/bin/hass" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$version" ]; then return; fi
  say "installing Home Assistant $version into $venv"
  rm -rf "$venv"
  "$CACHE/$pkg/bin/$pkg" -m venv "$venv"
  "$venv/bin/pip" install -q "homeassistant==$version" >"$CACHE/pip-$version.log" 2>&1 \
    || { tail -30 "$CACHE/pip-$version.log"; die "Home Assistant $version install failed"; }
  # the frontend (always loaded) and MQTT requirements, as pinned by this release's manifests
  local reqs
  reqs=$("$venv/bin/python" - <<'PY'
import json, pathlib, homeassistant.components as c
base = pathlib.Path(c.__file__).parent
print(" ".join(r for d in ("frontend", "mqtt")
               for r in json.loads((base / d / "manifest.json").read_text())["requirements"]))
PY
)
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q $reqs >>"$CACHE/pip-$version.log" 2>&1 \
    || { tail -30 "$CACHE/pip-$version.log"; die "requirements of Home Assistant $version failed"; }
  echo "$version" > "$venv/.stamp"
}

while read -r version pkg suite _; do
  case "$version" in ''|\#*) continue ;; esac
  build_python "$pkg" "$suite"
  install_ha "$version" "$pkg"
  say "Home Assistant $version ready: $CACHE/ha-$version/bin/hass"
done < scripts/ha-versions.txt
