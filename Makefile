# Two commands do everything: `make ask Q="..."` (set up, then answer) and `make test`.
# Both create .venv/ at the repo root on first use; later runs reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
Q ?= When did Japan ban Huawei equipment from its ministries?

.PHONY: ask index test lint eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

ask: $(STAMP)
	$(BIN)/essay-assistant ask "$(Q)"

index: $(STAMP)
	$(BIN)/essay-assistant index build

lint: $(STAMP)
	$(BIN)/ruff check assistant tests
	$(BIN)/ruff format --check assistant tests

test: lint
	$(BIN)/python -m pytest

eval: $(STAMP)
	$(BIN)/essay-assistant eval tests/data/dev.jsonl --out docs

clean:
	rm -rf $(VENV) index/CURRENT index/PREVIOUS index/builds index/.lock
