"""Citation checking: every generated sentence must be supported by the passages it cites.

For each sentence the LLM wrote:

1. its ``[n]`` markers are resolved against the passages it was given (1..k); markers that do
   not resolve are removed (and recorded). A sentence with no resolving marker is dropped: an
   uncited claim never reaches the user;
2. the sentence is decomposed into **claims** (:func:`split_claims`: clauses joined by "; ",
   ", and", ", but", ", while", "because", "due to", …), so that a wrong clause cannot hide in a
   well-supported sentence;
3. each claim needs a **support unit**: one sentence of the cited passages, or two of them
   together (a pair, for claims that merge two sentences). A unit can support a claim only if
   it passes the **agreement checks**: every number of the claim (digits or words, read with
   ``number-parser``), month, entity (names, organisations, countries through the corpus
   lexicon: "Tokyo", "Japanese" -> Japan), negation ("not", "refused", "no", … in the unit's
   clause that matches the claim best), universal quantifier ("all", "entirely", "always", …) and
   the order of the actors (who did what to whom, unless one side is passive) must agree;
4. then the support score of the unit for the claim,
   ``0.5 * max(0, cosine) + 0.5 * coverage`` (cosine: local embeddings of the claim and the
   unit's closest sentence; coverage: IDF-weighted share of the claim's content terms found in
   the unit), less :data:`PAIR_PENALTY` for a pair, must reach ``Settings.support_threshold``;
5. a sentence is kept when every claim is supported (and, when ``llm_second_opinion`` is on,
   the LLM does not say that the supporting sentences fail to support it: it can only reject);
   each unit sentence it used becomes a citation of that passage sentence, quoted verbatim with
   its corpus offsets, so every final citation is as checkable as an extractive one.

Where the numbers come from: ``support_threshold`` and :data:`PAIR_PENALTY` were chosen by
``python -m assistant.faithfulness calibrate`` on ``tests/data/faithfulness_tune.jsonl`` (the
most correct sentences kept while at most 2.5 % of wrong ones are: 0.42 and 0); :data:`SIMILARITY_WEIGHT` is
the equal weighting of the first checker (not tuned); the agreement checks have no thresholds.

Each agreement mechanism added after the first calibration can be switched off (:data:`MECHANISMS`);
``python -m assistant.faithfulness ablate`` reports the figures without each. See docs/llm.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import combinations
from typing import TYPE_CHECKING, Any

from assistant.config import Settings
from assistant.corpus import footnotes_in
from assistant.patterns import DISCOURSE_OPENER, MONTHS
from assistant.text import STOPWORDS, stem
from assistant.types import Citation, Passage, ReferenceInfo, Span

if TYPE_CHECKING:
    from assistant.embeddings import Embedder
    from assistant.reranking import SentenceReranker

SIMILARITY_WEIGHT = 0.5  # support = 0.5 * cosine + 0.5 * coverage (equal weights; not tuned)
SCORE_FLOOR = 0.3  # units scoring below this are never checked (0.3 is the lowest threshold calibration sweeps)
PAIR_PENALTY = 0.0  # a claim supported by two sentences together needs this much more (calibrated on tune: none)
_MONTHS = frozenset(MONTHS)  # assistant.patterns.MONTHS as a set (membership tests)

# --- reading a sentence ------------------------------------------------------------------------

# Clause boundaries: a claim ends before these (the connective stays with the clause it opens).
_CLAUSE_BREAK = re.compile(
    r"\s*;\s*|,\s+(?=(?:and|but|while|whereas|although|though|yet|so|thus|which|who|whereby)\s)|"
    r"\s+(?=(?:because|due to|as a result of|in order to|so that|leading to|which led)\s)"
)
# A leading subordinate clause ("Because …, ", "Following …, ", "To …, ") is a claim of its own.
_LEADING_CLAUSE = re.compile(
    r"^((?:Because|Since|As|After|Before|Following|Under|Amid|Despite|Although|Though|While|To|Having|Due to|"
    r"Even if|If|Unless|Whether|Without|"
    r"In (?:exchange|return|response|retaliation|order)|Thanks to|Out of|Fearing|Seeking|Hoping|Wary)"
    r"\b[^,]{8,}?),\s+(?=\S)"
)
# With PARTICIPLES, any leading participle phrase or phrase of motive ("Worried about …, ", "Citing …, ",
# "In a bid to …, ", "Eager to …, ") is one too: a cause or motive the essay does not give cannot hide
# in a well-supported sentence.
_LEADING_MOTIVE = re.compile(
    r"^((?:(?!United\b)[A-Z][a-z]{2,}(?:ing|ed)|With|Given|Owing to|In light of|As part of|"
    r"In (?:a bid|an effort|an attempt|the wake|the face)|Eager|Keen|Anxious|Determined|Reluctant|Unwilling)"
    r"\b[^,]{8,}?),\s+(?=\S)"
)
# An aside between commas that describes a name ("Nishimura, a longtime member of …, said").
_APPOSITION = re.compile(r"(?<=[A-Za-z]),\s+((?:a|an|home to|long|then|once|now|who|which)\s[^,]{6,}?),(?=\s)")
# With PARTICIPLES, an aside opened by a participle (", fearing retaliation,") is one too.
_PARTICIPLE_ASIDE = re.compile(r"(?<=[A-Za-z]),\s+((?:[a-z]{3,}(?:ing|ed)|eager|keen|wary|anxious)\s[^,]{6,}?),(?=\s)")
PARTICIPLES = True  # mechanism switch (ablation): participle and motive phrases are claims of their own
# With TRAILING, a phrase of cause, motive or occasion at the end of a sentence is a claim of its own too
# ("… by Huawei after a cyberattack", "…, citing espionage concerns", "… under pressure from Washington",
# "…, a move driven by …"): the mirror of the leading ones, where a cause the essay does not give hid in
# a well-supported sentence. The cue stays with the phrase it opens.
# Cues that open a phrase of cause or motive however short ("citing security", "under U.S. pressure").
_CAUSE_CUES = (
    r"citing|out of (?:concern|fear|worry|frustration|anger|spite|caution|deference|respect)|under pressure|"
    r"for fear of|in (?:response|reaction) to|in retaliation|so as to|"
    r"at the (?:request|urging|behest|insistence) of|because|due to|owing to|thanks to|in light of|"
    r"(?:prompted|driven|spurred|motivated|pushed|pressured|encouraged) by|in (?:a bid|an effort|an attempt) to|"
    r"with the (?:aim|goal|intention) of|on the grounds that|in exchange for|in return for|for (?:\w+ ){0,3}reasons"
)
_TRAILING_MOTIVE = re.compile(
    rf"\s+(?=(?:after|amid|{_CAUSE_CUES})\b)|"
    r",\s+(?=(?:since|as|fearing|hoping|seeking|wanting|worried|concerned|eager|keen|anxious)\s|"
    r"(?:a|an|the) (?:move|step|decision|measure|response|reaction|bid|effort)\b)"
)
# A piece opened by one of these is a claim even when short (others under MIN_CLAIM_TERMS stay joined).
_CAUSE_OPENING = re.compile(rf"^(?:{_CAUSE_CUES}|fearing|hoping|seeking|wanting|worried|concerned)\b", re.I)
TRAILING = True  # mechanism switch (ablation): a trailing phrase of cause, motive or occasion is a claim of its own
_CONDITION = re.compile(r"^((?:If|When|Although|Though|While|Because|As|Since|Unless|Whether)\b[^,]{5,}?),\s+", re.I)
# Framing that attributes the sentence to the essay: not part of the claim.
_FRAMING = re.compile(
    r"^(?:according to (?:the|this) (?:essay|author|article|piece)|(?:the|this) (?:essay|author|article|piece|writer)"
    r"(?: also)? (?:says|said|argues|notes|writes|suggests|contends|observes|points out|explains|states|warns|"
    r"maintains|claims|stresses|urges|advises|recommends|believes|describes|presents|holds|reports|recalls)"
    r"(?: that)?)[,:]?\s+",
    re.I,
)
# A reply to the question before the claim ("No — …", "Not quite: …", "False premise: …"): it answers
# the question's yes/no or premise, states nothing about the passage, and its "no" negates no claim.
_ANSWER_PARTICLE = re.compile(
    r"^(?:yes|no|not quite|not exactly|not really|correct|incorrect|false premise)\s*(?:[—–:;,]|-{1,2})\s*(?=\S)", re.I
)
_BACK_REFERENCE = re.compile(r"\b(?:the two|both) (?:countries|nations|allies|sides|governments|powers)\b", re.I)
SPLIT_COMMAS = False  # every comma-separated phrase with enough content is a claim (appositions, asides)
MIN_CLAIM_TERMS = 3  # a clause with fewer content terms stays with the one before it

_NEGATION = frozenset(
    stem(w)
    for w in """not no never neither nor none nothing without refuse refused refuses refusing decline declined
    declining reject rejected rejecting fail failed fails failing lack lacked lacking missing absent deny denied
    denies avoid avoided avoids cannot unwilling mistake mistaken""".split()
) | {"n't"}
# Universal quantifiers, by what they generalise over: a claim's must be matched by one of the same
# kind in the passage ("every executive branch" by "all executive branches"), not by any.
_ABSENT = frozenset(stem(w) for w in "missing absent lacking".split())  # these negate what stands before them too
NEGATION_SCOPE = True  # mechanism switch (ablation): a passage's negation counts for the words it governs
_QUANTIFIER_KINDS = {
    "members": "all every each any entire whole universally",
    "degree": "entirely completely totally wholly fully full complete total",
    "time": "always invariably inevitably forever",
    "exclusive": "sole solely exclusively",
}
_QUANTIFIERS = {stem(w): kind for kind, words in _QUANTIFIER_KINDS.items() for w in words.split()}
_TOKEN = re.compile(r"[A-Za-z][\w’']*|\d[\d,.]*\d|\d|n[’']t")
_BREAK = re.compile(r"[,;:()“”\"—–]")
_TOKEN_OR_BREAK = re.compile(_TOKEN.pattern + "|" + _BREAK.pattern)
_DIGITS = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*(?:(?!st\b|nd\b|rd\b|th\b|s\b)[a-z]{1,3}\b)?")
_YEAR_WORDS = re.compile(
    r"\btwenty[- ](ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|"
    r"twenty(?:[- ]\w+)?)\b",
    re.I,
)
# Idioms with a negation word that negate nothing.
_NOT_NEGATION = re.compile(
    r"\b(?:not (?:to mention|only|just|least)|at all|no doubt|no less|not without|never fail\w*|not un(?=\w))\b", re.I
)
# A contrast denies one side to assert the other: not the negation of the claim, but it must agree too.
_CONTRAST_NOT = r"\bnot\b(?=[^.;]{1,80}?,?\s+but\b)"
_CONTRAST = re.compile(r"\brather than\b|\binstead of\b|" + _CONTRAST_NOT, re.I)
# Words that point back to something named earlier: only then do earlier sentences' names count.
_ANAPHOR = re.compile(
    r"\b(?:he|she|they|him|his|her|its|their|them|it|this|these|such|the latter|the former|both|the two|"
    r"each other|the (?:country|countries|company|government|nation|minister|administration|directive|move)s?)\b",
    re.I,
)
ABBREVIATIONS = True  # mechanism switch (ablation): an abbreviation is a name (the passage's words or initials)
# A run of capitalised words, with "of", "and", "the", "for", commas and hyphens inside it.
_NAME_RUN = re.compile(r"[A-Z][\w’']*(?:(?:,\s+|\s+|-)(?:(?:of|and|the|for)\s+)*[A-Z][\w’']*)*")
CLOSEST = True  # mechanism switch (ablation): when the best unit disagrees, only units sharing a sentence with it count
SUBSTITUTES = True  # mechanism switch (ablation): an earlier sentence's name cannot replace one the passage gives
NAME_PARTS = True  # mechanism switch (ablation): a person's given name also names them by family name
CONTEXT_SENTENCES = 6  # how many sentences back a passage sentence's "he"/"it" may point (not tuned)
ANAPHORA = True  # mechanism switch (ablation): earlier sentences' names count only for a sentence that refers back
_HEDGES = frozenset("reportedly allegedly apparently seemingly purportedly".split())  # as written ("report" is none)
# Degree hedges and possibility: a claim that drops the passage's ("largely framed" -> "framed", "may end
# up" -> "will end up") overgeneralises; any of them (or of :data:`_HEDGES`) in the claim keeps the hedge.
_DEGREE = re.compile(
    r"\b(?:largely|broadly|mostly|mainly|partly|partially|in practice|on the surface|nearly|almost|generally|"
    r"somewhat|fairly|relatively)\b"
    r"|\b(?:might|could|(?-i:may))\b",  # possibility: "may end up" is not "will end up" ("May" is a month)
    re.I,
)
HEDGE_DEGREE = True  # mechanism switch (ablation): degree hedges count as hedges
# The switchable mechanisms (module flags), for the ablation: name -> what it does.
MECHANISMS = {
    "ANAPHORA": "names of earlier sentences count only for a passage sentence that refers back",
    "ABBREVIATIONS": "an abbreviation the corpus uses is a name: the passage must give it or its initials",
    "SUBSTITUTES": "a name from another sentence cannot replace a name the best-matching cited sentence gives",
    "NAME_PARTS": "a person's given name also names them by family name (Ian = Wong)",
    "CONTRASTS": "a contrast ('rather than', 'not X but Y') agrees apart from negation",
    "QUANTIFIER_KINDS": "a quantifier is matched by one of its kind (every = all)",
    "HEDGE_DEGREE": "degree hedges ('largely', 'broadly', 'in practice') must be kept",
    "NEGATION_SCOPE": "a passage's negation disagrees only with a claim that has the words it governs",
    "CLOSEST": "when the best-matching sentence disagrees, no other sentence may stand in (only a pair with it)",
    "PARTICIPLES": "a leading or parenthetic participle or motive phrase ('Worried about …,') is a claim of its own",
    "TRAILING": "a trailing phrase of cause, motive or occasion ('… after a cyberattack') is a claim of its own",
}
CONTRASTS = True  # mechanism switch (ablation): a contrast agrees apart from negation
QUANTIFIER_KINDS = True  # mechanism switch (ablation): a quantifier is matched by one of its kind (else: the same word)
# Words whose swap reverses a claim ("before" the United States, where the essay says "after").
_OPPOSITES = (("before", "after"), ("after", "before"), ("earlier", "later"), ("later", "earlier"))
_POSSESSIVE = re.compile(r"(?:['’]s|s['’])$")
_ABBREVIATION = re.compile(r"^[A-Z][A-Z&]{0,4}s?$")
# "America" (and "US", "U.S.") reach the lexicon as "United States".
_EXTRA_ALIASES = {"America": "United States", "US": "United States", "USA": "United States", "Sino": "China"}
# Capitalised words that start a sentence without naming anything.
_OPENERS = STOPWORDS | frozenset(
    """although though however instead yet still rather therefore thus hence moreover indeed finally
        meanwhile later earlier today then both one two three according while despite since after before
        during following overall in on at by for as to its this these those their his her our""".split()
)

_NUMBER_WORD = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundred|thousand|million|billion|first|second|third|\w+th|half|quarter|dozen)\b",
    re.I,
)

try:  # number-parser reads "twenty-three", "two" and "a third" as digits

    @lru_cache(maxsize=8192)
    def _parse_numbers(text: str) -> str:
        from number_parser import parse

        return parse(text, language="en") if _NUMBER_WORD.search(text) else text

    import number_parser  # noqa: F401  (installed: use it)
except ImportError:  # pragma: no cover - the table below covers the essay's number words
    _WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()

    def _parse_numbers(text: str) -> str:
        text = re.sub(r"\btwenty[- ]three\b", "23", text, flags=re.I)
        return re.sub(r"\b(" + "|".join(_WORDS) + r")\b", lambda m: str(_WORDS.index(m.group(1).lower())), text)


@lru_cache(maxsize=4096)
def numbers_in(text: str) -> frozenset[str]:
    """Numbers of ``text`` as digits ("twenty-three" -> "23", "2,000" -> "2000"), months by name.

    A bare "one"/"first" (1) is not a claim about a number ("one of its allies") and is left out,
    unless it is written as the digit 1; nor is "the two countries" (a reference back).
    """
    digits = {m.group(0).replace(",", "").rstrip(".") for m in _DIGITS.finditer(text)}
    words = _BACK_REFERENCE.sub(" ", text)
    words = _YEAR_WORDS.sub(lambda m: f"20{_parse_numbers(m.group(1)).strip():0>2}", words)
    parsed = {m.group(0).replace(",", "").rstrip(".") for m in _DIGITS.finditer(_parse_numbers(words))}
    found = digits | (parsed - {"1"})
    found |= {w for w in re.findall(r"[a-z]+", text.lower()) if w in _MONTHS}
    return frozenset(found)


def _same_name(entity: tuple[str, ...], names: list[tuple[str, ...]]) -> bool:
    """Whether a name with "of" ("Department of State") is among ``names``, as "X of Y" or as "Y X"."""
    i = entity.index("of")
    head, rest = [w for w in entity[:i]], [w for w in entity[i + 1 :] if w != "of"]
    for name in names:
        flat = [w for w in name if w != "of"]
        if "of" in name:
            j = name.index("of")
            if set(head) <= set(name[:j]) and set(rest) <= set(name[j + 1 :]):
                return True
        elif rest and head and all(w in flat for w in head + rest) and flat.index(rest[0]) < flat.index(head[-1]):
            return True
    return False


def _named(word: str, words: frozenset[str]) -> bool:
    """Whether ``word`` (a stem) is among ``words``, also as a demonym of it ("asian" for "asia")."""
    return word in words or (len(word) > 4 and word.endswith("n") and word[:-1] in words)


def _number_context(text: str, numbers: frozenset[str], read: Any) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each number/month of ``text`` with the content terms of the four words either side of it."""
    if not numbers:
        return ()
    tokens = re.findall(r"[\w’'-]+", _parse_numbers(_YEAR_WORDS.sub(lambda m: "2000", text)))
    out = []
    for i, token in enumerate(tokens):
        key = token.lower() if token.lower() in _MONTHS else token.replace(",", "")
        if key in numbers:
            near = [t for t in tokens[max(0, i - 4) : i] + tokens[i + 1 : i + 5] if t.lower() not in numbers]
            out.append((key, frozenset(read(" ".join(near)))))
    return tuple(out)


