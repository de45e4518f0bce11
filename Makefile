# Open Metering Device: every target is one stage; `make` builds everything, `make test` tests
# everything. Both start with the idempotent set-up (scripts/setup.sh), so a fresh Debian 12
# clone needs nothing else.
PY      := .venv/bin/python
OMD     := $(PY) -m openmetering
PYTEST  := .venv/bin/pytest
STAMP   := .venv/.setup/ok

.PHONY: all setup rebuild check-stamps circuit netlist bom assertions board render fab \
        firmware esphome accuracy-chip openapi vectors contracts chain diagrams docs site \
        test demo bench bench-firmware bench-server bench-route bench-attest bench-build serve \
        simulate ha-live lint lock clean

# Every stage declares its inputs and outputs in src/openmetering/pipeline.py; `omd build`
# runs the stale ones (content stamps in stamps/, committed) on both cores and skips the rest,
# so `make` with nothing changed starts no stage. A target builds what it names and what that
# needs.
all: setup
	$(OMD) build

setup: $(STAMP)
$(STAMP): scripts/setup.sh scripts/setup-ha.sh scripts/ha-versions.txt pyproject.toml requirements.lock \
          tools/node/package.json tools/slither/requirements.lock
	scripts/setup.sh
	@mkdir -p $(dir $@) && touch $@

rebuild: setup  # every stage, stamps ignored, the board routed from scratch
	$(OMD) build --force --from-scratch

check-stamps: setup  # exit 1 unless every committed stamp describes the tree
	$(OMD) build --check

# --- hardware: circuit -> netlist + BOM -> board -> fab ----------------------------------
circuit: setup
	$(OMD) build netlist bom assertions

# the design assertions include the pin rules (firmware/pinmap.py against the netlist);
# `python -m firmware.tools.pincheck` runs the same rules from the firmware side
netlist bom assertions render fab esphome accuracy-chip openapi vectors diagrams \
  site: setup
	$(OMD) build $@

board: setup
	$(OMD) build board render

# --- firmware and docs -------------------------------------------------------------------
firmware: setup
	$(OMD) build esphome accuracy-chip

# --- contracts and the local chain ----------------------------------------------------------
# attestation vectors, forge build and the gas report page
contracts: setup
	$(OMD) build contracts

# anvil on 127.0.0.1:8545, state in var/chain/, deployment file var/chain/local.json, then the
# Chainlink Functions oracle and the local DON (fetching from the server on :8080); Ctrl-C stops
chain: setup
	$(OMD) chain up

# the whole path at once: broker -> chain -> oracle -> DON -> server -> a simulated meter
demo: setup
	$(OMD) chain demo

docs: setup
	$(OMD) build site

# --- tests and benchmarks --------------------------------------------------------------------
test: setup
	$(PYTEST) -q

bench: bench-firmware bench-server bench-route bench-attest

bench-build: setup  # no-op and one-line-change build times, and KiBot on the same outputs
	tools/kibot/setup.sh
	$(PY) -m openmetering.buildbench

bench-firmware: setup
	$(PY) -m firmware.tools.bench_chip

bench-server: setup
	$(PY) -m omd_server.bench

bench-route: setup  # the board routed from scratch 3 times: seconds per run, medians, same result
	$(PY) -m openmetering.route --bench

# one attestation's digest + signature on the MicroPython unix port, ESP32-S3 estimate
bench-attest: setup
	$(PY) -m firmware.tools.bench_attest --out docs/generated/signature-cost.md

# --- running the LAN server -------------------------------------------------------------------
serve: setup
	.venv/bin/omd-server serve --config server/omd.example.toml

simulate: setup
	.venv/bin/omd-server simulate --config server/omd.example.toml --meters 3

# live data in Home Assistant: broker + server with its MQTT bridge + meters in real time
ha-live: setup
	scripts/ha-live.sh

lint: setup
	.venv/bin/ruff check .

lock: setup
	(echo "# esphome==$$(.venv-esphome/bin/pip show esphome | sed -n 's/^Version: //p')"; \
	 echo "# Constraints for the project venv, from 'pip freeze --local' on Debian 12 (regenerate: make lock)"; \
	 .venv/bin/pip freeze --local --exclude-editable) > requirements.lock
	(echo "# Slither's own venv (it pins web3 < 8), from 'pip freeze --local' (regenerate: make lock)"; \
	 .venv-slither/bin/pip freeze --local) > tools/slither/requirements.lock

clean:
	rm -rf site build tests/artifacts
