"""Lexical helpers shared by BM25 retrieval and sentence selection: terms, stems, stopwords.

The regular expressions several modules share are in :mod:`assistant.patterns`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

from assistant.patterns import CONNECTIVE, CONTINUATION, FOOTNOTE

_WORD = re.compile(r"[A-Za-z0-9]+(?:[’'][a-z]+)?")
_FOOTNOTE_MARKER = re.compile(r"\s*" + FOOTNOTE.pattern)  # with the space before it

# English function words plus the verbs questions use to ask for a text's content ("according to",
# "what does it say/mention"). Words about the document itself ("essay", "author") are not here:
# IDF and the fitted models weigh them like any other term.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our out over own same she should
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom whose why will with would you
    your according say says said tell describe explain mention mentions
    mentioned did does do was were what which many much kind way ways""".split()
)


# Question words that say what form the answer takes, not what it is about.
QUESTION_FORM = frozenset(
    """differ difference differences different compare compared comparison contrast contrasts reason reasons
    main argument arguments point thesis summary summarise summarize overall similar similarly term
    happened happen roughly approximately cite cites cited wrote written source sources entry entries
    date year month day""".split()
)
_STEMMER = snowballstemmer.stemmer("english")
_STOP_STEMS = frozenset(_STEMMER.stemWord(w.removesuffix("'s")) for w in STOPWORDS) | {"what"}


def stem(word: str) -> str:
    """The Snowball (Porter 2) English stem of ``word``, lower-cased.

    Possessives are dropped. (Demonyms meet their country through the corpus's lexicon,
    :meth:`assistant.lexicon.Lexicon.term_aliases`.)
    """
    word = word.lower().replace("’", "'").removesuffix("'s").strip("'")
    return _stem(word)


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def words(text: str) -> list[str]:
    """The word tokens of ``text`` (letters and digits), case kept."""
    return _WORD.findall(text)


def terms(text: str) -> list[str]:
    """Stemmed content terms of ``text``, in order, repeats kept.

    Stopwords are removed, also in another form ("authors", "whats").
    """
    stems = (
        stem(w) for w in words(text) if len(w) > 1 and w.lower().replace("’", "'").removesuffix("'s") not in STOPWORDS
    )
    return [s for s in stems if s not in _STOP_STEMS]


def strip_footnotes(text: str) -> str:
    """``text`` without footnote markers such as ``(9)``."""
    return _FOOTNOTE_MARKER.sub("", text)


def leans_on_previous(sentence: str) -> bool:
    """Whether ``sentence`` opens by pointing back at, or connecting to, the sentence before it.

    See :data:`assistant.patterns.CONTINUATION` and :data:`assistant.patterns.CONNECTIVE`.
    """
    return bool(CONTINUATION.match(sentence) or CONNECTIVE.match(sentence))