def _content(text: str) -> int:
    return len([w for w in re.findall(r"[A-Za-z0-9]+", text) if w.lower() not in STOPWORDS])


def split_claims(text: str) -> list[str]:
    """The claims (clauses) of a sentence: split at clause connectives; short pieces stay joined.

    A reply to the question ("No — …") and framing that attributes the sentence to the essay
    ("The author argues that …") are dropped.
    """
    text = _ANSWER_PARTICLE.sub("", text.strip()) or text
    text = _FRAMING.sub("", text) or text
    asides = []
    for pattern in (_APPOSITION, _PARTICIPLE_ASIDE) if PARTICIPLES else (_APPOSITION,):
        found = pattern.findall(text)
        asides += found
        text = pattern.sub(" ", text) if found else text
    lead = _LEADING_CLAUSE.match(text) or (_LEADING_MOTIVE.match(text) if PARTICIPLES else None)
    pieces = [lead.group(1), text[lead.end() :]] if lead else [text]
    pieces = [p.strip(" ,;.") for piece in pieces for p in _CLAUSE_BREAK.split(piece) if p and p.strip(" ,;.")]
    if TRAILING:
        pieces = [p.strip(" ,;.") for piece in pieces for p in _TRAILING_MOTIVE.split(piece) if p.strip(" ,;.")]
    if SPLIT_COMMAS:
        pieces = [p for piece in pieces for p in re.split(r",\s+", piece) if p]
    claims: list[str] = []
    for piece in pieces:
        cause = TRAILING and _CAUSE_OPENING.match(piece) and _content(piece) >= 2
        if claims and _content(piece) < MIN_CLAIM_TERMS and not cause:
            claims[-1] = f"{claims[-1]} {piece}"
        else:
            claims.append(piece)
    if len(claims) > 1 and _content(claims[0]) < MIN_CLAIM_TERMS:
        claims[1] = f"{claims[0]} {claims[1]}"
        claims.pop(0)
    return (claims or [text]) + [a for a in asides if _content(a) >= MIN_CLAIM_TERMS]


