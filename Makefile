# Two commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PEER_STAMP := .venv-peer/.installed-stamp
# The oldest supported Airflow (3.0.x, as on MWAA): its own venv, for the py-oldest and e2e-oldest suites.
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test check bench mutate stress fuzz lint type venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]' tox
	touch $(STAMP)

# DeltaGlider 6.2.0, the test/benchmark peer, pins cryptography<45: it gets a venv of its own.
$(PEER_STAMP): devtools/peer_requirements.txt
	test -x .venv-peer/bin/python || $(PYTHON) -m venv .venv-peer
	.venv-peer/bin/python -m pip install -q -r devtools/peer_requirements.txt
	touch $(PEER_STAMP)

$(OLDEST_STAMP): pyproject.toml devtools/constraints-oldest.txt
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip
	$(OLDEST)/bin/python -m pip install -q -e '.[test]' -c devtools/constraints-oldest.txt
	touch $(OLDEST_STAMP)

venv: $(STAMP) $(PEER_STAMP) $(OLDEST_STAMP)

demo: $(STAMP)
	$(BIN)/python -m devtools.demo

# Lint and types first (seconds); then the five suites that each keep about one core busy, two at a time, the
# longest first (their output interleaved, each suite's summary line its own; py runs as py-unit and
# py-integration so the two cores end together); then the deployment suites alone, since their timings assume a
# quiet machine. `tox` alone runs the envlist one after another.
test: $(STAMP) $(PEER_STAMP) $(OLDEST_STAMP)
	$(BIN)/tox -e lint,type
	$(BIN)/tox run-parallel -p 2 --parallel-live -e py-integration,py-oldest,py-unit,e2e-oldest,e2e
	$(BIN)/tox -e deploy,deploy-oldest

# The quick loop (<= 3 minutes): lint, the import contract, types, and the unit tests of what changed
# (DG_CHECK_BASE=<commit> widens "changed" to everything since that commit; see devtools/check.py).
check: $(STAMP)
	$(BIN)/python -m devtools.check

bench: $(STAMP) $(PEER_STAMP)
	$(BIN)/python -m benchmarks

# Not part of `make test`: breaks one behaviour at a time in a temp copy and reruns that area's tests.
mutate: $(STAMP) $(PEER_STAMP)
	$(BIN)/python -m devtools.mutate

# Not part of `make test`: races writers, deletes and prunes on SeaweedFS, 200 trials per scenario.
stress: $(STAMP)
	$(BIN)/python -m devtools.stress

# Not part of `make test`: hostile bucket objects (dg-* metadata, VCDIFF, secondary sections, zip-stream plans,
# gzip recipes) read through a real store for FUZZ_SECONDS (default 300); every outcome must be typed and bounded.
fuzz: $(STAMP)
	$(BIN)/python -m devtools.fuzz

lint: $(STAMP)
	$(BIN)/tox -e lint

type: $(STAMP)
	$(BIN)/tox -e type

clean:
	rm -rf $(VENV) .venv-peer $(OLDEST) .tox .demo
