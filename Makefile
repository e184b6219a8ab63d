# kaptrain: `make run` sets up everything and serves the site; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app kaptrain
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run setup test screenshots lint audit bench bench-scale load clean

# setuptools too: Python 3.11's venv seeds setuptools 65.5.0, which has published advisories (see `make audit`).
$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev-installed: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed ## migrate the database, import the course, create demo accounts
	$(FLASK) db upgrade
	$(FLASK) content import
	$(FLASK) demo create

# The demo names a support address (in the footer and wherever learners are told to contact the provider) unless
# KAPTRAIN_SUPPORT_EMAIL is set; a real site sets its own (see Configuration).
run: setup ## serve http://$(HOST):$(PORT) (e.g. make run PORT=8000 HOST=0.0.0.0)
	KAPTRAIN_SUPPORT_EMAIL="$${KAPTRAIN_SUPPORT_EMAIL:-support@example.com}" $(FLASK) run --host $(HOST) --port $(PORT)

test: $(BIN)/.dev-installed ## the whole suite (set TEST_DATABASE_URL to also use PostgreSQL)
	$(BIN)/pytest

screenshots: $(BIN)/.dev-installed ## refresh docs/screenshots/ from the browser tests (`make test` writes build/)
	KAPTRAIN_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/e2e/test_pages.py

lint: $(BIN)/.dev-installed
	$(BIN)/ruff check kaptrain tests bench migrations .ci/audit.py
	$(BIN)/ruff format --check kaptrain tests bench migrations .ci/audit.py
	$(BIN)/mypy kaptrain

audit: $(BIN)/.dev-installed ## known vulnerabilities in the pinned requirements (exceptions: audit-exceptions.toml)
	$(BIN)/python .ci/audit.py

bench: $(BIN)/.dev-installed
	$(BIN)/python bench/run.py

bench-scale: $(BIN)/.dev-installed ## 10,000 seeded learners: the site vs bare Flask + Jinja (docs/performance.md)
	$(BIN)/python bench/scale.py $(ARGS)

load: $(BIN)/.dev-installed ## 200 learners for 2 minutes against gunicorn + PostgreSQL + Redis (docs/load-testing.md)
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
