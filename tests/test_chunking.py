"""chunk_corpus without the embedding model: word pieces counted as words."""

from pathlib import Path

import pytest

from assistant.chunking import chunk_corpus
from assistant.corpus import parse_corpus
from assistant.errors import AssistantError, CorpusError

pytestmark = pytest.mark.unit

ESSAY = """# A Title

By A. Writer

## Section One

A short first sentence. (1) A second short sentence.

## References

(1) Someone, “A Source,” Outlet, May 1, 2020.
"""


def _words(text: str) -> int:
    return len(text.split()) + 2  # [CLS] and [SEP]


def test_passages_are_essay_paragraph_chunks_then_references():
    corpus = parse_corpus(ESSAY, Path("essay.md"))
    passages = chunk_corpus(corpus, _words, 120)
    assert [p.id for p in passages] == ["essay-00-1", "essay-01-1", "ref-01"]
    assert [p.kind for p in passages] == ["essay", "essay", "reference"]
    assert passages[1].refs == (1,)
    assert all(p.text == corpus.text[p.start : p.end] for p in passages)


def test_a_sentence_longer_than_the_model_reads_is_a_corpus_error():
    long = " ".join(["word"] * 300) + "."
    corpus = parse_corpus(ESSAY.replace("A second short sentence.", long), Path("essay.md"))
    with pytest.raises(CorpusError, match=r"paragraph 1 \(Section One\) is 3\d\d word pieces long") as raised:
        chunk_corpus(corpus, _words, 120)
    assert isinstance(raised.value, AssistantError) and not isinstance(raised.value, ValueError)
    assert "Split it into shorter sentences" in str(raised.value)
