"""The sentence table: every sentence row of a loaded build, and how rows relate.

A build stores one vector per sentence (the ``sentences`` collection) beside its passages. The
stages after the index (retrieval, reranking, answering, the citation checker) address a
sentence by its **row**, an ``int`` into this table, and ask the table everything that depends
on how rows are laid out: a row's passage, span, text, vector and terms; the rows of a passage
or paragraph; a sentence's neighbour within its paragraph or section; the footnotes a sentence
carries and the passage ↔ footnote ↔ reference links; and the groups that paragraph means and
per-passage maxima are taken over. No other module assumes that rows are in reading order or
that a passage's rows are contiguous, so a corpus of several documents or an incremental index
changes this file only.

Rows are kept in reading order: passages in the order of the ``passages`` mapping (corpus
order), sentences by their start offset inside it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from assistant.corpus import footnotes_in
from assistant.types import Passage, PassageKind, Span

if TYPE_CHECKING:
    import numpy as np

# How far a neighbour may be: the same paragraph (a reference entry is its own paragraph), or the same section.
Scope = Literal["paragraph", "section"]


class SentenceTable:
    """The sentence rows of a loaded build, in reading order. Read-only once built; thread-safe.

    Args:
        passages: Every passage, keyed by id, in corpus (reading) order. Each sentence's text is
            read from its passage (``passage.text`` is ``corpus.text[passage.start:passage.end]``).
        passage_ids: The passage id of each stored sentence, in any order.
        spans: The corpus span of each stored sentence (same order as ``passage_ids``); each lies
            inside its passage.
        vectors: ``(n, dim) float32`` L2-normalised sentence embeddings (same order), or an empty
            array when there are no sentences.

    Raises:
        KeyError: If a sentence names a passage that ``passages`` does not hold.
        ValueError: If the three columns differ in length.

    """

    def __init__(
        self,
        passages: Mapping[str, Passage],
        passage_ids: Sequence[str],
        spans: Sequence[Span],
        vectors: np.ndarray,
    ) -> None:
        if not len(passage_ids) == len(spans) == len(vectors):
            raise ValueError(
                f"sentence columns differ in length: {len(passage_ids)} passage ids, {len(spans)} spans, "
                f"{len(vectors)} vectors"
            )
        position = {pid: i for i, pid in enumerate(passages)}
        order = sorted(range(len(spans)), key=lambda i: (position[passage_ids[i]], spans[i].start))
        self.passages: Mapping[str, Passage] = passages
        self.passage_ids: tuple[str, ...] = tuple(passage_ids[i] for i in order)
        self.spans: tuple[Span, ...] = tuple(spans[i] for i in order)
        self.vectors: np.ndarray = vectors[order] if len(vectors) else vectors
        self.terms: tuple[frozenset[str], ...] | None = None
        self._rows_of: dict[str, list[int]] = {}
        for row, pid in enumerate(self.passage_ids):
            self._rows_of.setdefault(pid, []).append(row)
        self._row_at = {(span.start, span.end): row for row, span in enumerate(self.spans)}
        self._row_of_start = {(pid, span.start): row for row, (pid, span) in enumerate(self.rows_with_spans())}
        self._reference_of: dict[int, str] = {}
        for passage in passages.values():
            if passage.kind == "reference":
                for number in passage.refs:
                    self._reference_of.setdefault(number, passage.id)

    def __len__(self) -> int:
        return len(self.spans)

    def rows_with_spans(self) -> Iterable[tuple[str, Span]]:
        """``(passage id, span)`` of each row, in row order."""
        return zip(self.passage_ids, self.spans, strict=True)

    # --- one row ---------------------------------------------------------------------------------

    def passage(self, row: int) -> Passage:
        """The passage of sentence ``row`` (0 <= row < len(table); IndexError otherwise)."""
        return self.passages[self.passage_ids[row]]

    @cached_property
    def texts(self) -> tuple[str, ...]:
        """Each row's sentence text, verbatim (``corpus.text[span.start:span.end]``)."""
        out = []
        for pid, span in self.rows_with_spans():
            passage = self.passages[pid]
            out.append(passage.text[span.start - passage.start : span.end - passage.start])
        return tuple(out)

    def with_terms(self, read: Callable[[str], Iterable[str]]) -> SentenceTable:
        """A view of the table with its ``terms`` column filled: ``frozenset(read(text))`` of each row.

        The terms depend on how a reader reads text (the reranker's lexicon and settings), so
        each reader gets its own view; the views share every other column.
        """
        view = copy.copy(self)
        view.terms = tuple(frozenset(read(text)) for text in self.texts)
        return view

    def row(self, passage_id: str, start: int) -> int:
        """The row of the sentence of passage ``passage_id`` starting at corpus offset ``start``.

        Raises:
            KeyError: If that passage has no sentence starting there.

        """
        return self._row_of_start[(passage_id, start)]

    def find_row(self, passage_id: str, start: int) -> int | None:
        """Like :meth:`row`, but None when that passage has no sentence starting at ``start``."""
        return self._row_of_start.get((passage_id, start))

    def row_at(self, start: int, end: int) -> int | None:
        """The row whose span is exactly ``[start, end)``, or None."""
        return self._row_at.get((start, end))

    def position(self, row: int) -> int:
        """Reading-order position of ``row`` (0 = the corpus's first sentence); distances between rows use it."""
        return row

    # --- groups of rows ----------------------------------------------------------------------------

    def rows_of(self, passage_id: str) -> tuple[int, ...]:
        """The rows of passage ``passage_id`` in reading order (empty for an unknown passage)."""
        return tuple(self._rows_of.get(passage_id, ()))

    def rows(self, kind: PassageKind | None = None, sections: Iterable[str] | None = None) -> list[int]:
        """Rows in reading order: all of them, or those of passages of ``kind`` and in ``sections``."""
        wanted = None if sections is None else set(sections)
        return [
            row
            for row, pid in enumerate(self.passage_ids)
            if (kind is None or self.passages[pid].kind == kind)
            and (wanted is None or self.passages[pid].section in wanted)
        ]

    def rows_within(self, start: int, end: int) -> list[int]:
        """Rows whose span lies inside corpus offsets ``[start, end)``, in reading order."""
        return [row for row, span in enumerate(self.spans) if start <= span.start and span.end <= end]

    def paragraph_key(self, row: int) -> tuple[str, int | str]:
        """What paragraph ``row`` is in: ``("essay", number)``, or ``("reference", passage id)`` for an entry."""
        passage = self.passage(row)
        return (passage.kind, passage.paragraph if passage.kind == "essay" else passage.id)

    @cached_property
    def _paragraphs(self) -> dict[tuple[str, int | str], list[int]]:
        groups: dict[tuple[str, int | str], list[int]] = {}
        for row in range(len(self)):
            groups.setdefault(self.paragraph_key(row), []).append(row)
        return groups

    def paragraph_rows(self, row: int) -> tuple[int, ...]:
        """The rows of ``row``'s paragraph (itself included), in reading order."""
        return tuple(self._paragraphs[self.paragraph_key(row)])

    def neighbour(self, row: int, step: int = 1, *, within: Scope = "paragraph") -> int | None:
        """The row ``step`` sentences after ``row`` in reading order (before it if negative).

        None when that sentence is outside ``row``'s paragraph (``within="paragraph"``) or
        outside its section and kind of passage (``within="section"``), or past either end.
        """
        if within == "paragraph":
            rows = self._paragraphs[self.paragraph_key(row)]
            i = rows.index(row) + step
            return rows[i] if 0 <= i < len(rows) else None
        target = row + step
        if not 0 <= target < len(self):
            return None
        here, there = self.passage(row), self.passage(target)
        if (here.kind, here.section) != (there.kind, there.section):
            return None
        return target

    # --- footnotes and references -------------------------------------------------------------

    @cached_property
    def _footnotes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(footnotes_in(text)) for text in self.texts)

    def footnotes(self, row: int) -> tuple[int, ...]:
        """The footnote numbers sentence ``row``'s text carries, in order (:func:`assistant.corpus.footnotes_in`)."""
        return self._footnotes[row]

    def reference_passage(self, number: int) -> Passage | None:
        """The reference entry footnote ``number`` points to, or None if the corpus has none."""
        pid = self._reference_of.get(number)
        return None if pid is None else self.passages[pid]

    def reference_rows(self, number: int) -> tuple[int, ...]:
        """The rows of reference entry ``number`` (empty if the corpus has none)."""
        pid = self._reference_of.get(number)
        return () if pid is None else self.rows_of(pid)

    @cached_property
    def _citing(self) -> dict[int, tuple[int, ...]]:
        citing: dict[int, list[int]] = {}
        for row in self.rows(kind="essay"):
            for number in self.footnotes(row):
                citing.setdefault(number, []).append(row)
        return {number: tuple(rows) for number, rows in citing.items()}

    def citing_rows(self, number: int) -> tuple[int, ...]:
        """The essay rows whose footnotes include ``number``, in reading order (empty if none)."""
        return self._citing.get(number, ())

    # --- vectors over groups -----------------------------------------------------------------

    def unit_mean(self, rows: Sequence[int]) -> np.ndarray:
        """The L2-normalised mean ``(dim,) float32`` of the vectors of ``rows`` (non-empty); a zero mean stays zero."""
        import numpy as np

        mean = self.vectors[list(rows)].mean(axis=0)
        return mean / (np.linalg.norm(mean) or 1.0)

    @cached_property
    def paragraph_vectors(self) -> np.ndarray:
        """``(n_rows, dim) float32``: each row's paragraph vector, the unit mean of its paragraph's rows.

        A reference entry is its own paragraph (see :meth:`paragraph_key`).
        """
        import numpy as np

        out = np.empty_like(self.vectors)
        for rows in self._paragraphs.values():
            out[rows] = self.unit_mean(rows)
        return out

    @cached_property
    def _passage_runs(self) -> tuple[tuple[str, ...], np.ndarray | None, np.ndarray]:
        """(passage ids by first row, the permutation making each one's rows a run or None, run starts)."""
        import numpy as np

        first = list(self._rows_of)  # insertion order: order of each passage's first row
        rank = {pid: i for i, pid in enumerate(first)}
        group = np.asarray([rank[pid] for pid in self.passage_ids], dtype=np.intp)
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group, minlength=len(first)) if len(group) else np.zeros(0, dtype=np.intp)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp) if len(first) else counts
        identity = bool((order == np.arange(len(order))).all())
        return tuple(first), None if identity else order, starts

    def best_by_passage(self, values: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
        """Each passage's highest row value: (passage ids in order of their first row, ``(n_passages,)`` maxima).

        ``values`` is ``(n_rows,)``, one per row (e.g. cosine similarities to a question).
        Vectorised (one ``maximum.reduceat``).
        """
        import numpy as np

        ids, order, starts = self._passage_runs
        if not ids:
            return ids, np.zeros(0, dtype=values.dtype)
        return ids, np.maximum.reduceat(values if order is None else values[order], starts)
