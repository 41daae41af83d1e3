# The main commands: `make chat` (set up, then open the chat UI), `make ask Q="..."` and `make test`.
# Each creates .venv/ at the repo root on first use; later runs reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
Q ?= When did Japan ban Huawei equipment from its ministries?

HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: ask chat index test lint browser eval bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

ask: $(STAMP)
	$(BIN)/essay-assistant ask "$(Q)"

chat: $(STAMP)
	$(BIN)/essay-assistant chat --host $(HOST) --port $(PORT)

index: $(STAMP)
	$(BIN)/essay-assistant index build

lint: $(STAMP)
	$(BIN)/ruff check assistant tests benchmarks
	$(BIN)/ruff format --check assistant tests benchmarks

# The UI tests drive Debian's Chromium through Playwright (never `playwright install`: it downloads browsers).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: lint browser
	$(BIN)/python -m pytest

eval: $(STAMP)
	$(BIN)/essay-assistant eval tests/data/dev.jsonl --out docs

# Latency, cold start, rebuild time and memory beside LangChain's tutorial pipeline (docs/benchmarks.md).
# BENCH_ARGS e.g. "--scale 10 --build-runs 1"; see `python -m benchmarks --help`.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) index/CURRENT index/PREVIOUS index/builds index/.lock
