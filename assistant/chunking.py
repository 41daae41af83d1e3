"""Passages: sentence-aligned chunks of one paragraph each, plus one passage per reference.

An essay passage is a run of whole sentences from one paragraph, packed greedily up to
``chunk_tokens`` word pieces of the embedding model (never past its 256-piece input limit);
a passage does not open with a sentence that leans on the previous one ("Instead, …") when
moving the boundary back one sentence keeps both passages within budget.
A reference passage is one bibliography entry. Ids are derived from position, so the same
corpus and parameters always give the same ids.
"""

from __future__ import annotations

from collections.abc import Callable

from assistant.corpus import REFERENCES, Corpus, footnotes_in
from assistant.errors import CorpusError
from assistant.text import leans_on_previous
from assistant.types import Passage, Span


def chunk_corpus(corpus: Corpus, count_tokens: Callable[[str], int], chunk_tokens: int) -> list[Passage]:
    """Split ``corpus`` into passages of at most ``chunk_tokens`` word pieces each.

    Args:
        corpus: The parsed essay.
        count_tokens: Word pieces of a text as the embedding model sees it ([CLS]/[SEP] included).
        chunk_tokens: Budget per essay passage, 16..256. A single sentence longer than the budget
            becomes its own passage; one longer than 256 pieces raises.

    Returns:
        The essay passages in reading order, then one passage per reference entry in number order.

    Raises:
        CorpusError: If a sentence alone exceeds 256 word pieces (the embedding model's input
            limit), naming its paragraph and how it opens.

    """
    text = corpus.text
    passages: list[Passage] = []
    for paragraph in corpus.paragraphs:
        groups: list[list[Span]] = [[]]
        for sentence in paragraph.sentences:
            candidate = groups[-1] + [sentence]
            if not groups[-1] or count_tokens(text[candidate[0].start : sentence.end]) <= chunk_tokens:
                groups[-1] = candidate
                continue
            # Do not open a passage with a sentence that leans on the one before it
            # ("Instead, …", "This action …"): move that one along when it fits.
            previous = groups[-1]
            if (
                len(previous) > 1
                and leans_on_previous(text[sentence.start : sentence.end])
                and count_tokens(text[previous[-1].start : sentence.end]) <= chunk_tokens
            ):
                groups[-1] = previous[:-1]
                groups.append([previous[-1], sentence])
            else:
                groups.append([sentence])
        for chunk_no, group in enumerate(groups, start=1):
            start, end = group[0].start, group[-1].end
            body = text[start:end]
            if (pieces := count_tokens(body)) > 256:
                raise CorpusError(
                    f"{corpus.display_path}: a sentence of paragraph {paragraph.number} ({paragraph.section}) is "
                    f"{pieces} word pieces long, more than the 256 the embedding model reads: “{body[:60]}…”. "
                    "Split it into shorter sentences and build the index again."
                )
            passages.append(
                Passage(
                    id=f"essay-{paragraph.number:02d}-{chunk_no}",
                    kind="essay",
                    section=paragraph.section,
                    paragraph=paragraph.number,
                    start=start,
                    end=end,
                    text=body,
                    refs=tuple(footnotes_in(body)),
                    sentences=tuple(group),
                )
            )
    for number, ref in sorted(corpus.references.items()):
        passages.append(
            Passage(
                id=f"ref-{number:02d}",
                kind="reference",
                section=REFERENCES,
                paragraph=number,
                start=ref.start,
                end=ref.end,
                text=ref.text,
                refs=(number,),
                sentences=(Span(ref.start, ref.end),),
            )
        )
    return passages
