"""SentenceTable over the real essay (chunked by words, 40 a passage), its rows given in reverse order."""

import numpy as np
import pytest

from assistant.chunking import chunk_corpus
from assistant.config import REPO_ROOT
from assistant.corpus import footnotes_in, load_corpus
from assistant.index import SentenceTable
from assistant.types import Span

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(REPO_ROOT / "corpus" / "essay.md")


@pytest.fixture(scope="module")
def table(corpus) -> SentenceTable:
    # 40 words a passage: paragraphs 1 and 2 become several passages each. Corpus order, as the loader
    # gives them: the references come before the essay's closing "Series Note".
    passages = sorted(chunk_corpus(corpus, lambda text: len(text.split()), 40), key=lambda p: p.start)
    ids = [p.id for p in passages for _ in p.sentences]
    spans = [s for p in passages for s in p.sentences]
    vectors = np.eye(len(spans), dtype=np.float32)  # reading position i -> unit vector e_i
    # The store may return rows in any order: the table puts them in reading order itself.
    return SentenceTable({p.id: p for p in passages}, ids[::-1], spans[::-1], vectors[::-1])


def test_rows_are_in_reading_order_whatever_the_order_given(table, corpus):
    assert len(table) == 128 and table.vectors.shape == (128, 128) and table.vectors.dtype == np.float32
    assert [s.start for s in table.spans] == sorted(s.start for s in table.spans)
    assert all(table.vectors[row, row] == 1.0 for row in range(len(table)))  # each row kept its own vector
    assert all(table.texts[r] == corpus.text[s.start : s.end] for r, s in enumerate(table.spans))
    assert table.texts[0] == corpus.title


def test_rows_of_a_passage(table):
    assert table.rows_of("essay-00-1") == (0, 1)  # the title and the byline
    assert table.rows_of("essay-01-1") == (2,)
    assert table.rows_of("essay-01-2") == (3, 4)
    assert table.rows_of("ref-09") == (106,)
    assert table.rows_of("essay-99-9") == ()
    assert [table.passage(r).id for r in (2, 3, 4)] == ["essay-01-1", "essay-01-2", "essay-01-2"]
    span = table.spans[3]
    assert table.row("essay-01-2", span.start) == 3 and table.row_at(span.start, span.end) == 3
    assert table.row_at(span.start, span.end + 1) is None
    assert table.find_row("essay-01-2", span.start) == 3 and table.find_row("essay-01-1", span.start) is None
    with pytest.raises(KeyError):
        table.row("essay-01-1", span.start)  # that sentence belongs to essay-01-2
    passage = table.passages["essay-01-2"]
    assert table.rows_within(passage.start, passage.end) == [3, 4]


def test_neighbours_stop_at_paragraph_boundaries(table):
    # Paragraph 1 (Introduction) is rows 2-4 over two passages; paragraph 2 starts at row 5.
    assert table.paragraph_rows(3) == (2, 3, 4)
    assert (table.neighbour(2, 1), table.neighbour(3, 1), table.neighbour(3, -1)) == (3, 4, 2)
    assert table.neighbour(4, 1) is None and table.neighbour(2, -1) is None  # rows 5 and 1: other paragraphs
    assert table.neighbour(4, 1, within="section") == 5  # paragraph 2 is in the Introduction too
    assert table.neighbour(2, -1, within="section") is None  # row 1 is the byline, in the title section
    assert table.neighbour(2, 2) == 4 and table.neighbour(2, 3) is None
    assert table.passage(97).section == "About the Author" and table.passage(98).id == "ref-01"
    assert table.neighbour(97, 1, within="section") is None and table.neighbour(98, -1, within="section") is None
    assert table.neighbour(99, -1, within="section") == 98  # entries share the References section
    assert table.neighbour(106, 1) is None and table.neighbour(106, -1) is None  # an entry is its own paragraph
    assert table.passage(124).section == "Series Note" and table.neighbour(123, 1, within="section") is None
    assert table.neighbour(len(table) - 1, 1, within="section") is None


def test_footnote_and_reference_links(table):
    assert table.footnotes(45) == (9,) and table.texts[45].endswith("manufactured by Huawei. (9)")
    assert table.footnotes(0) == ()
    assert table.reference_passage(9).id == "ref-09" and table.reference_rows(9) == (106,)
    assert table.texts[106].startswith("“Japan Bans Huawei and Its Chinese Peers from Government Contracts,”")
    assert table.citing_rows(9) == (45,) and table.passage(45).id == "essay-09-2"
    assert table.reference_passage(99) is None and table.reference_rows(99) == () and table.citing_rows(99) == ()
    # Every footnote of every essay row leads to its entry, and the entry leads back to the row.
    for row in table.rows(kind="essay"):
        assert table.footnotes(row) == tuple(footnotes_in(table.texts[row]))
        for number in table.footnotes(row):
            assert row in table.citing_rows(number) and table.reference_rows(number)


def test_rows_by_kind_and_section(table):
    assert table.rows(kind="reference") == list(range(98, 124))
    assert table.rows(kind="essay", sections={"Series Note"}) == [124, 125, 126, 127]
    assert table.rows(kind="essay", sections={"Title"}) == [0, 1]
    assert table.rows(sections={"Introduction"})[:3] == [2, 3, 4]
    assert len(table.rows()) == 128


def test_paragraph_means_and_best_of_each_passage(table):
    third = np.float32(1 / np.sqrt(3))
    np.testing.assert_allclose(table.paragraph_vectors[3][[2, 3, 4]], [third] * 3, rtol=1e-6)
    assert table.paragraph_vectors[3].sum() == pytest.approx(3 * third, rel=1e-6)
    assert table.paragraph_vectors[106][106] == 1.0  # a reference entry alone
    np.testing.assert_allclose(table.unit_mean([0, 1]), table.paragraph_vectors[0])
    ids, best = table.best_by_passage(np.arange(len(table), dtype=np.float32))
    assert ids[:3] == ("essay-00-1", "essay-01-1", "essay-01-2") and list(best[:3]) == [1.0, 2.0, 4.0]
    assert len(ids) == len(best) == len(table.passages)


def test_terms_column_is_per_reader(table):
    assert table.terms is None
    view = table.with_terms(lambda text: text.lower().split()[:1])
    assert view.terms[0] == frozenset({table.texts[0].lower().split()[0]}) and table.terms is None
    assert view.rows_of("essay-01-2") == (3, 4)


def test_columns_must_agree(table):
    with pytest.raises(ValueError, match="differ in length"):
        SentenceTable(table.passages, ["essay-01-1"], [], np.zeros((0, 4), dtype=np.float32))
    with pytest.raises(KeyError):
        SentenceTable(table.passages, ["nowhere"], [Span(0, 1)], np.zeros((1, 4), dtype=np.float32))
