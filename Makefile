# The README's two commands (run, test) and a few helpers. Everything installs itself.
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
RUN := $(UV) run --frozen --no-progress
CONTRACT_TOOLS := tests/contract/node/node_modules/.installed

.PHONY: run test contract-tools lint openapi fault bench bench-api bench-cohort bench-ingest bench-observability bench-ratelimit bench-xapi bench-calibration bench-impact charts bench-charts clean

run: .venv/.synced  ## run the service on the embedded SQLite store, with the built-in ladder
	$(RUN) ladder dev

test: .venv/.synced contract-tools  ## lint, type-check, then the whole test suite (Postgres and SQLite)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) pytest

contract-tools:  ## Spectral, Redocly, openapi-typescript and tsc for tests/contract (needs npm)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(CONTRACT_TOOLS); \
	else echo "npm not found: the OpenAPI lint and TypeScript tests will be skipped"; fi

$(CONTRACT_TOOLS): tests/contract/node/package.json tests/contract/node/package-lock.json
	npm ci --prefix tests/contract/node --no-audit --no-fund --loglevel=error
	@touch $@

lint: .venv/.synced
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

openapi: .venv/.synced  ## record the examples from a run of the app, then rewrite the committed OpenAPI document
	$(RUN) python -m tools.openapi
	$(RUN) ladder openapi --output openapi/openapi.json

fault: .venv/.synced  ## restart and kill a private Postgres under concurrent writers (also in `make test`)
	$(RUN) pytest -m fault tests/fault -s -p no:cacheprovider

bench-api: .venv/.synced  ## three score reads in one run: repeated (memo), If-None-Match answered 304, computed (SCORE_CACHE_MB=0), each vs a one-row-read floor and bare JSON (wrk, ~8 min)
	$(RUN) python bench/api_read.py $(BENCH_ARGS)

bench-cohort: .venv/.synced  ## cohort evaluation of 10,000 and 100,000 subjects (~4 min)
	$(RUN) python bench/cohort.py $(BENCH_ARGS)

bench-calibration: .venv/.synced  ## rater effects of 10,000 and 100,000 people vs their cohort evaluation (~8 min)
	$(RUN) python bench/calibration.py $(BENCH_ARGS)

bench-ingest: .venv/.synced  ## bulk ingest, ratings per second (~1 min)
	$(RUN) python bench/ingest.py $(BENCH_ARGS)

bench-observability: .venv/.synced  ## score reads with metrics and request logging on vs off (wrk, ~3 min)
	$(RUN) python bench/observability.py $(BENCH_ARGS)

bench-ratelimit: .venv/.synced  ## rate limiting per request: shared across workers (Postgres) vs in-process vs off (wrk, ~2 min)
	$(RUN) python bench/ratelimit.py $(BENCH_ARGS)

bench-impact: .venv/.synced  ## impact preview of a new framework version for 100,000 people vs their cohort evaluation (~6 min)
	$(RUN) python bench/impact.py $(BENCH_ARGS)

bench-xapi: .venv/.synced  ## xAPI statements per second in lists of 100 vs completed activities one at a time (~1 min)
	$(RUN) python bench/xapi.py $(BENCH_ARGS)

bench: bench-api bench-cohort bench-ingest bench-observability bench-ratelimit bench-xapi bench-calibration bench-impact bench-charts

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --no-progress
	@touch $@

clean:
	rm -rf .venv $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .hypothesis tests/contract/node/node_modules

charts: .venv/.synced  ## the README's charts of the quickstart person (docs/charts/*.svg), from an in-process run
	$(RUN) python -m tools.charts

bench-charts: .venv/.synced  ## score chart rendered per request (SVG, PNG, spec) vs the JSON read of the same person (~1 min)
	$(RUN) python bench/charts.py $(BENCH_ARGS)
