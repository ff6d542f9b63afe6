# The two commands a new machine needs (each does all set-up itself):
#   make demo   run the whole pipeline on the local stack with simulated devices
#   make test   lint, type-check and run the test suite against the real local stack
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint stack-up stack-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vitalstream demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

test: lint
	$(BIN)/pytest

stack-up: $(STAMP)
	$(BIN)/vitalstream stack up

stack-down: $(STAMP)
	$(BIN)/vitalstream stack down

clean: stack-down
	rm -rf $(VENV) .stack
