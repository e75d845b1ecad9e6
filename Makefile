# `make run` and `make test` set everything up themselves: a fresh machine needs only Python 3.11+.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Where `make run` serves (`make run PORT=8080 HOST=192.168.1.5`; a host that is not loopback
# needs LEDGER_SANDBOX_ON_PUBLIC_HOST=true with the sandbox); in development the demo's links,
# the payment form and the return URLs follow them, unless LEDGER_PUBLIC_URL is set. HOST is
# taken from the command line only, not from the environment: tcsh and some images export HOST
# as the machine's name.
HOST    = 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint bench clean

run: $(STAMP)
	$(BIN)/ledger demo --if-empty --host $(HOST) --port $(PORT)
	$(BIN)/ledger serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Gig Ledger needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

bench: $(STAMP)
	$(BIN)/python -m bench.projections
