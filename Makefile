# The two commands of the README. Everything else is done by the project's own tools.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/reminders run --demo

test: $(STAMP)
	$(BIN)/ruff check scheduler tests bench alembic
	$(BIN)/ruff format --check scheduler tests bench alembic
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider
