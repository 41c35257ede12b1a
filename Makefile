# tlslab — see README.md.  `make demo` and `make test` work on a fresh Debian bookworm
# machine with python3 + pip; everything else is installed by these targets.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/tlslab-install.stamp
PYTEST_ARGS ?=

.PHONY: all venv demo peers test bench fuzz clean help

all: help

help:
	@echo "make demo    create $(VENV), install tlslab, run 'tlslab demo'"
	@echo "make test    same set-up + test peers via apt (openssl, curl, tshark, gnutls, NSS, Go, JDK, Node), run pytest"
	@echo "make peers   install missing test peers only (scripts/install-peers.sh)"
	@echo "make bench   handshake benchmarks vs Python ssl"
	@echo "make fuzz    every atheris harness in fuzz/ for FUZZ_SECONDS (default 60) each"
	@echo "make clean   remove $(VENV) and caches"

venv: $(STAMP)

# Re-install only when pyproject.toml changes (or the venv is gone).  On a bare Debian,
# `python3 -m venv` needs the python3-venv package: install it once and retry.
$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV) >/dev/null 2>&1 || { \
	    echo "== '$(PYTHON) -m venv' failed; installing python3-venv"; \
	    rm -rf $(VENV); \
	    bash scripts/install-peers.sh --python-venv; \
	    $(PYTHON) -m venv $(VENV); \
	  }; \
	fi
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: venv
	$(BIN)/tlslab demo

peers:
	@bash scripts/install-peers.sh

# pytest exit code 5 = "no tests collected": not a failure of the set-up.
test: venv peers
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected"; exit 0; fi; \
	exit $$rc

bench: venv
	$(BIN)/python benchmarks/handshake.py

# Coverage-guided fuzzing (atheris): each harness in fuzz/harnesses.py for FUZZ_SECONDS;
# FUZZ_HARNESSES= picks some.  Crashing inputs land in fuzz/crashes/<harness>/.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= $(shell $(BIN)/python fuzz/run.py --list 2>/dev/null)
fuzz: venv
	@fail=0; for h in $(FUZZ_HARNESSES); do \
	  echo "== fuzz $$h ($(FUZZ_SECONDS) s)"; \
	  $(BIN)/python fuzz/run.py $$h -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    > fuzz/$$h.log 2>&1 || { fail=1; echo "   CRASH: see fuzz/$$h.log and fuzz/crashes/$$h/"; }; \
	  grep -h "^Done" fuzz/$$h.log | sed 's/^/   /'; \
	done; exit $$fail

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