@dataclass(frozen=True)
class Reading:
    """What the agreement checks compare in one text (a claim, or a corpus sentence or clause).

    Attributes:
        terms: Stemmed content terms (the reranker's reading, lexicon aliases applied).
        words: Stems of every word (stopwords too), aliases applied: where entities are looked up.
        numbers: Digits and month names (:func:`numbers_in`).
        entities: The capitalised names, each as the stems of its words, in order of appearance.
        negated: Whether it holds a negation cue (a contrast's "not" aside).
        contrast: Whether it sets one thing against another ("rather than", "instead of", "not X but Y").
        quantifiers: Its universal quantifiers, stemmed.
        hedges: Its hedging adverbs ("reportedly", "largely", …).
        abbreviations: Abbreviations the corpus uses ("IBM", "METI"), lower-cased.
        initials: Initials of its runs of capitalised words and of their parts ("Minister of Economy, Trade, and
            Industry Yasutoshi Nishimura" -> "meti", "yn", …).
        places: Countries it puts something "in" ("in Japan").
        number_context: Each number/month with the content terms within four words of it.
        negated_terms: Content terms of the five words after each negation cue (what it negates;
            :meth:`CitationChecker._negated_terms`).
        agents: Last words (stemmed) of the names after "by" (who did it, in a passive).

    """

    terms: frozenset[str]
    words: frozenset[str]
    numbers: frozenset[str]
    entities: tuple[tuple[str, ...], ...]
    negated: bool
    contrast: bool
    quantifiers: frozenset[str]
    hedges: frozenset[str]
    abbreviations: frozenset[str]
    initials: frozenset[str]
    places: frozenset[str]
    number_context: tuple[tuple[str, frozenset[str]], ...] = ()
    negated_terms: frozenset[str] = frozenset()
    agents: tuple[str, ...] = ()


