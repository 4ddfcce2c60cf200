# The two commands a newcomer runs: `make demo` (the live monitor) and `make test` (everything).
# Both install what they need: a venv at .venv, the Python dependencies, the Kafka jars.

VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTHON  ?= python3

.PHONY: install jars lint types unit integration test demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

jars: $(STAMP)
	$(BIN)/ioc kafka fetch

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: jars
	$(BIN)/pytest -m integration

test: lint types jars
	$(BIN)/pytest

demo: jars
	$(BIN)/ioc demo $(if $(DURATION),--duration $(DURATION),)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
