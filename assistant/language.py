"""Which language a question is in: the assistant reads English questions only.

The embedding model (all-MiniLM-L6-v2) and the BM25 index are English, so a question in French,
Spanish, German or Japanese finds nothing and would be told "The essay does not say." although
the essay may well say it. :func:`foreign_language` tells such a question apart, with the
``lingua-language-detector`` library (its models ship in the wheel: no download), so the
assistant can answer with one honest line instead (:func:`english_only_message`).

Short English questions and names must never be flagged, so the check is conservative:

* the essay's proper names (``Huawei``, ``Sullivan``, ``Kishida``…) are left out first, since
  they belong to no language and mislead a detector on short text;
* a question whose every other word the essay itself uses, or is an English function word
  (:func:`corpus_words`), is English: no model is asked. Short questions, where lingua's screen
  below is least sure, often stop here (47 of the 161 bank questions the screen leaves undecided),
  so such a first question, the CLI's above all, does not wait 0.5-1.5 s for the full models to load;
* lingua's fast trigram mode screens the rest: when it is sure the text is English, that is all
  (about nine English questions in ten);
* otherwise lingua's full (high-accuracy) mode decides, and the question counts as foreign only
  when another language gets at least :data:`MIN_CONFIDENCE` and English under
  :data:`MAX_ENGLISH`.

On the question bank (the tune and test splits of ``tests/data``) nothing is flagged; see
``tests/test_language.py``. lingua is imported on the first call, not at import time.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

# The languages lingua chooses among: English and the ones people most often try. A question in
# another language is usually reported as the nearest of these, which is still "not English".
LANGUAGES = ("ENGLISH", "FRENCH", "SPANISH", "GERMAN", "JAPANESE", "CHINESE", "KOREAN", "RUSSIAN")
SCREEN_ENGLISH = 0.9  # the trigram screen's English confidence above which a question is English
MIN_CONFIDENCE = 0.7  # the full models' confidence in another language needed to call it foreign
MAX_ENGLISH = 0.1  # ... with English below this

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_lock = threading.Lock()
_detectors: dict[str, Any] = {}


def _detector(mode: str) -> Any:
    """The lingua detector over :data:`LANGUAGES`, ``"screen"`` (trigrams only) or ``"full"``; built once."""
    with _lock:
        detector = _detectors.get(mode)
        if detector is None:
            from lingua import Language, LanguageDetectorBuilder

            builder = LanguageDetectorBuilder.from_languages(*(getattr(Language, name) for name in LANGUAGES))
            detector = (builder.with_low_accuracy_mode() if mode == "screen" else builder).build()
            _detectors[mode] = detector
        return detector


@functools.lru_cache(maxsize=4)
def proper_names(corpus_text: str) -> frozenset[str]:
    """The lower-cased words ``corpus_text`` only ever writes capitalised inside a sentence (names)."""
    lower = {w.lower() for w in re.findall(r"\b[a-z][^\W\d_]*", corpus_text)}
    capitalised = {m.group(1).lower() for m in re.finditer(r"(?<=[^.!?\s“\"(]\s)([A-Z][^\W\d_]*)", corpus_text)}
    return frozenset(capitalised - lower)


@functools.lru_cache(maxsize=4)
def corpus_words(corpus_text: str) -> frozenset[str]:
    """The lower-cased words of ``corpus_text`` (an English text) and the English words questions are made of.

    Those are :data:`assistant.text.STOPWORDS` and :data:`assistant.text.QUESTION_FORM`: a question
    made only of these words is English.
    """
    from assistant.text import QUESTION_FORM, STOPWORDS

    return frozenset(w.lower() for w in _WORD.findall(corpus_text)) | STOPWORDS | QUESTION_FORM


def foreign_language(
    text: str, names: frozenset[str] = frozenset(), vocabulary: frozenset[str] = frozenset()
) -> str | None:
    """The language ``text`` is written in when it is confidently not English, else ``None``.

    Args:
        text: A validated question.
        names: Lower-cased words to leave out before detection (the corpus's proper names,
            :func:`proper_names`).
        vocabulary: Lower-cased English words (:func:`corpus_words`): text made only of them and
            ``names`` is English without running the detector.

    Returns:
        The language's English name (``"French"``), or ``None`` for English, for text too short
        or too mixed to tell, and for text with no letters.

    """
    kept = " ".join(w for w in _WORD.findall(text) if w.lower() not in names)
    if not kept or all(w.lower() in vocabulary for w in kept.split()):
        return None
    screen = _detector("screen").compute_language_confidence_values(kept)
    if screen and screen[0].language.name == "ENGLISH" and screen[0].value >= SCREEN_ENGLISH:
        return None
    values = _detector("full").compute_language_confidence_values(kept)
    if not values:
        return None
    top = values[0]
    english = next((v.value for v in values if v.language.name == "ENGLISH"), 0.0)
    if top.language.name != "ENGLISH" and top.value >= MIN_CONFIDENCE and english < MAX_ENGLISH:
        return top.language.name.title()
    return None


def english_only_message(language: str) -> str:
    """The one line a question in ``language`` gets instead of an answer."""
    return (
        f"This question looks like {language}; I understand questions in English only (the essay and the model "
        "that searches it are English), so please ask it in English."
    )


def warm() -> None:
    """Load both detectors now (the chat does this at start-up, so no question waits for it)."""
    foreign_language("Quelle est la thèse principale de l'essai ?")