# --- the verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Support:
    """How well one passage supports one generated sentence.

    Attributes:
        marker: The passage's number in the prompt (1..k).
        passage_id: The passage.
        score: Support, 0..1: the weakest claim's (0 when an agreement check fails for every unit).
        span: The passage sentence that supports it best (absolute corpus offsets).
        cosine: Embedding cosine similarity with that sentence, -1..1.
        coverage: IDF-weighted term coverage by that sentence, 0..1.
        missing_numbers: Numbers/months of the generated sentence that the passage lacks.
        problem: Why the best unit was rejected by an agreement check ("" when none failed).

    """

    marker: int
    passage_id: str
    score: float
    span: Span
    cosine: float
    coverage: float
    missing_numbers: tuple[str, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class ClaimCheck:
    """One claim's best support unit: its score, the sentences used and why a unit failed."""

    text: str
    score: float
    rows: tuple[int, ...]
    cosine: float
    coverage: float
    problem: str = ""


@dataclass
class SentenceCheck:
    """The verdict on one generated sentence.

    Attributes:
        text: The sentence without markers.
        markers: Passage numbers the LLM gave it.
        unresolved: Markers that name no given passage (removed).
        supports: One :class:`Support` per resolved marker.
        kept: Whether it reaches the final answer.
        reason: Why it was kept or dropped, in words.
        citation_numbers: Its final ``[n]`` numbers (empty when dropped).
        claims: The verdict on each of its claims.

    """

    text: str
    markers: tuple[int, ...]
    unresolved: tuple[int, ...]
    supports: list[Support]
    kept: bool
    reason: str
    citation_numbers: list[int] = field(default_factory=list)
    claims: list[ClaimCheck] = field(default_factory=list)

    @property
    def support(self) -> float:
        """Support of the sentence, 0..1: its weakest claim's best score (0 when none resolved)."""
        if self.claims:
            return min(c.score for c in self.claims)
        return max((s.score for s in self.supports), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "markers": list(self.markers),
            "unresolved_markers": list(self.unresolved),
            "support": round(self.support, 4),
            "kept": self.kept,
            "reason": self.reason,
            "citations": self.citation_numbers,
            "claims": [{"text": c.text, "support": round(c.score, 4), "problem": c.problem} for c in self.claims],
        }


@dataclass
class Verification:
    """The checked answer.

    Attributes:
        sentences: One check per generated sentence, in order.
        answer: The kept sentences, each followed by its renumbered ``[n]`` markers.
        citations: Final citations, ``n`` = 1..N in order of first use.
        citation_support: Support score of each final citation, by ``n``.
        threshold: The support threshold used.

    """

    sentences: list[SentenceCheck]
    answer: str
    citations: list[Citation]
    citation_support: dict[int, float]
    threshold: float

    @property
    def kept(self) -> list[SentenceCheck]:
        return [s for s in self.sentences if s.kept]

    def to_dict(self) -> dict[str, Any]:
        """The ``verified`` object of the JSON answer."""
        return {
            "threshold": self.threshold,
            "sentences_generated": len(self.sentences),
            "sentences_kept": len(self.kept),
            "sentences": [s.to_dict() for s in self.sentences],
            "citations": [
                {"n": n, "support": round(score, 4), "verified": True} for n, score in self.citation_support.items()
            ],
        }


class CitationChecker:
    """Checks generated sentences against the passages they cite (see the module docstring)."""

    def __init__(self, reranker: SentenceReranker, embedder: Embedder, settings: Settings) -> None:
        self.reranker = reranker  # its sentence terms, IDF and coverage are the lexical half of support
        self.index = reranker.index
        self.corpus = reranker.corpus
        self.embedder = embedder
        self.settings = settings
        self._rows: dict[int, tuple[Reading, list[Reading]]] = {}

    # --- reading ---------------------------------------------------------------------------

    @cached_property
    def _names(self) -> frozenset[str]:
        """Words the corpus capitalises inside a sentence, and the countries the lexicon knows."""
        found = set(re.findall(r"(?<=[a-z,;:] )([A-Z][\w’'-]*)", self.corpus.text))
        found |= {w for name in self.reranker.lexicon.aliases for w in name.split()}
        found |= {w for name in self.reranker.lexicon.aliases.values() for w in name.split()}
        return frozenset(found)

    @cached_property
    def _name_parts(self) -> dict[str, str]:
        """A person's given and family names, each to the other ("Ian" -> "Wong"), stemmed.

        From the essay's two-word names of which one word also stands alone as a name ("Ian Wong",
        "Ian is …"), when the corpus never writes either word beside another name (a title such as
        "Minister" is: "Minister Kishida", "Minister Yoko …"); no word of the lexicon's countries.
        """
        text = " ".join(p.text for p in self.index.passages.values() if p.kind == "essay")
        alone = Counter(re.findall(r"(?<![A-Z][\w’'-]) ([A-Z][a-z]+)\b(?! [A-Z])", text))
        beside: dict[str, set[str]] = {}
        for a, b in re.findall(r"(?=\b([A-Z][\w’'-]*) ([A-Z][\w’'-]*))", self.corpus.text):
            beside.setdefault(a, set()).add(b)
            beside.setdefault(b, set()).add(a)
        countries = {stem(w) for name in self.reranker.lexicon.aliases.values() for w in name.split()}
        parts: dict[str, str] = {}
        for first, last in re.findall(r"(?<![A-Z][\w’'-] )\b([A-Z][a-z]+) ([A-Z][a-z]+)\b(?! [A-Z])", text):
            pair = (stem(first), stem(last))
            only = beside[first] == {last} and beside[last] == {first}
            common = {first.lower(), last.lower()} & (_OPENERS | _MONTHS)
            if only and (alone[first] or alone[last]) and not common and not set(pair) & countries:
                parts.setdefault(pair[0], pair[1])
                parts.setdefault(pair[1], pair[0])
        return parts

    @cached_property
    def _corpus_words(self) -> frozenset[str]:
        return frozenset(re.findall(r"[a-z0-9]+", self.corpus.text.lower()))

    def _known_abbreviation(self, token: str) -> bool:
        """An abbreviation the corpus uses somewhere (even in a URL: "METI"), a plural one ("PCs") or a letter."""
        if not _ABBREVIATION.match(token):
            return False
        bare = token.lower().rstrip("s") if token[-1] == "s" and len(token) > 2 else token.lower()
        return len(bare) == 1 or "&" in token or bare in self._corpus_words or token[-1] == "s"

    @cached_property
    def _plural_aliases(self) -> re.Pattern[str] | None:
        """Plural demonyms ("Americans", "Americans'") of the lexicon's one-word aliases ("American")."""
        words = [a for a in self.reranker.lexicon.aliases if " " not in a and a.isalpha() and not a.endswith("s")]
        return re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")s\b['’]?") if words else None

    def _normalise(self, text: str) -> str:
        for alias, name in _EXTRA_ALIASES.items():
            text = re.sub(rf"\b{re.escape(alias)}\b(?!\.)", name, text)
        if self._plural_aliases is not None:
            text = self._plural_aliases.sub(lambda m: m.group(1), text)
        return self.reranker.lexicon.normalise(text)

    def read(self, text: str) -> Reading:
        """The :class:`Reading` of ``text`` (a claim, or a corpus sentence or clause)."""
        plain = _NOT_NEGATION.sub(" ", text)
        normal = self._normalise(plain)
        tokens = _TOKEN_OR_BREAK.findall(normal)
        aliases = self.reranker.term_aliases
        stems = [aliases.get(stem(t), stem(t)) for t in tokens]
        entities: list[tuple[str, ...]] = []
        abbreviations: list[str] = []
        joined = False  # whether the previous token was part of a name (consecutive capitals form one)
        for i, token in enumerate(tokens):
            if _BREAK.fullmatch(token):
                joined = False  # punctuation ends a name ("Nishimura, Japan's minister")
                continue
            word = token.lower().replace("’", "'").removesuffix("'s")
            known = self._known_abbreviation(token)
            if known and ABBREVIATIONS and len(token) > 1 and token.isalpha() and token.isupper():
                abbreviations.append(token.lower())  # checked against the passage's names' initials
            capital = token[0].isupper() and word not in _MONTHS and not known
            if capital and i == 0 and token not in self._names:
                capital = False  # a capitalised sentence opener that the corpus never uses as a name
            if capital and word in _OPENERS and not (joined and word in {"of", "and", "the", "for"}):
                capital = False
            if not capital:
                joined = joined and word in {"of", "for"} and i + 1 < len(tokens) and tokens[i + 1][0].isupper()
                if joined and entities:
                    entities[-1] = (*entities[-1], "of")
                continue
            if joined and entities:
                entities[-1] = (*entities[-1], stems[i])
            else:
                entities.append((stems[i],))
            joined = not _POSSESSIVE.search(token)  # an owner is a name of its own ("Japan's Minister of …")
        numbers = numbers_in(text)
        affirmed = _CONTRAST.sub(" ", plain) if CONTRASTS else plain  # a contrast's "not" negates nothing
        return Reading(
            number_context=_number_context(text, numbers, self.reranker.terms),
            negated_terms=self._negated_terms(affirmed),
            agents=tuple(
                aliases.get(stem(m.group(1)), stem(m.group(1)))
                for m in re.finditer(r"\bby (?:the )?(?:[A-Z][\w’'-]* )*([A-Z][\w’'-]*)", normal)
            ),
            terms=frozenset(self.reranker.terms(text)),
            words=frozenset(s for s, t in zip(stems, tokens, strict=True) if not _BREAK.fullmatch(t))
            | frozenset(t.lower() for t in tokens if not _BREAK.fullmatch(t)),
            numbers=numbers,
            entities=tuple(dict.fromkeys(entities)),
            negated=any(stem(t) in _NEGATION for t in _TOKEN.findall(affirmed))
            or bool(re.search(r"n[’']t\b", affirmed))
            or (not CONTRASTS and bool(_CONTRAST.search(plain))),
            contrast=bool(_CONTRAST.search(plain)),
            quantifiers=frozenset(s for s in stems if s in _QUANTIFIERS),
            hedges=frozenset(t.lower() for t in tokens if t.lower() in _HEDGES)
            | frozenset(m.group(0).lower() for m in _DEGREE.finditer(plain) if HEDGE_DEGREE),
            abbreviations=frozenset(abbreviations),
            initials=frozenset(
                run[i:j]
                for m in _NAME_RUN.finditer(normal)
                for run in ["".join(w[0] for w in re.findall(r"[A-Za-z]+", m.group(0)) if w[0].isupper()).lower()]
                for i in range(len(run))
                for j in range(i + 2, len(run) + 1)
            ),
            places=frozenset(
                stems[i + 1]
                for i in range(len(tokens) - 1)
                if tokens[i] == "in" and stems[i + 1] in self.reranker.countries and tokens[i + 1][0].isupper()
            ),
        )

    def _negated_terms(self, text: str) -> frozenset[str]:
        """Content terms of the five words after each negation cue of ``text`` (before it too for "missing")."""
        tokens = _TOKEN.findall(text)
        window = []
        for i, token in enumerate(tokens):
            cue = stem(token)
            if cue in _NEGATION or re.fullmatch(r"n[’']t|\w+n[’']t", token):
                window += tokens[i + 1 : i + 6] + (tokens[max(0, i - 5) : i] if cue in _ABSENT else [])
        return frozenset(self.reranker.terms(" ".join(window)))

    def _row(self, row: int) -> tuple[Reading, list[Reading]]:
        """Reading of corpus sentence ``row`` and of its clauses (cached: the corpus is fixed)."""
        if row not in self._rows:
            text = self.index.sentences.texts[row]
            # A contrast's "not" ("not by X, but of Y") negates nothing in the clause it is split from.
            unsplit = re.sub(_CONTRAST_NOT, "", text, flags=re.I) if CONTRASTS else text
            clauses = [c for c in re.split(r"\s*[;:—–]\s*|,?\s+(?=(?:while|whereas|but|yet)\b)", unsplit) if c]
            # A leading condition ("Indeed, if others do not …, China can …") is a clause of its own.
            clauses = [
                part for c in clauses for part in _CONDITION.split(DISCOURSE_OPENER.sub("", c), maxsplit=1) if part
            ]
            reading = self.read(text)
            if NAME_PARTS:  # "Ian" also names Ian Wong
                more = {self._name_parts[w] for w in reading.words if w in self._name_parts}
                reading = replace(reading, words=reading.words | more)
            passage = self.index.sentences.passage(row)
            if passage.kind == "reference":  # a reference entry states its own number ("reference 10")
                reading = replace(reading, numbers=reading.numbers | {str(passage.paragraph)})
            self._rows[row] = (reading, [self.read(c) for c in clauses] or [reading])
        return self._rows[row]

    @cached_property
    def _context(self) -> list[tuple[frozenset[str], tuple[tuple[str, ...], ...]]]:
        """Per corpus sentence, the words and names of the sentences before it in its paragraph ("he", "it").

        Only for a sentence that refers back (:data:`_ANAPHOR`): otherwise a name from earlier in the
        paragraph would let a claim give one actor's deed to another.
        """
        table = self.index.sentences
        out = []
        for row in range(len(table)):
            passage = table.passage(row)
            refers = not ANAPHORA or bool(_ANAPHOR.search(table.texts[row]))
            paragraph = table.paragraph_rows(row)
            earlier = paragraph[max(0, paragraph.index(row) - CONTEXT_SENTENCES) : paragraph.index(row)]
            before = [self._row(r)[0] for r in earlier if refers and passage.kind == "essay"]
            words = frozenset().union(*(b.words | b.initials for b in before))
            out.append((words, tuple(e for b in before for e in b.entities)))
        return out

    def coverage(self, wanted: set[str], have: frozenset[str]) -> float:
        """IDF-weighted share (0..1) of the ``wanted`` terms found in ``have`` (0 when nothing is wanted)."""
        return self.reranker.coverage(wanted, have)

    # --- agreement -------------------------------------------------------------------------

    def disagreement(self, claim: Reading, rows: tuple[int, ...]) -> str:
        """Why the corpus sentences ``rows`` together cannot support ``claim`` ("" when they can)."""
        readings = [self._row(r) for r in rows]
        words = frozenset().union(*(r.words for r, _ in readings))
        numbers = frozenset().union(*(r.numbers for r, _ in readings))
        numbers |= {n.rstrip("abcdefghijklmnopqrstuvwxyz") for n in numbers}  # "2nm" also states 2
        missing = sorted(claim.numbers - numbers)
        if missing:
            return f"does not mention {', '.join(missing)}"
        if len(rows) > 1:
            for number, near in claim.number_context:
                holding = [r.terms for r, _ in readings if number in r.numbers]
                others = [r.terms for r, _ in readings if number not in r.numbers]
                if (
                    holding
                    and others
                    and max(self.coverage(set(near), t) for t in holding)
                    < max(self.coverage(set(near), t) for t in others)
                ):
                    return f"its {number} belongs to another statement"
        context = words.union(*(self._context[r][0] for r in rows))
        names = [e for r, _ in readings for e in r.entities] + [e for r in rows for e in self._context[r][1]]
        initials = frozenset().union(*(r.initials for r, _ in readings))
        absent = [" ".join(e) for e in claim.entities if any(not _named(w, context) for w in e if w != "of")]
        if absent:
            return f"does not name {', '.join(absent)}"
        absent = [a for a in claim.abbreviations if a not in context and a not in initials]
        if absent:
            return f"does not name {', '.join(a.upper() for a in absent)}"
        if SUBSTITUTES:
            # A name from elsewhere (earlier in the paragraph, or the other sentence of a pair) may stand
            # for the passage's "he" or "it", not for a name the passage gives: one the claim leaves out
            # while it names someone the cited sentences do not, or the agent ("by Rapidus") of the
            # sentence it matches best ("IBM will manufacture").
            primary = readings[0][0]
            borrowed = [e for e in claim.entities if not all(_named(w, words) for w in e if w != "of")] + [
                (a,) for a in claim.abbreviations if a not in words and a not in initials
            ]
            places = frozenset().union(*(r.places for r, _ in readings))
            own = [
                e
                for r, _ in readings
                for e in r.entities
                if e[-1] not in places and not any(_named(w, claim.words) for w in e if w != "of")
            ]
            if borrowed and own:
                return f"names {' '.join(borrowed[0])} where the passage names {' '.join(own[0])}"
            if len(rows) > 1:
                borrowed = [e for e in claim.entities if not all(_named(w, primary.words) for w in e if w != "of")]
                borrowed += [(a,) for a in claim.abbreviations if a not in primary.words and a not in primary.initials]
                agents = [a for a in primary.agents if not _named(a, claim.words)]
                if borrowed and agents:
                    return f"names {' '.join(borrowed[0])} where the passage names {agents[0]}"
        for entity in claim.entities:
            if "of" in entity and not _same_name(entity, names):
                return f"names {' '.join(entity)}, the passage another"
        places = frozenset().union(*(r.places for r, _ in readings))
        for place in claim.places - places if places else ():
            return f"places it in {place}, the passage in {', '.join(sorted(places))}"
        opposite = [(a, b) for a, b in _OPPOSITES if a in claim.words and b in words and a not in words]
        if opposite:
            return f"says {opposite[0][0]} where the passage says {opposite[0][1]}"
        clauses = [c for _, cs in readings for c in cs]
        closest = max(clauses, key=lambda c: self.coverage(set(claim.terms), c.terms))
        if CONTRASTS and claim.contrast != any(r.contrast for r, _ in readings):
            return "contrast differs" + (" (the passage sets nothing against it)" if claim.contrast else "")

        # What the passage negates must not be what the claim affirms: with NEGATION_SCOPE, only the
        # words the negation governs count ("Nishimura stated that they were not designed …" negates
        # "designed", not the minister's name).
        def governs(c: Reading) -> bool:
            return not NEGATION_SCOPE or bool(c.negated_terms & claim.terms)

        if claim.negated != closest.negated and (claim.negated or governs(closest)):
            return "negation differs" + (" (the passage affirms it)" if claim.negated else " (the passage negates it)")
        shared = {e[-1] for e in claim.entities}
        if not claim.negated and any(
            c.negated and governs(c) and (len(c.terms & claim.terms) >= 2 or shared & {e[-1] for e in c.entities})
            for c in clauses
        ):
            return "negation differs (the passage negates part of it)"
        # "could" keeps a hedge in a claim, but a passage's "could" is as often a suggestion ("This gesture
        # could include …") as a hedge: a claim may state the suggestion outright.
        hedges = closest.hedges - claim.hedges - {"could"}
        if hedges and not claim.hedges:
            return f"drops the passage's {', '.join(sorted(hedges))}"
        have = frozenset().union(*(r.quantifiers for r, _ in readings))
        kinds = {_QUANTIFIERS[q] for q in have} if QUANTIFIER_KINDS else set()
        quantifiers = {q for q in claim.quantifiers if _QUANTIFIERS[q] not in kinds and q not in have}
        if claim.negated:
            quantifiers -= {"ani"}
        if quantifiers:
            return f"says {', '.join(sorted(quantifiers))}, the passage does not"
        return ""

    def score_claim(self, text: str, vector: Any, rows: list[int], hedges: frozenset[str] = frozenset()) -> ClaimCheck:
        """The best support unit among ``rows`` (corpus sentences) and their pairs for the claim ``text``.

        ``hedges``: those of the whole sentence (a hedge in another clause of it still hedges).
        """
        claim = self.read(text)
        claim = replace(claim, hedges=claim.hedges | hedges)
        wanted = set(claim.terms)
        single = {}
        for row in rows:
            cosine = float(self.index.sentences.vectors[row] @ vector)
            single[row] = (cosine, self.coverage(wanted, self.reranker.sentences.terms[row]))
        units: list[tuple[float, tuple[int, ...], float, float]] = []
        for row, (cosine, coverage) in single.items():
            units.append(
                (SIMILARITY_WEIGHT * max(0.0, cosine) + (1 - SIMILARITY_WEIGHT) * coverage, (row,), cosine, coverage)
            )
        for a, b in combinations(rows, 2):
            cosine = max(single[a][0], single[b][0])
            coverage = self.coverage(wanted, self.reranker.sentences.terms[a] | self.reranker.sentences.terms[b])
            if coverage <= max(single[a][1], single[b][1]):
                continue  # the second sentence adds nothing
            raw = SIMILARITY_WEIGHT * max(0.0, cosine) + (1 - SIMILARITY_WEIGHT) * coverage - PAIR_PENALTY
            units.append((raw, (a, b) if single[a][0] >= single[b][0] else (b, a), cosine, coverage))
        units.sort(key=lambda u: -u[0])
        first_problem, closest = "", ()
        for raw, unit, cosine, coverage in units:
            if raw < SCORE_FLOOR:
                break  # no threshold in use keeps it: spare the agreement checks (most of the time)
            if CLOSEST and closest and closest[0] not in unit:
                continue  # the sentence the claim matches best disagrees: another one cannot stand in for it
            problem = self.disagreement(claim, unit)
            if not problem:
                # A better-scoring unit that failed an agreement check explains a low score.
                return ClaimCheck(text, raw, unit, cosine, coverage, first_problem)
            first_problem, closest = first_problem or problem, closest or unit
        best = units[0] if units else (0.0, (), 0.0, 0.0)
        return ClaimCheck(text, 0.0, best[1], best[2], best[3], first_problem)

    # --- the answer ------------------------------------------------------------------------

    def _citation(self, n: int, passage: Passage, span: Span) -> Citation:
        quote = self.corpus.text[span.start : span.end]
        numbers = passage.refs if passage.kind == "reference" else footnotes_in(quote) or passage.refs
        refs = tuple(
            ReferenceInfo(num, self.corpus.references[num].text, self.corpus.references[num].url)
            for num in numbers
            if num in self.corpus.references
        )
        return Citation(n, passage.id, passage.section, quote, span.start, span.end, self.corpus.display_path, refs)

    def check(
        self,
        sentences: list[tuple[str, tuple[int, ...]]],
        passages: list[Passage],
        second_opinion: Callable[[str, list[str]], str | None] | None = None,
        question: str = "",
    ) -> Verification:
        """Check generated ``(text, markers)`` pairs against ``passages`` (marker n = passages[n-1]).

        ``question``, when given, is what the sentences answer: a hedge it states ("What reportedly
        made …?") hedges every answer sentence, as one in another clause of the sentence does.

        ``second_opinion(text, quotes)``, when given, is asked only about sentences that passed,
        with the corpus sentences that support them; a reason (not None) drops the sentence. It can
        reject a sentence, never rescue one.

        Returns the per-sentence verdicts and the answer made of the kept sentences, with
        citations renumbered 1..N in order of first use (one per distinct quoted sentence).
        """
        threshold = self.settings.support_threshold
        asked_hedges = self.read(question).hedges if question else frozenset()
        claims_of = [split_claims(text) for text, _ in sentences]
        texts = [c for claims in claims_of for c in claims]
        vectors = iter(self.embedder.encode(texts)) if texts else iter(())
        checks, citations, support_of = [], [], {}
        number_of: dict[tuple[str, int], int] = {}
        parts = []
        for (text, markers), claims in zip(sentences, claims_of, strict=True):
            claim_vectors = [next(vectors) for _ in claims]
            resolved = tuple(dict.fromkeys(m for m in markers if 1 <= m <= len(passages)))
            unresolved = tuple(m for m in markers if m not in resolved)
            located: dict[int, tuple[int, Passage]] = {}
            for m in resolved:
                passage = passages[m - 1]
                for span in passage.sentences:
                    located.setdefault(self.index.sentences.row(passage.id, span.start), (m, passage))
            verdicts = (
                [
                    self.score_claim(c, v, list(located), self.read(text).hedges | asked_hedges)
                    for c, v in zip(claims, claim_vectors, strict=True)
                ]
                if located
                else []
            )
            supports = self._supports(verdicts, located, resolved, passages, numbers_in(text))
            kept = bool(verdicts) and all(v.score >= threshold for v in verdicts)
            vetoed = None
            if kept and second_opinion is not None:
                rows = dict.fromkeys(r for v in verdicts for r in v.rows)
                spans = [self.index.sentences.spans[r] for r in rows]
                vetoed = second_opinion(text, [self.corpus.text[sp.start : sp.end] for sp in spans])
                kept = vetoed is None
            check = SentenceCheck(text, markers, unresolved, supports, kept, "", claims=verdicts)
            if vetoed is not None:
                check.reason = f"passed the check ({check.support:.2f} >= {threshold:.2f}) but {vetoed}"
            elif not resolved:
                check.reason = "no citation to a given passage" + (
                    f" (markers {list(unresolved)} do not resolve)" if unresolved else ""
                )
            elif not kept:
                weakest = min(verdicts, key=lambda v: v.score)
                what = f"claim “{weakest.text}”" if len(verdicts) > 1 else "cited passage"
                check.reason = f"{what} support {weakest.score:.2f} < {threshold:.2f}" + (
                    f"; a closer reading {weakest.problem}" if weakest.problem else ""
                )
            else:
                used = dict.fromkeys(r for v in verdicts for r in v.rows)
                for row in used:
                    passage = located[row][1]
                    span = self.index.sentences.spans[row]
                    key = (passage.id, span.start)
                    if key not in number_of:
                        number_of[key] = len(number_of) + 1
                        citations.append(self._citation(number_of[key], self.index.passages[passage.id], span))
                        support_of[number_of[key]] = min(v.score for v in verdicts if row in v.rows)
                    if number_of[key] not in check.citation_numbers:
                        check.citation_numbers.append(number_of[key])
                check.reason = f"supported ({check.support:.2f} >= {threshold:.2f})" + (
                    f"; removed markers {list(unresolved)}" if unresolved else ""
                )
                body = text if text[-1] in ".!?" else text + "."
                parts.append(f"{body} " + "".join(f"[{n}]" for n in check.citation_numbers))
            checks.append(check)
        return Verification(checks, " ".join(parts), citations, support_of, threshold)

    def _supports(
        self,
        verdicts: list[ClaimCheck],
        located: dict[int, tuple[int, Passage]],
        resolved: tuple[int, ...],
        passages: list[Passage],
        numbers: frozenset[str],
    ) -> list[Support]:
        """One :class:`Support` per resolved marker: the weakest claim's score where it used that passage."""
        supports = []
        for m in resolved:
            passage = passages[m - 1]
            rows = [r for r, (marker, _) in located.items() if marker == m]
            mine = [v for v in verdicts if any(located.get(r, (0,))[0] == m for r in v.rows)]
            row = next((r for v in mine for r in v.rows if r in rows), rows[0])
            have = frozenset().union(*(self._row(r)[0].numbers for r in rows))
            score = min((v.score for v in mine), default=0.0) if len(mine) == len(verdicts) else 0.0
            best = max(mine, key=lambda v: v.score, default=None)
            supports.append(
                Support(
                    m,
                    passage.id,
                    score,
                    self.index.sentences.spans[row],
                    best.cosine if best else 0.0,
                    best.coverage if best else 0.0,
                    tuple(sorted(numbers - have)),
                    next((v.problem for v in verdicts if v.problem), ""),
                )
            )
        return supports
