# Open Metering Device: every target is one stage; `make` builds everything, `make test` tests
# everything. Both start with the idempotent set-up (scripts/setup.sh), so a fresh Debian 12
# clone needs nothing else.
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
STAMP   := .venv/.setup/ok

.PHONY: all setup circuit netlist bom assertions board fab firmware contracts chain docs test \
        bench bench-firmware bench-server bench-attest serve simulate lint lock clean

all: circuit board fab firmware contracts docs

setup: $(STAMP)
$(STAMP): scripts/setup.sh pyproject.toml requirements.lock tools/node/package.json \
          tools/slither/requirements.lock
	scripts/setup.sh
	@mkdir -p $(dir $@) && touch $@

# --- hardware: circuit -> netlist + BOM -> board -> fab ----------------------------------
circuit: netlist bom assertions

netlist: setup
	$(PY) -m openmetering.netlist

bom: netlist
	$(PY) -m openmetering.bom

assertions: netlist
	$(PY) -m openmetering.assertions

board: circuit
	$(PY) -m openmetering.board build
	$(PY) -m openmetering.board render

fab: board
	$(PY) -m openmetering.fab

# --- firmware ------------------------------------------------------------------------------
firmware: circuit
	$(PY) -m firmware.tools.pincheck hardware/kicad/open-meter.net
	$(PY) -m firmware.tools.gen_esphome
	$(PY) -m firmware.tools.bench --no-speed --out docs/generated/accuracy.md

# --- contracts and the local chain ----------------------------------------------------------
contracts: setup
	$(PY) -m omd_server.attestation vectors
	$(PY) -m openmetering.chain build
	$(PY) -m openmetering.chain gas-report --out docs/generated/gas-report.md

# anvil on 127.0.0.1:8545, state in var/chain/, deployment file var/chain/local.json; Ctrl-C stops
chain: setup
	$(PY) -m openmetering.chain up

# --- docs ------------------------------------------------------------------------------------
docs: circuit board fab firmware contracts
	$(PY) -m omd_server.openapi
	$(PY) -m openmetering.docs build

# --- tests and benchmarks --------------------------------------------------------------------
test: setup
	$(PYTEST) -q

bench: bench-firmware bench-server bench-attest

bench-firmware: setup
	$(PY) -m firmware.tools.bench

bench-server: setup
	$(PY) -m omd_server.bench

# one attestation's digest + signature on the MicroPython unix port, ESP32-S3 estimate
bench-attest: setup
	$(PY) -m firmware.tools.bench_attest --out docs/generated/signature-cost.md

# --- running the LAN server -------------------------------------------------------------------
serve: setup
	.venv/bin/omd-server serve --config server/omd.example.toml

simulate: setup
	.venv/bin/omd-server simulate --config server/omd.example.toml --meters 3

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
