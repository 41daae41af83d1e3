"""The essay corpus: sections, paragraphs, sentences, footnote markers and references.

The corpus is one Markdown file (``corpus/essay.md``): a ``#`` title line, the author line,
``##`` section headings, one paragraph per block, and a ``## References`` section whose
entries start with ``(n)``. Every span this module returns is a pair of character offsets
into that file's text, so any quote can be checked with ``text[start:end]``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from assistant.config import REPO_ROOT
from assistant.errors import CorpusError
from assistant.patterns import FOOTNOTE, MONTH_NAMES
from assistant.types import Span

FRONT_MATTER = "Title"
INTRODUCTION = "Introduction"
REFERENCES = "References"

_HEADING = re.compile(r"^(#{1,2}) (.+)$")
_URL = re.compile(r"https?://[^\s,;)]+")
_QUOTED_TITLE = re.compile(r"“(.+?),?”")
_LANGUAGE = re.compile(r"\[in ([A-Z][a-z]+)\]")
_MONTH = rf"\b(?:{MONTH_NAMES})"
_DATE = re.compile(_MONTH + r"(?: \d{1,2},)? \d{4}\b")
_DATE_PART = re.compile(_MONTH + r"(?: \d{1,2})?$|^\d{4}$")
_DOC_TYPES = {"press release", "fact sheet", "news release", "speech"}
_TABLE_MENTION = re.compile(r"\b(Table|Figure) (\d+)\b")
# Footnote markers, as the essay writes them. Mostly a run of "(n)" right after sentence punctuation
# and an optional closing quote, ending the sentence: "…foreign policy. (1) What…", "…“in competition.”
# (2) They…", "…wastewater. (23)" (a glued "semiconductors.(9)" too); what follows is the end of the
# text or anything but a lower-case word. Twice, a single "(n)" directly after the noun it sources,
# inside a sentence: "between the three countries (7) in January 2023", "in China (22) and the".
# A list's "(1) security and (2) growth" fits neither: its numbers open the text or follow a function word.
_END_FOOTNOTES = re.compile(r"[.?!…][”’\"]?((?:\s*\(\d{1,2}\))++)(?!\s*[a-z])")
_INNER_FOOTNOTE = re.compile(r"(?<=[^\W\d_]) \((\d{1,2})\)(?=\s+[a-z])")
_MARKER = re.compile(r"\((\d{1,2})\)")
_LIST_WORDS = frozenset(
    "a an and are as at be been both by either for from in include includes including into is namely "
    "nor of on or plus than the then to was were with".split()
)
_LETTER = re.compile(r"[^\W\d_]")
# nupunkt splits after an abbreviation that follows an opening curly quote ("“U.S. national"), but
# not after a straight one; it reads a copy with these mapped one-for-one, so offsets are unchanged.
_STRAIGHTEN = str.maketrans({"“": '"', "‘": "'"})


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of the essay body.

    Attributes:
        number: Position among the corpus's paragraphs: 0 is the title and byline, the body
            starts at 1 (references excluded).
        section: Heading of the section it belongs to (``"Title"`` for paragraph 0,
            ``"Introduction"`` before the first heading).
        start, end: Character offsets into the corpus text.
        sentences: Sentence spans, in order, covering the paragraph's text.
        footnotes: Reference numbers cited in the paragraph, in order of first appearance.

    """

    number: int
    section: str
    start: int
    end: int
    sentences: tuple[Span, ...]
    footnotes: tuple[int, ...]


@dataclass(frozen=True)
class Reference:
    """One numbered entry of the essay's reference list. Fields the entry lacks are ``None``."""

    number: int
    text: str
    start: int
    end: int
    authors: str | None = None
    title: str | None = None
    outlet: str | None = None
    date: str | None = None
    url: str | None = None
    language: str | None = None

    @property
    def label(self) -> str:
        """A one-line label: ``(n) title — outlet, date``."""
        parts = [p for p in (self.outlet, self.date) if p]
        tail = f" — {', '.join(parts)}" if parts else ""
        return f"({self.number}) {self.title or self.text}{tail}"


