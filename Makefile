# PneumoDesk — `make run` starts the app, `make test` runs the whole gate. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint pytest bench installer installer-check

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/pneumodesk

# The gate CI runs (.ci/run): style, the import contracts, types, then the tests; it stops at the first that fails.
test: lint pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/predict.py
	$(PY) benchmarks/gui.py

# The workstation installer (README "Installing on workstations"): the frozen bundle and the .deb in build/installer/.
# TORCH is a CPU-only torch wheel file or the CPU wheel index URL (https://download.pytorch.org/whl/cpu); the
# default is the wheel this machine image carries. AUDIT=strict fails the build on known vulnerabilities in the
# runtime lock (or when pip-audit cannot reach PyPI); AUDIT=report records them and goes on.
TORCH ?= $(firstword $(wildcard /opt/wheels/torch-*+cpu-*.whl))
AUDIT ?= strict

installer:
	AUDIT=$(AUDIT) nice -n 5 installer/build.sh "$(TORCH)"

# CI's smoke test of the installed app (.ci/run, after `make test`): build, extract the .deb, run it read-only.
# A vulnerability published yesterday must not turn every CI run red: the check records the audit (AUDIT=report);
# a release is built with `make installer`, which fails on one.
installer-check: $(STAMP)
	AUDIT=report nice -n 5 installer/build.sh "$(TORCH)"
	$(PY) installer/check_install.py --deb "$$(ls build/installer/pneumodesk_*.deb)" --repeat 1 \
		--json build/installer/check.json
