"""An overview of the essay for a first screen: title, author, section outline, suggested questions.

Everything is derived from the parsed corpus's structure, deterministically (the same corpus
always gives the same overview), and costs a few milliseconds, so it is computed when the UI
is created rather than stored in the index.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from assistant.corpus import FRONT_MATTER, INTRODUCTION, REFERENCES, Corpus
from assistant.patterns import MONTHS

# A run of capitalised words that does not open a sentence: "Huawei", "United States".
_PROPER = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{2,}(?: [A-Z][a-z]+)*\b")
# Demonyms and similar adjectives ("Japanese", "American", "Chinese") make poor question topics.
_DEMONYM = re.compile(r"(?:ese|ean|ian|can|ish|ic)$")


@dataclass(frozen=True)
class SectionInfo:
    """One section of the essay body: its heading and how many paragraphs it has."""

    name: str
    paragraphs: int


@dataclass(frozen=True)
class Overview:
    """What the first screen shows.

    Attributes:
        title: The essay's title (its ``#`` line).
        author: The byline (the line after the title).
        sections: The body sections in order (the title block and References excluded).
        references: How many numbered references the essay has.
        suggestions: A few questions the essay answers, in display order.

    """

    title: str
    author: str
    sections: tuple[SectionInfo, ...]
    references: int
    suggestions: tuple[str, ...]


def _topic(heading: str, corpus: Corpus) -> str:
    """A section heading as a phrase inside a sentence.

    The part after a colon if any ("Cooperating and Hedging: Japan’s Strategy" → "Japan’s
    strategy"); a word keeps its capital only if the essay never writes it in lower case.
    """
    tail = heading.split(":", 1)[-1].strip()
    lowered = corpus.text.lower()
    out = []
    for i, word in enumerate(tail.split()):
        plain = word.lower()
        common = re.search(rf"(?<![\w.]){re.escape(plain)}\b", corpus.text) is not None
        keep = not common or (i == 0 and "." in word)  # "U.S." stays as written
        out.append(word if keep and plain in lowered else plain)
    return " ".join(out)


def _frequent_name(corpus: Corpus) -> str | None:
    """The proper noun the body mentions most often that is not in the title.

    Only one-word names qualify ("the United States" would need an article). Months, demonyms
    ("Japanese") and words the essay also writes in lower case are skipped.
    """
    title_words = {w.lower() for w in re.findall(r"[A-Za-z]+", corpus.title)}
    counts: Counter[str] = Counter()
    for paragraph in corpus.paragraphs:
        if paragraph.section == FRONT_MATTER:
            continue
        counts.update(_PROPER.findall(corpus.text[paragraph.start : paragraph.end]))
    for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        plain = name.lower()
        if " " in name or plain in title_words or plain in MONTHS or _DEMONYM.search(plain):
            continue
        if re.search(rf"\b{re.escape(plain)}\b", corpus.text):
            continue  # also an ordinary word ("Department" / "department")
        return name
    return None


def build_overview(corpus: Corpus, max_suggestions: int = 4) -> Overview:
    """Compute the overview of ``corpus``.

    Suggestions, in order: the essay's main argument; what it says about the proper noun the
    body mentions most (outside the title); what it says about the first body section after
    the introduction; who wrote it (when it has a byline). At most ``max_suggestions``.
    """
    body = [s for s in corpus.sections if s not in (FRONT_MATTER, REFERENCES)]
    sections = tuple(SectionInfo(s, sum(1 for p in corpus.paragraphs if p.section == s)) for s in body)
    suggestions = ["What is the main argument of the essay?"]
    if name := _frequent_name(corpus):
        suggestions.append(f"What does the essay say about {name}?")
    topical = [s for s in body if s != INTRODUCTION and "author" not in s.lower() and "note" not in s.lower()]
    if topical:
        suggestions.append(f"What does the essay say about {_topic(topical[0], corpus)}?")
    if corpus.author_line:
        suggestions.append("Who wrote the essay?")
    return Overview(
        title=corpus.title,
        author=corpus.author_line,
        sections=sections,
        references=len(corpus.references),
        suggestions=tuple(dict.fromkeys(suggestions))[:max_suggestions],
    )
