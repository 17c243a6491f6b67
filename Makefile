# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXAMPLE := examples/the-lighthouse-keeper.txt

.PHONY: install run up down test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Start the local stack (if it is not running) and read the example aloud.
run: install
	$(BIN)/chorus up
	$(BIN)/chorus submit $(EXAMPLE) --format mp3 --title "The Lighthouse Keeper" -o out/the-lighthouse-keeper.mp3
	@echo
	@echo "The stack is still running: '$(BIN)/chorus env' shows its endpoints, 'make down' stops it."

up: install
	$(BIN)/chorus up

down: install
	$(BIN)/chorus down

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/pipeline_vs_direct.py

clean: down
	rm -rf .chorus out
