# Forgetting Explorer — `make run` serves the app, `make test` runs the tests.
# Each target creates .venv on first use and reinstalls only when a requirements file changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test test-slow bench lint format clean-cache help mutate

help:
	@echo "make run    - set up .venv (first time only) and serve the app on http://localhost:$(PORT)"
	@echo "make test   - set up .venv with the test tools and run the default test suite"
	@echo "make test-slow - the long tests (multi-seed orderings, thesis-scale checks)"
	@echo "make bench  - benchmarks against the peers; writes bench/results.md"
	@echo "make mutate - mutation testing of the metrics and analyses (30-40 min on 2 cores; docs/testing.md)"
	@echo "make lint   - ruff, and the import contract (import-linter)"

$(PY):
	@echo ">> creating the virtual environment in $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps record which requirements are installed; a changed file triggers a reinstall.
$(VENV)/.runtime: requirements.txt | $(PY)
	@echo ">> installing runtime dependencies (torch $$(grep '^torch==' requirements.txt | cut -d= -f3), streamlit, …) — the first time takes a few minutes"
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	@echo ">> installing test and lint tools"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	@echo ">> installing benchmark-only packages"
	$(PY) -m pip install --quiet --no-deps -r requirements-bench.txt  # --no-deps keeps the torch pins (bench/README.md)
	@touch $@

run: $(VENV)/.runtime
	@echo ">> serving Forgetting Explorer on http://localhost:$(PORT) (Ctrl-C to stop)"
	$(PY) -m app.serve --server.port $(PORT) --server.headless true

test: $(VENV)/.dev
	@echo ">> running the tests (slow ones: make test-slow)"
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile  # a file stays on one worker

test-slow: $(VENV)/.dev
	$(PY) -m pytest -q -p no:cacheprovider -m slow -n 2 --dist loadfile

# MUTATE_JOBS mutants at once; MUTATE_MODULES=metrics (etc.) for a subset. Scratch: mutants/.
MUTATE_JOBS ?= 2
mutate: $(VENV)/.dev
	@echo ">> mutation testing with mutmut; summary in mutants/summary.txt (docs/testing.md)"
	$(PY) tests/mutate.py --jobs $(MUTATE_JOBS) $(MUTATE_MODULES)

bench: $(VENV)/.bench
	@echo ">> running the benchmarks; results go to bench/results.md"
	$(PY) bench/run_all.py

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check engine app tests bench deploy
	$(VENV)/bin/ruff format --check engine app tests bench deploy
	$(VENV)/bin/lint-imports  # the layering of ARCHITECTURE.md (.importlinter)

format: $(VENV)/.dev
	$(VENV)/bin/ruff format engine app tests bench deploy

clean-cache:
	rm -rf cache/cache.db* cache/[0-9a-f][0-9a-f]
