# kaptrain: `make run` sets up everything and serves the site; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app kaptrain
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run setup test lint bench clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev-installed: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed ## migrate the database, import the course, create demo accounts
	$(FLASK) db upgrade
	$(FLASK) content import
	$(FLASK) demo create

run: setup ## serve http://127.0.0.1:5000
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(BIN)/.dev-installed ## the whole suite (set TEST_DATABASE_URL to also use PostgreSQL)
	$(BIN)/pytest

lint: $(BIN)/.dev-installed
	$(BIN)/ruff check kaptrain tests bench migrations
	$(BIN)/mypy kaptrain

bench: $(BIN)/.dev-installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
