"""The sentence splitter (nupunkt, adjusted for footnote markers) and footnote recognition."""

import re
import subprocess
import sys

import pytest

from assistant.config import Settings
from assistant.corpus import REFERENCES, footnotes_in, load_corpus, split_sentences

pytestmark = pytest.mark.unit

MARKER = re.compile(r"\(\d{1,2}\)")


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(Settings().corpus_path)


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        # Abbreviations: the previous splitter broke after "e.g.", "Dr." and "Jan." here.
        (
            "Allies, e.g. Japan and the Netherlands, agreed. Others waited.",
            "Allies, e.g. Japan and the Netherlands, agreed.",
        ),
        ("Use short forms, e.g. this one, with care. Next sentence.", "Use short forms, e.g. this one, with care."),
        ("The rival, i.e. China, objected. Talks stalled.", "The rival, i.e. China, objected."),
        ("We met Dr. Smith yesterday. He agreed.", "We met Dr. Smith yesterday."),
        ("Mr. Abe spoke on Apr. 4, 2023. Nobody objected.", "Mr. Abe spoke on Apr. 4, 2023."),
        (
            "The rules took effect in Jan. 2023 across the board. Firms complied.",
            "The rules took effect in Jan. 2023 across the board.",
        ),
        ("Acme Inc. and St. Louis firms sold chips. Sales fell.", "Acme Inc. and St. Louis firms sold chips."),
        ("The U.S. Department of Commerce acted. It barred Huawei.", "The U.S. Department of Commerce acted."),
        (
            "It aimed to protect “U.S. national security.” (5) These rules came.",
            "It aimed to protect “U.S. national security.” (5)",
        ),
        ("See item No. 5 in the list. It is short.", "See item No. 5 in the list."),
        (
            "A report by J. Smith and P. K. Jones followed. It was long.",
            "A report by J. Smith and P. K. Jones followed.",
        ),
        ("Zhang et al. reported new rules. Others agreed.", "Zhang et al. reported new rules."),
        (
            "Officials in Washington, D.C. agreed in 2022. Japan followed.",
            "Officials in Washington, D.C. agreed in 2022.",
        ),
        # A sentence that does end after an abbreviation or a Roman numeral.
        ("Memories from World War II. Two incidents show it.", "Memories from World War II."),
        ("Chips were made in the U.S. The rules followed.", "Chips were made in the U.S."),
    ],
)
def test_abbreviations_end_a_sentence_only_where_one_ends(text, first):
    assert sentences(text) == [first, text[len(first) + 1 :]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Officials said they were “in competition.” (2) They regularly point to differences.",
            ["Officials said they were “in competition.” (2)", "They regularly point to differences."],
        ),
        (
            "He stressed that “we are not following the United States in any way.” (12) Though aligning, Japan did.",
            [
                "He stressed that “we are not following the United States in any way.” (12)",
                "Though aligning, Japan did.",
            ],
        ),
        (
            "Japan banned Huawei. (9) In March 2023, Japan acted again.",
            ["Japan banned Huawei. (9)", "In March 2023, Japan acted again."],
        ),
        ("Japan banned semiconductors.(9) Then it waited.", ["Japan banned semiconductors.(9)", "Then it waited."]),
        (
            "It called for a rethinking of policy. (1) What exactly did Sullivan mean?",
            ["It called for a rethinking of policy. (1)", "What exactly did Sullivan mean?"],
        ),
        ("Two sources back this. (7) (8) Then more.", ["Two sources back this. (7) (8)", "Then more."]),
        (
            "After meetings between the three countries (7) in January 2023, both agreed. This case captures it.",
            ["After meetings between the three countries (7) in January 2023, both agreed.", "This case captures it."],
        ),
        (
            "It sought to obtain chips…and manufacture them” in order to protect it. (5) These rules came.",
            ["It sought to obtain chips…and manufacture them” in order to protect it. (5)", "These rules came."],
        ),
        (
            "Our aims are (1) security and (2) growth. Both matter.",
            ["Our aims are (1) security and (2) growth.", "Both matter."],
        ),
    ],
)
def test_markers_stay_with_the_sentence_they_end(text, expected):
    assert sentences(text) == expected