@dataclass(frozen=True)
class Corpus:
    """The parsed essay.

    Attributes:
        path: The Markdown file parsed.
        text: Its full text; every offset in this object indexes into it.
        title, author_line: The ``#`` title and the line after it.
        paragraphs: Body paragraphs (sections other than References), in order.
        references: Reference entries keyed by number (1..26 for this essay).
        missing_artifacts: Tables/figures the text mentions (e.g. ``"Table 1"``) that are not in it.

    """

    path: Path
    text: str
    title: str
    author_line: str
    paragraphs: tuple[Paragraph, ...]
    references: dict[int, Reference]
    missing_artifacts: tuple[str, ...] = field(default=())

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the corpus text (UTF-8)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @cached_property
    def display_path(self) -> str:
        """The corpus path as shown in citations: relative to the repo when inside it."""
        path = self.path.resolve()
        return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)

    @property
    def sections(self) -> list[str]:
        """Section names in order of appearance (References last)."""
        names = list(dict.fromkeys(p.section for p in self.paragraphs))
        return names + [REFERENCES]

    def cited_numbers(self) -> set[int]:
        """Reference numbers cited somewhere in the body."""
        return {n for p in self.paragraphs for n in p.footnotes}


@cache
def _sentence_model():
    """The pre-trained Punkt model that ships in the nupunkt wheel, loaded on first use, then kept."""
    import nupunkt  # here, not at the top: importing this module stays light

    return nupunkt.load_default_model()


