# Every target sets up .venv on first use, so each works alone from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
RUNS ?=
CHROMIUM := /usr/bin/chromium

.PHONY: help venv loadtest loadtest-ui compare test bench clean

help:
	@echo "make loadtest [ARGS='--workers 2 --max-size 4 --duration 20']  run the default load test"
	@echo "make loadtest-ui [ARGS=...]                                   the same run in Locust's web UI, with a Database tab"
	@echo "make compare RUNS='results/A results/B'                       compare runs: terminal table and HTML page"
	@echo "make test                                                     run the whole test suite"
	@echo "make bench                                                    run the benchmarks (JSON under results/)"
	@echo "make sweep [ARGS='--workers 1,2 --max-size 4,8']               pool-size sweep and recommendation (3 x 3 cells: about 5 min)"
	@echo "make scenarios                                                each known pool failure, faulty and fixed (about 5 min)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "poolcheck needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

loadtest: $(STAMP)
	$(BIN)/poolcheck run $(ARGS)

loadtest-ui: $(STAMP)
	$(BIN)/poolcheck run --web-ui $(ARGS)

compare: $(STAMP)
	$(BIN)/poolcheck compare $(RUNS) $(ARGS)

# The browser tests drive Debian's chromium: playwright's own browser download is never used.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

.PHONY: sweep
sweep: $(STAMP)
	$(BIN)/poolcheck sweep $(ARGS)

# Every failure scenario, a faulty and a fixed run each (about 5 minutes), ending with a table.
.PHONY: scenarios
scenarios: $(STAMP)
	$(BIN)/poolcheck scenario all $(ARGS)

# A 30-minute run watching the collector's memory and open files (not part of `make test`).
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak $(ARGS)

.PHONY: soak

clean:
	rm -rf $(VENV) *.egg-info
