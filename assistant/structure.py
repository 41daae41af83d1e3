"""Questions about the document itself, answered from the corpus's parsed structure.

"How many references does the essay have?", "What are the sections of the essay?", "Which
sources are in Japanese?", "Which references are never cited in the text?" are not answered
by any one sentence: the answer is the structure (the numbered entries, the headings, the
"[in Japanese]" marks, the footnote markers). The assistant states what the structure shows in
one lead line and quotes the entries or sections' opening sentences it refers to, each cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.corpus import FRONT_MATTER, INTRODUCTION, Corpus
from assistant.types import Offsets, StructureQuestion

_REFERENCE_WORDS = r"(?:references?|sources?|citations?|footnotes?|endnotes?|works cited|entries|bibliography|ones)"
_COUNT = re.compile(rf"\b(?:how many (?:\w+ ){{0,2}}?|(?:the )?number of (?:\w+ )?){_REFERENCE_WORDS}\b", re.I)
_DOCUMENT = r"(?:the |this |its )?(?:essay|article|piece|paper|text)"
_SECTIONS = re.compile(
    rf"\b(?:sections|headings|parts|chapters) (?:of|in|does|do|has) {_DOCUMENT}\b|"
    rf"\b{_DOCUMENT}(?:[’']s)? (?:sections|headings|parts|chapters)\b|"
    r"\bhow many (?:sections|headings|parts|chapters)\b|\b(?:list|name) (?:the|its|all) (?:sections|headings)\b|"
    rf"\bhow is {_DOCUMENT} (?:organi[sz]ed|structured|laid out)\b|\b(?:outline|structure) of {_DOCUMENT}\b|"
    # A question about the sections that names nothing else: "what are the section headings", "sections?".
    r"^\W*(?:(?:what|which|list|name|show|give)(?: me)? )?(?:(?:are|r|is) )?(?:(?:the|its|all) )?"
    r"(?:section )?(?:sections|headings|chapters)(?: (?:are there|does it have|in it|of it))?\W*$",
    re.I,
)
_LANGUAGE = re.compile(r"\b(?:in|written in|language)\s+(?P<language>[A-Z][a-z]+|[a-z]+)\b")
_UNCITED = re.compile(r"\b(?:never|not|n[’']t|un)[\s-]*(?:cited|referenced|mentioned|used)\b", re.I)
_REFERENCE_ASKED = re.compile(rf"\b{_REFERENCE_WORDS}\b", re.I)


@dataclass(frozen=True)
class StructureAnswer:
    """What the structure shows: a lead line and the corpus spans to quote after it, in order."""

    lead: str
    spans: tuple[Offsets, ...]


def _language(question: str, corpus: Corpus, aliases: dict[str, str]) -> str | None:
    """The language of references the question names ("Chinese", or "China" as the lexicon wrote it)."""
    languages = {r.language.lower() for r in corpus.references.values() if r.language} | {"english"}
    for match in _LANGUAGE.finditer(question):
        word = match.group("language")
        if word.lower() in languages:
            return word.lower()
        named = {lang for lang in languages if aliases.get(lang.title()) == word}
        if named:
            return named.pop()
    return None


def classify(question: str, corpus: Corpus, aliases: dict[str, str] | None = None) -> StructureQuestion | None:
    """Which question about the document's structure ``question`` is, if any.

    Args:
        question: The question (as read with the corpus lexicon: "Chinese" may read "China").
        corpus: The parsed corpus.
        aliases: The lexicon's aliases (:attr:`assistant.lexicon.Lexicon.aliases`).

    """
    if _COUNT.search(question):
        return "reference_count"
    if _SECTIONS.search(question) and not re.search(r"\bsummar", question, re.I):
        return "sections"
    if _REFERENCE_ASKED.search(question):
        if _UNCITED.search(question):
            return "uncited"
        if _language(question, corpus, aliases or {}):
            return "language"
    return None


def answer(question: str, corpus: Corpus, aliases: dict[str, str] | None = None) -> StructureAnswer | None:
    """The structure's answer to ``question``, or None when it is not about the structure (see :func:`classify`)."""
    kind = classify(question, corpus, aliases)
    references = corpus.references
    if kind == "reference_count" and references:
        last = references[max(references)]
        first, count = min(references), len(references)
        lead = (
            f"The essay lists one numbered reference ({first}):"
            if count == 1
            else f"The essay lists {count} numbered references ({first}–{max(references)}); the last:"
        )
        return StructureAnswer(lead, ((last.start, last.end),))
    if kind == "sections":
        # The argument's sections cite sources; the back matter (author, series note, references) does not.
        cited = {p.section for p in corpus.paragraphs if p.footnotes}
        body = [s for s in corpus.sections if s in cited and s not in (FRONT_MATTER, INTRODUCTION)]
        back = [s for s in corpus.sections if s not in cited and s != FRONT_MATTER]
        opening = {}
        for paragraph in corpus.paragraphs:
            if paragraph.section in body and paragraph.section not in opening and paragraph.sentences:
                opening[paragraph.section] = paragraph.sentences[0]
        intro = "After an untitled introduction, the" if INTRODUCTION in cited else "The"
        lead = (
            f"{intro} essay has {len(body)} headed sections: {_listed(body)}, followed by {_listed(back)}. "
            "The sections open:"
        )
        return StructureAnswer(lead, tuple((span.start, span.end) for span in opening.values()))
    if kind == "language":
        language = _language(question, corpus, aliases or {}) or "english"
        found = [r for r in references.values() if (r.language or "english").lower() == language]
        if not found:
            return StructureAnswer(f"None of the {len(references)} references is marked as {language.title()}.", ())
        numbers = ", ".join(str(r.number) for r in found)
        marked = f"marked “[in {language.title()}]”" if language != "english" else "not marked as in another language"
        lead = f"{len(found)} of the {len(references)} references are {marked}: {numbers}."
        return StructureAnswer(lead, tuple((r.start, r.end) for r in found))
    if kind == "uncited":
        cited = corpus.cited_numbers()
        never = [r for n, r in sorted(references.items()) if n not in cited]
        if not never:
            return StructureAnswer(f"Every one of the {len(references)} references is cited in the essay’s text.", ())
        numbers = ", ".join(str(r.number) for r in never)
        lead = (
            f"{len(never)} of the {len(references)} references are never cited by a footnote in the essay’s text: "
            f"{numbers}."
        )
        return StructureAnswer(lead, tuple((r.start, r.end) for r in never))
    return None


def _listed(names: list[str]) -> str:
    """“A”, “B” and “C”."""
    quoted = [f"“{n}”" for n in names]
    return " and ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1 else "".join(quoted)