def test_offsets_are_shifted_and_whitespace_trimmed():
    text = "  First one. (3)  Second one.\n"
    spans = split_sentences(text, offset=100)
    assert [(s.start - 100, s.end - 100) for s in spans] == [(2, 16), (18, 29)]
    assert split_sentences("   \n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("These challenges called for a rethinking of U.S. policy. (1) What exactly did Sullivan mean?", [1]),
        ("The two countries are “in competition.” (2)", [2]),
        ("Japan banned semiconductors.(9) Then it waited.", [9]),
        ("Two sources back this. (7) (8)", [7, 8]),
        ("After meetings between the three countries (7) in January 2023, they agreed.", [7]),
        ("A Japanese school in China (22) and the shrine in Tokyo were attacked. (23)", [22, 23]),
        ("Did they agree? (4) Yes.", [4]),
        # Not the essay's footnote pattern: enumerations and a number that a lower-case word continues.
        ("(1) security and (2) growth", []),
        ("Our aims are (1) security and (2) growth.", []),
        ("Two aims: (1) security, (2) growth.", []),
        ("Two aims. (1) security and (2) growth.", []),
        ("Plans include (3) new fabs.", []),
        ("A figure (12)", []),
    ],
)
def test_footnotes_only_where_the_essay_pattern_holds(text, expected):
    assert footnotes_in(text) == expected


def test_essay_sentences_cover_every_character_and_own_every_marker_once(corpus):
    """Property over the real essay: the guarantees of ``split_sentences`` on every body paragraph."""
    for paragraph in corpus.paragraphs[1:]:
        block = corpus.text[paragraph.start : paragraph.end]
        spans = [(s.start - paragraph.start, s.end - paragraph.start) for s in paragraph.sentences]
        texts = [block[s:e] for s, e in spans]
        assert all(_letter(t) for t in texts), texts
        assert all(t == t.strip() for t in texts)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), "disjoint and in order"
        covered = {i for s, e in spans for i in range(s, e)}
        assert all(i in covered for i, c in enumerate(block) if not c.isspace()), paragraph.number
        for marker in MARKER.finditer(block):
            owners = [(s, e) for s, e in spans if s <= marker.start() and marker.end() <= e]
            assert len(owners) == 1, (paragraph.number, marker.group(0))
        # A sentence quoted alone still shows its own footnotes, and together they are the paragraph's.
        per_sentence = [n for t in texts for n in footnotes_in(t)]
        assert tuple(dict.fromkeys(per_sentence)) == paragraph.footnotes
        assert len(per_sentence) == len(MARKER.findall(block)), "every marker in the essay is a footnote"


def test_essay_boundaries_are_the_ones_the_index_was_fitted_on(corpus):
    """100 body sentences, each ending a sentence. A change here (e.g. a new nupunkt model) means
    rebuilding the index and refitting assistant/fitted.json."""
    body = [corpus.text[s.start : s.end] for p in corpus.paragraphs[1:] for s in p.sentences]
    assert len(body) == 100
    assert all(re.search(r"[.?!…][”’\"]?(?:\s*\(\d{1,2}\))*$", t) for t in body), [
        t for t in body if not re.search(r"[.?!…][”’\"]?(?:\s*\(\d{1,2}\))*$", t)
    ]
    assert corpus.cited_numbers() == set(range(1, 27)) - {13, 14, 15, 16, 17}
    assert REFERENCES not in {p.section for p in corpus.paragraphs}


def test_importing_the_corpus_module_does_not_load_the_splitter():
    code = "import sys, assistant.corpus; print('nupunkt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def _letter(text: str) -> bool:
    return any(c.isalpha() for c in text)
