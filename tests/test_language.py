"""Questions in other languages get one honest line; English questions and names are never flagged.

Unit tests: the language is told before anything is retrieved, so the fake model answers as the real one.
"""

from __future__ import annotations

import json

import pytest

import assistant.language as language_check
from assistant.config import REPO_ROOT
from assistant.corpus import load_corpus
from assistant.language import corpus_words, foreign_language, proper_names
from tests.helpers import invoke_cli, load_jsonl

pytestmark = pytest.mark.unit

FOREIGN = {
    "French": [
        "Pourquoi le Japon évite-t-il de nommer la Chine dans ses contrôles à l'exportation ?",
        "Qui a écrit l'essai ?",
        "Quelle est la thèse principale de l'essai ?",
    ],
    "Spanish": [
        "¿Por qué Japón evita nombrar a China en sus controles de exportación?",
        "¿Quién escribió el ensayo?",
        "Cuándo prohibió Japón Huawei?",
    ],
    "German": [
        "Warum vermeidet Japan es, China in seinen Exportkontrollen zu nennen?",
        "Wer hat den Essay geschrieben?",
        "Was ist die Hauptthese des Aufsatzes?",
    ],
    "Japanese": ["日本はなぜ輸出規制で中国を名指ししないのですか？", "このエッセイの著者は誰ですか？"],
}
# Short English questions, follow-ups and bare names: the cases a detector gets wrong most easily.
ENGLISH_SHORT = [
    "Huawei?",
    "Kishida",
    "Nishimura Yasutoshi",
    "SOFA",
    "Abe Shinzo",
    "Rapidus",
    "Nikkei Asia",
    "Jake Sullivan",
    "Why?",
    "Tell me more.",
    "shorter",
    "and Japan?",
    "Who is Huawei's CEO?",
    "When was USJETAA founded?",
    "huawei entity list when?",
    "tl;dr of the intro?",
    "title and outlet of ref 26",
]


@pytest.fixture(scope="module")
def names():
    return proper_names(load_corpus(REPO_ROOT / "corpus" / "essay.md").text)


@pytest.fixture(scope="module")
def vocabulary():
    return corpus_words(load_corpus(REPO_ROOT / "corpus" / "essay.md").text)


def _bank(name: str) -> list[str]:
    return [row["question"] for row in load_jsonl(name)]


def test_no_english_question_of_the_bank_is_flagged(names, vocabulary):
    questions = _bank("tune.jsonl") + _bank("test.jsonl") + ENGLISH_SHORT
    flagged = [(q, foreign_language(q, names)) for q in questions if foreign_language(q, names)]
    flagged += [(q, "with vocabulary") for q in questions if foreign_language(q, names, vocabulary)]
    print(f"\n{len(questions)} English questions, {len(flagged)} flagged")
    assert flagged == []


@pytest.mark.parametrize("language", sorted(FOREIGN))
def test_foreign_questions_are_recognised(language, names, vocabulary):
    assert [foreign_language(q, names) for q in FOREIGN[language]] == [language] * len(FOREIGN[language])
    # The essay's English words let English through early, never a question in another language.
    assert [foreign_language(q, names, vocabulary) for q in FOREIGN[language]] == [language] * len(FOREIGN[language])


def test_a_question_in_the_essays_own_words_needs_no_detector(names, vocabulary, monkeypatch):
    def unavailable(mode):
        raise AssertionError(f"lingua's {mode} detector was asked")

    monkeypatch.setattr(language_check, "_detector", unavailable)
    for question in ("When did Japan ban Huawei?", "Why?", "and Japan?", "What did Sullivan say at Brookings?"):
        assert foreign_language(question, names, vocabulary) is None
    with pytest.raises(AssertionError, match="detector was asked"):
        foreign_language("Quand le Japon a-t-il interdit Huawei ?", names, vocabulary)


def test_foreign_question_gets_one_honest_line(fake_assistant):
    for language, questions in FOREIGN.items():
        result = fake_assistant.answer(questions[0])
        assert result.refused and result.citations == [] and result.passages == []
        assert result.answer.startswith(f"This question looks like {language}; I understand questions in English")
        assert "\n" not in result.answer
        assert result.to_dict()["answer"] == result.answer


def test_dev_questions_are_answered_not_turned_away(fake_assistant, dev_items):
    assert len(dev_items) == 40
    for item in dev_items:
        assert "English only" not in fake_assistant.answer(item["question"]).answer, item["question"]


def test_cli_says_it_reads_english(fake_assistant):
    result = invoke_cli(fake_assistant.settings, "ask", "--json", FOREIGN["Spanish"][1])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["refused"] is True and data["citations"] == []
    assert "Spanish" in data["answer"] and "English" in data["answer"]
