# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-local-model bench bench-quick lint clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The bundled demo MCP server (mcp.demo.json), unless the environment or .env names servers.
DEMO_MCP := $(if $(BACKTRACK_MCP_CONFIG)$(shell grep -s '^BACKTRACK_MCP_CONFIG=' .env),,BACKTRACK_MCP_CONFIG=mcp.demo.json)

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(DEMO_MCP) $(BIN)/backtrack console

test: lint
	$(BIN)/python -m pytest -q

# Opt-in, not part of `make test`: a real llama-server (built once into .backtrack/, ~8 min on 2 cores).
test-local-model: $(STAMP)
	bash tests_local/setup.sh >/dev/null
	$(BIN)/python -m pytest -q tests_local

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --per-turn

lint: $(STAMP)
	$(BIN)/ruff check core bots bench tests
	$(BIN)/mypy core bots bench tests

clean:
	rm -rf $(VENV) .backtrack .pytest_cache
