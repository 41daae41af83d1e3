import re
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.corpus import REFERENCES, load_corpus, parse_reference, split_sentences
from assistant.errors import CorpusError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(Settings().corpus_path)


def test_sections_in_order(corpus):
    assert corpus.sections == [
        "Title",
        "Introduction",
        "U.S. Technology Controls",
        "Cooperating and Hedging: Japan’s Strategy",
        "Paths Forward",
        "About the Author",
        "Series Note",
        REFERENCES,
    ]
    assert corpus.title.startswith("Bonding Over Bans")
    assert corpus.author_line == "Ian Wong (Nagasaki, 2022-2023)"


def test_web_navigation_dropped_and_text_kept_exactly(corpus):
    lines = corpus.text.splitlines()
    assert "Previous" not in lines and "Next" not in lines
    assert not any("Human Trafficking" in line for line in lines)
    assert "\u00a0" not in corpus.text
    assert "“small yard and high fence”" in corpus.text  # curly quotes kept
    assert "semiconductor technology—exemplifying" in corpus.text  # em-dash kept


def test_twenty_six_references_with_fields(corpus):
    assert sorted(corpus.references) == list(range(1, 27))
    ref10 = corpus.references[10]
    assert ref10.authors == "Tim Kelly and Miho Uranaka"
    assert ref10.title == "Japan Restricts Chipmaking Equipment Exports as It Aligns with U.S. China Curbs"
    assert ref10.outlet == "Reuters"
    assert ref10.date == "March 31, 2023"
    assert ref10.url.startswith("https://www.reuters.com/technology/")
    assert corpus.references[11].language == "Japanese"
    assert corpus.references[9].authors is None  # no author: absent, not an error
    for ref in corpus.references.values():
        assert corpus.text[ref.start : ref.end] == ref.text


def test_footnotes_found_and_table_sources_uncited(corpus):
    cited = corpus.cited_numbers()
    assert cited == set(range(1, 27)) - {13, 14, 15, 16, 17}
    assert corpus.missing_artifacts == ("Table 1",)


def test_every_sentence_span_is_in_its_paragraph(corpus):
    for paragraph in corpus.paragraphs:
        for span in paragraph.sentences:
            assert paragraph.start <= span.start < span.end <= paragraph.end


def test_sentence_splitter_keeps_abbreviations_and_footnotes():
    text = "Finally, in May 2019, the U.S. Department of Commerce acted. (4) This action barred Huawei. Next one."
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    assert sentences == [
        "Finally, in May 2019, the U.S. Department of Commerce acted. (4)",
        "This action barred Huawei.",
        "Next one.",
    ]


def test_marker_ending_a_paragraph_stays_with_its_sentence():
    """Issue 12: a paragraph-final "(6)" was split off as a sentence of its own."""
    text = "The rules came in 2022. (5) These rules were tightened a year later. (6)"
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    assert sentences == ["The rules came in 2022. (5)", "These rules were tightened a year later. (6)"]
    text = "Two sources back this. (7) (8)\n"
    assert [text[s.start : s.end] for s in split_sentences(text)] == ["Two sources back this. (7) (8)"]


def test_no_sentence_is_only_markers_or_punctuation():
    for text in ["(3) Opening marker. Then a sentence.", "A sentence. “ ” (4)", "Text. . . More text."]:
        sentences = [text[s.start : s.end] for s in split_sentences(text)]
        assert all(any(c.isalpha() for c in s) for s in sentences), sentences
        assert "".join(sentences).replace(" ", "") == text.replace(" ", "")  # nothing lost


def test_corpus_sentences_have_letters_and_own_every_marker_once(corpus):
    """Property over the real essay: every sentence has a letter; every footnote marker lies in exactly one sentence."""
    for paragraph in corpus.paragraphs:
        spans = paragraph.sentences
        for span in spans:
            assert any(c.isalpha() for c in corpus.text[span.start : span.end]), corpus.text[span.start : span.end]
        for marker in re.finditer(r"\(\d{1,2}\)", corpus.text[paragraph.start : paragraph.end]):
            start, end = paragraph.start + marker.start(), paragraph.start + marker.end()
            owners = [s for s in spans if s.start <= start and end <= s.end]
            assert len(owners) == 1, (paragraph.number, marker.group(0))
        # Sentences are disjoint and in order.
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))


def test_reference_with_missing_fields_parses():
    ref = parse_reference(99, "Some unquoted text with no date or link", 0)
    assert ref.url is None and ref.date is None and ref.language is None
    assert ref.number == 99


def test_missing_corpus_file_says_how_to_fix(tmp_path: Path):
    with pytest.raises(CorpusError, match="ASSISTANT_CORPUS_DIR"):
        load_corpus(tmp_path / "essay.md")