def _footnote_runs(text: str) -> list[tuple[int, int]]:
    """The ``[start, end)`` of each run of footnote markers that ends a sentence (see ``_END_FOOTNOTES``)."""
    return [match.span(1) for match in _END_FOOTNOTES.finditer(text)]


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Split ``text`` into sentence spans (offsets shifted by ``offset``).

    The boundaries are nupunkt's (its Punkt model knows abbreviations: "e.g.", "Dr.", "Jan. 2023",
    "U.S.", "No. 5" and initials do not end a sentence), adjusted to the essay:

    - A run of footnote markers such as ``(9)`` after sentence punctuation stays with the sentence
      it ends, also at the end of the text; a boundary inside any other marker moves before it.
    - Every span holds a letter (when the text has one): a piece that is only markers, punctuation
      or whitespace joins the sentence before it (the one after it when it opens the text).
    - Leading/trailing whitespace is excluded from each span; the spans are disjoint, in order, and
      together cover every non-space character of ``text``.
    """
    if not text.strip():
        return []
    runs = _footnote_runs(text)
    markers = [m.span() for m in _MARKER.finditer(text)]
    cuts = set()
    for start, _ in _sentence_model().span_tokenize(text.translate(_STRAIGHTEN)):
        while start < len(text) and text[start].isspace():
            start += 1
        for run_start, run_end in runs:
            if run_start <= start < run_end:
                start = run_end  # the markers end the sentence before this boundary
                break
        else:
            start = next((m_start for m_start, m_end in markers if m_start < start < m_end), start)
        if 0 < start < len(text):
            cuts.add(start)
    bounds = [0, *sorted(cuts), len(text)]
    merged: list[list[int]] = []
    for piece in ([s, e] for s, e in zip(bounds, bounds[1:], strict=False) if text[s:e].strip()):
        if merged and not _LETTER.search(text[piece[0] : piece[1]]):
            merged[-1][1] = piece[1]  # a marker or stray punctuation belongs to the sentence before
        elif merged and not _LETTER.search(text[merged[-1][0] : merged[-1][1]]):
            merged[-1][1] = piece[1]  # the text opened with one: it joins the first sentence
        else:
            merged.append(piece)
    out = []
    for s, e in merged:
        chunk = text[s:e]
        s += len(chunk) - len(chunk.lstrip())
        e -= len(chunk) - len(chunk.rstrip())
        out.append(Span(s + offset, e + offset))
    return out


def footnotes_in(text: str) -> list[int]:
    """Footnote numbers in ``text``, in order of first appearance.

    Only a ``(n)`` written the way the essay writes its footnotes counts: in a run right after
    sentence punctuation (and an optional closing quote) that ends a sentence, or directly after a
    content word inside one ("the three countries (7) in January"). Enumerations such as
    "(1) security and (2) growth" are not footnotes.
    """
    found: list[tuple[int, int]] = []
    for run_start, run_end in _footnote_runs(text):
        found += [(m.start(), int(m.group(1))) for m in _MARKER.finditer(text, run_start, run_end)]
    for match in _INNER_FOOTNOTE.finditer(text):
        word = re.search(r"[^\W\d_]+$", text[: match.start()])
        if word and word.group(0).lower() not in _LIST_WORDS:
            found.append((match.start(), int(match.group(1))))
    return list(dict.fromkeys(number for _, number in sorted(found)))


def parse_reference(number: int, text: str, start: int) -> Reference:
    """Parse one reference entry (without its ``(n)`` prefix) into a :class:`Reference`.

    Fields are found by pattern: the first URL, the first “quoted” title (else the second
    comma-separated part), the last ``Month D, YYYY`` date, an ``[in Language]`` note, the
    authors before the title, and the outlet as the first part after the title that is not
    a document type. A field that is not found is ``None``; this never raises.
    """
    url_match = _URL.search(text)
    url = url_match.group(0).rstrip(".") if url_match else None
    language = (m := _LANGUAGE.search(text)) and m.group(1)
    dates = _DATE.findall(text)
    date = dates[-1] if dates else None
    head = text[: url_match.start()] if url_match else text
    title_match = _QUOTED_TITLE.search(head)
    if title_match:
        title = title_match.group(1).rstrip(",")
        authors = head[: title_match.start()].strip(" ,") or None
        rest = head[title_match.end() :]
    else:
        parts = [p.strip() for p in head.split(",")]
        authors = parts[0] or None
        title = _LANGUAGE.sub("", parts[1]).strip() if len(parts) > 1 else None
        rest = ",".join(parts[2:])
    outlet = None
    for part in re.split(r"[,(;]", _LANGUAGE.sub("", rest)):
        part = part.strip(" .)")
        if part and part.lower() not in _DOC_TYPES and not _DATE_PART.search(part):
            outlet = part.removesuffix(" (blog)").strip()
            break
    return Reference(
        number=number,
        text=text,
        start=start,
        end=start + len(text),
        authors=authors,
        title=title,
        outlet=outlet,
        date=date,
        url=url,
        language=language,
    )


def parse_corpus(text: str, path: Path) -> Corpus:
    """Parse the corpus Markdown ``text`` read from ``path``.

    Raises:
        CorpusError: If the text has no ``#`` title line.

    """
    blocks: list[tuple[int, int]] = []
    for match in re.finditer(r"[^\n]+(?:\n[^\n]+)*", text):
        blocks.append((match.start(), match.end()))
    if not blocks or not text.startswith("# "):
        raise CorpusError(f"{path} does not start with a '# Title' line; is it the essay corpus?")
    title = text[2 : blocks[0][1]].strip()
    author_line = text[blocks[1][0] : blocks[1][1]].strip() if len(blocks) > 1 else ""
    # The title (after "# ") and the byline form paragraph 0, so "who wrote it?" can be cited.
    front_start = 2
    front_end = blocks[1][1] if len(blocks) > 1 else blocks[0][1]
    paragraphs = [
        Paragraph(
            number=0,
            section=FRONT_MATTER,
            start=front_start,
            end=front_end,
            sentences=(Span(front_start, blocks[0][1]),) + ((Span(*blocks[1]),) if len(blocks) > 1 else ()),
            footnotes=(),
        )
    ]
    section, references = INTRODUCTION, {}
    for start, end in blocks[2:]:
        block = text[start:end]
        if heading := _HEADING.match(block):
            section = heading.group(2).strip()
            continue
        if section == REFERENCES:
            if m := re.match(FOOTNOTE.pattern + r"\s*", block):  # "(n) " opens entry n
                number = int(m.group(1))
                references[number] = parse_reference(number, block[m.end() :], start + m.end())
            continue
        paragraphs.append(
            Paragraph(
                number=len(paragraphs),
                section=section,
                start=start,
                end=end,
                sentences=tuple(split_sentences(block, start)),
                footnotes=tuple(footnotes_in(block)),
            )
        )
    # A Markdown table ("| a | b |") or image ("![..](..)") would hold the artifact itself.
    has_artifacts = re.search(r"^\||!\[", text, flags=re.MULTILINE)
    mentioned = () if has_artifacts else dict.fromkeys(m[0] for m in _TABLE_MENTION.finditer(text))
    return Corpus(
        path=path,
        text=text,
        title=title,
        author_line=author_line,
        paragraphs=tuple(paragraphs),
        references=references,
        missing_artifacts=tuple(mentioned),
    )


def load_corpus(path: Path) -> Corpus:
    """Read and parse the corpus file at ``path``.

    Raises:
        CorpusError: If the file is missing or unreadable, with how to fix it.

    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(
            f"corpus file not found: {path}. Set ASSISTANT_CORPUS_DIR (or --corpus-dir) "
            "to the folder holding essay.md, or restore corpus/essay.md from git."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read corpus file {path}: {exc}") from exc
    return parse_corpus(text.replace("\u00a0", " "), path)
