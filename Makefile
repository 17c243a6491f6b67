# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXAMPLE := examples/the-lighthouse-keeper.txt

# The upstream_cosyvoice tests run upstream CosyVoice's own code in an
# environment of their own: Chorus with the `cosyvoice` extra and CPU builds of
# what the `gpu` extra adds (tests/cosyvoice-cpu.txt). openai-whisper goes in
# without its dependencies (they ask for triton, a GPU compiler).
COSY_VENV  ?= .venv-cosyvoice
COSY_BIN   := $(COSY_VENV)/bin
COSY_STAMP := $(COSY_VENV)/.installed-stamp

.PHONY: install cosyvoice-env run up down test bench bench-cosyvoice clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

$(COSY_STAMP): pyproject.toml tests/cosyvoice-cpu.txt
	$(PYTHON) -m venv $(COSY_VENV)
	echo '*' > $(COSY_VENV)/.gitignore
	$(COSY_BIN)/python -m pip install --quiet --upgrade pip
	$(COSY_BIN)/python -m pip install --quiet -r tests/cosyvoice-cpu.txt -e ".[cosyvoice]"
	$(COSY_BIN)/python -m pip install --quiet --no-deps openai-whisper==20250625
	touch $(COSY_STAMP)

cosyvoice-env: $(COSY_STAMP)

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

test: install cosyvoice-env
	sh scripts/install_test_tools.sh
	$(BIN)/python -m pytest -m "not upstream_cosyvoice"
	$(COSY_BIN)/python -m pytest -m upstream_cosyvoice tests/test_cosyvoice.py

bench: install
	$(BIN)/python bench/pipeline_vs_direct.py

bench-cosyvoice: cosyvoice-env
	$(COSY_BIN)/python bench/cosyvoice_concurrency.py

clean: down
	rm -rf .chorus out
