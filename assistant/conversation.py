"""Conversation state: which questions lean on earlier turns, and what they ask of them.

A question is a follow-up only when it leans on the conversation: it points back with a
pronoun or demonstrative ("When did Japan do *that*?"), continues with a new subject
("*And* Japan?", "*What about* the Netherlands?"), has no content of its own ("When?"), or
is a conversational request: "Why?" (the reason for the last answer's claim), "Tell me more"
(evidence not yet shown) or "Shorter, please" (the one sentence carrying the key fact).
Anything else stands alone, however short ("Who is Jake Sullivan?"); only if the essay does not
answer it alone, and it names nothing of its own, is it read on the last turn's topic
(:func:`in_context`: "Starting when?").

Follow-ups resolve against the previous turn's *resolved* (standalone) question, so a
follow-up of a follow-up keeps the topic through any number of turns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from assistant.patterns import MONTHS
from assistant.text import STOPWORDS, terms, words
from assistant.types import Intent, Offsets

if TYPE_CHECKING:
    from assistant.types import Answer

# Words of conversational requests ("could you put that in simpler words, in one sentence?");
# a question made only of these and stopwords has no topic of its own.
_REQUEST_WORDS = frozenset(
    """please pls thanks ok okay again put make give rephrase reword explain simpler simple simply shorter short
    brief briefly word words sentence sentences one two line plain english terms version summarise summarize
    tldr tl dr eli5 nutshell more tell go on continue keep going elaborate expand detail details else anything
    further additional come happen happened reason so really yes no sure hmm huh mean meant""".split()
)
_MORE = re.compile(r"\b(more|go on|continue|keep going|elaborate|expand|else|further|additional|details?)\b", re.I)
_SHORTER = re.compile(
    r"\b(short(er)?|simpl(er|e|y)|brief(ly)?|one (sentence|line)|plain (english|words)|tl;? ?dr|eli5|nutshell)\b",
    re.I,
)
_WHY = re.compile(r"\b(why|how come|what for|for what reason|reason)\b", re.I)
# Opens a continuation with a new subject: "and Japan?", "what about the Netherlands?".
_CONTINUES = re.compile(
    r"^(?:and|also|what about|how about|what of|same for|same with|and what about|and how about|"
    r"and for|but what about)\b[\s,]*",
    re.I,
)
# Points back at an earlier turn. "that" only when it is not introducing a clause ("said that…").
_POINTS_BACK = re.compile(
    r"\b(it|its|it’s|it's|they|them|their|theirs|he|him|his|she|hers|this|these|those|then|the same|"
    r"the latter|the former|such)\b|\bthat\b(?=\s*(?:[?.!,]|$|\b(?:happen\w*|mean\w*|policy|decision|ban|rule|"
    r"move|step|measure|statement|speech|meeting|one|country|company|law|term|report|phrase|line|quote|word|claim|"
    r"point|idea|thing|part|bit|deal|agreement|incident|plan|remark|comment|event|visit|tho|though|again|exactly|"
    r"really|anyway|now|important|true|right)\b))"
    r"|\b(?:do|did|does|about|with|by|after|before|of|for|to|on) that\b"
    # "is that …", "why's that …", "why'd that …", "n thats …": a question opening on "that".
    r"|^\W*(?:[\w]+(?:['’](?:s|d))? )?(?:(?:is|was|are|were|does|did|do) )?that(?:['’]?s)?\b",
    re.I,
)
# "this essay", "it say" point at the document, not at an earlier turn.
_THE_DOCUMENT = re.compile(
    r"\b(?:this|the) (?:essay|article|piece|text|paper|author)\b|\bdoes (?:it|the essay) (?:say|mention|discuss)\b|"
    r"\bwho (?:wrote|authored|is behind) (?:it|this)\b|"
    rf"\bthis (?:year|month|week|spring|summer|fall|autumn|winter|{'|'.join(MONTHS)})\b",  # "this July": a date
    re.I,
)


@dataclass(frozen=True)
class Turn:
    """One earlier turn of a conversation.

    Attributes:
        question: The question as asked.
        standalone: The question as resolved (equal to ``question`` unless it was a follow-up).
        cited: Corpus spans ``(start, end)`` its answer quoted, in marker order.
        answer: Its answer text (empty when only the question is known).

    """

    question: str
    standalone: str
    cited: tuple[Offsets, ...] = ()
    answer: str = ""


@dataclass(frozen=True)
class Resolution:
    """How to answer a question in its conversation.

    Attributes:
        standalone: The question to retrieve for.
        intent: ``new`` (stands alone), ``followup`` (resolved against the previous turn),
            ``why`` (the reason for the previous answer's claim), ``more`` (evidence on the
            previous topic not shown yet) or ``shorter`` (the previous answer's key sentence).
        previous: The turn it leans on (``None`` for ``new``).
        shown: Spans the conversation already quoted on this topic (``more`` excludes them).
        last: The conversation's last turn, whatever the intent (no answer repeats its answer).

    """

    standalone: str
    intent: Intent
    previous: Turn | None = None
    shown: frozenset[Offsets] = frozenset()
    last: Turn | None = None


def turns_from(history: Sequence[str | Answer], resolve_text: Callable[[str, list[Turn]], Resolution]) -> list[Turn]:
    """Earlier turns from ``history``: previous questions (oldest first) or :class:`Answer` objects.

    Questions given as text are resolved in order, so that a follow-up of a follow-up keeps its topic.
    """
    turns: list[Turn] = []
    for item in history:
        if isinstance(item, str):
            turns.append(Turn(item, resolve_text(item, turns).standalone))
        else:
            cited = tuple((c.start, c.end) for c in item.citations)
            turns.append(Turn(item.question, item.standalone_question or item.question, cited, item.answer))
    return turns


def resolve(text: str, turns: Sequence[Turn], *, countries: Mapping[str, str] | None = None) -> Resolution:
    """Decide whether ``text`` leans on ``turns`` and, if so, make it standalone.

    Args:
        text: The validated question.
        turns: Earlier turns, oldest first.
        countries: Country names and aliases as written -> the country ("Tokyo": "Japan"; see
            :attr:`assistant.lexicon.Lexicon.aliases`); lets "And Japan?" replace the previous
            question's country.

    """
    resolution = _resolve(text, turns, countries or {})
    return replace(resolution, last=turns[-1]) if turns else resolution


def in_context(
    text: str,
    turns: Sequence[Turn],
    *,
    countries: Mapping[str, str] | None = None,
    names: frozenset[str] = frozenset(),
) -> Resolution | None:
    """``text`` read as a follow-up of the last turn, for a question that stood alone but was declined.

    "Which allies?" or "Starting when?" carry no pronoun, yet the essay answers them only on the
    conversation's topic. :class:`assistant.api.Assistant` answers this reading only when the
    standalone one is declined, so a question the essay answers alone always stands alone.
    None without earlier turns, after a turn whose answer quoted nothing (a declined turn sets no
    topic; a turn given as text only is taken as answered), and for a
    question that names something of its own (a capitalised word after its first, a word of
    ``names``, the corpus's lower-cased proper names, or a country): "Who is Yoko Kamikawa?" and
    "What did Gazprom do?" are about what they name, answered or declined, never about the
    previous topic.
    """
    find = _country_finder(tuple(sorted((countries or {}).items())))
    if not turns or (turns[-1].answer and not turns[-1].cited) or _NAME.search(text) or find(text):
        return None
    if {w.lower() for w in words(text)} & names:
        return None
    previous = turns[-1]
    return Resolution(_carry(text, previous.standalone, find), "followup", previous, _shown_on_topic(turns), previous)


def _resolve(text: str, turns: Sequence[Turn], countries: Mapping[str, str]) -> Resolution:
    if not turns:
        return Resolution(text, "new")
    find = _country_finder(tuple(sorted(countries.items())))
    previous = turns[-1]
    # "Why?", "shorter" and "more" work on the last answer that quoted something.
    quoted = next((t for t in reversed(turns) if t.cited), previous)
    own = [w for w in words(text) if w.lower() not in STOPWORDS and w.lower() not in _REQUEST_WORDS]
    shown = _shown_on_topic(turns)
    if not own:
        if _WHY.search(text):
            return Resolution(why_of(quoted.standalone), "why", quoted, shown)
        if _SHORTER.search(text):
            return Resolution(quoted.standalone, "shorter", quoted, shown)
        if _MORE.search(text):
            return Resolution(quoted.standalone, "more", quoted, shown)
    if (
        re.match(r"\W*(?:why|how come)\b", text, re.I)
        and quoted.cited
        and set(terms(text)) <= set(terms(quoted.standalone))
    ):
        # "Why did Japan ban Huawei?" right after "When did Japan ban Huawei?" asks the reason for that answer.
        return Resolution(text, "why", quoted, shown)
    if continued := _CONTINUES.match(text):
        rest = text[continued.end() :].strip()
        return Resolution(_substitute(previous.standalone, rest, find), "followup", previous, shown)
    leans = _leans_back(_THE_DOCUMENT.sub(" ", text), find)
    if leans or not terms(text):
        # "Why would Japan say that?" asks the reason for the previous answer's claim.
        intent: Intent = (
            "why" if leans and re.match(r"\W*(?:but |and |so )?(?:why|how come)\b", text, re.I) else "followup"
        )
        return Resolution(_carry(text, previous.standalone, find), intent, previous, shown)
    return Resolution(text, "new")


# Pronouns that, after a name in the same question, refer to it: "When did Japan ban Huawei from its
# ministries?", "Did Abe say he was targeting Huawei?". ("it"/"them" stay: "What did Japan say about it?")
_INNER_PRONOUNS = frozenset({"its", "their", "theirs", "his", "her", "hers", "he", "she", "they"})
_NAME = re.compile(r"(?<=\w )[A-Z][\w’'.-]*")


def _leans_back(text: str, find: _Finder) -> bool:
    """Whether ``text`` points back at the conversation (:data:`_POINTS_BACK`).

    A pronoun of :data:`_INNER_PRONOUNS` does not when a name or country comes before it in
    ``text`` itself.
    """
    for match in _POINTS_BACK.finditer(text):
        before = text[: match.start()]
        if match.group(0).lower() in _INNER_PRONOUNS and (_NAME.search(before) or find(before)):
            continue
        return True
    return False


def _shown_on_topic(turns: Sequence[Turn]) -> frozenset[Offsets]:
    """Spans quoted by the last turn and the follow-ups before it on the same topic."""
    shown: set[Offsets] = set()
    for turn in reversed(turns):
        shown.update(turn.cited)
        if turn.standalone == turn.question:  # the turn that opened this topic
            break
    return frozenset(shown)


def why_of(standalone: str) -> str:
    """The "why" of a resolved question: "When did Japan ban Huawei?" -> "Why did Japan ban Huawei?".

    Only a question asking when, where or how something was done turns into a "why" question of
    the same words; any other gets "Why?" with its words after it, for retrieval.
    """
    body = re.sub(r"^\s*(?:when|where|how)\b\s*", "", standalone, flags=re.I)
    if body != standalone and re.match(r"(?:did|does|do|has|have|had|was|were)\b", body, re.I):
        return f"Why {body}"
    return f"Why? ({standalone.rstrip('?')})"


# Pronouns that stand for an actor (a country, a person): "its" is left out, it is most often a policy's.
_ACTOR_PRONOUN = re.compile(rf"\b({'|'.join(sorted((_INNER_PRONOUNS - {'its'}) | {'them', 'him'}))})\b", re.I)


def _content_words(text: str) -> list[str]:
    return [w for w in dict.fromkeys(words(text)) if w.lower() not in STOPWORDS and terms(w)]


def _carry(text: str, previous: str, find: _Finder) -> str:
    """``text`` with the previous question's content words appended (a new country replaces the old)."""
    lowered = text.lower()
    # The question names its own country: the previous one's countries stay behind, unless a pronoun
    # stands for them ("Did they name China?" after a question about Japan).
    if find(text) and not _ACTOR_PRONOUN.search(text):
        last, kept = 0, []
        for start, end in find(previous):
            kept.append(previous[last:start])
            last = end
        previous = " ".join([*kept, previous[last:]])
    carried = [w for w in _content_words(previous) if w.lower() not in lowered and w.lower() not in _REQUEST_WORDS]
    return f"{text} ({' '.join(carried)})" if carried else text


def _substitute(previous: str, rest: str, find: _Finder) -> str:
    """The previous question about a new subject: "When did the U.S. ban Huawei?" + "Japan?".

    A country replaces the previous question's countries; any other name replaces its first
    name; a question of its own ("and what did Japan do?") carries the previous topic along.
    """
    rest = rest.strip(" ?.!")
    if not rest:
        return previous
    if re.match(r"(?:what|when|where|who|which|why|how|did|does|do|is|are|was|were)\b", rest, re.I):
        return _carry(rest + "?", previous, find)
    names = [w for w in words(rest) if w[:1].isupper() or w[:1].isdigit()]
    if find(rest):
        spans = find(previous)
        if not spans:  # no country to replace: the new one is added, never put in place of a month or name
            return f"{previous.rstrip('?')} ({rest})?"
        # "the capital of France" + "of Japan": the preposition is there already.
        preposition = re.match(r"(of|in|for|from|to|on|by|with)\s+", rest, re.I)
        out, last = [], 0
        for start, end in spans:
            before = previous[last:start]
            if out and re.fullmatch(r"\s*(?:,|and|or|&)\s*(?:and\s+)?", before):
                last = end  # "Japan and the Netherlands" -> the new country once
                continue
            if preposition and before.rstrip().lower().endswith(" " + preposition.group(1).lower()):
                out += [before, rest[preposition.end() :]]
            else:
                out += [before, rest]
            last = end
        return "".join(out + [previous[last:]])
    if names:
        first = next((m for m in re.finditer(r"\b[A-Z][\w’'-]*(?: [A-Z][\w’'-]*)*", previous) if m.start() > 0), None)
        if first is not None:
            return previous[: first.start()] + rest + previous[first.end() :]
    return f"{previous.rstrip('?')} ({rest})?"


_Finder = Callable[[str], list[Offsets]]


@lru_cache(maxsize=8)
def _country_finder(countries: tuple[tuple[str, str], ...]) -> _Finder:
    """A function giving the spans of country names and aliases in a text ("the U.S.", "Tokyo")."""
    names = {alias for alias, _ in countries} | {name for _, name in countries}
    if not names:
        return lambda _text: []
    # Written as they are, or in lower case for words ("chinese"); never lower-case codes ("us").
    words_ = names | {n.lower() for n in names if not n.isupper() and len(n) > 3}
    alternation = "|".join(re.escape(n) for n in sorted(words_, key=len, reverse=True))
    pattern = re.compile(rf"(?:\b[Tt]he )?(?<![\w.])(?:{alternation})(?![\w])")
    return lambda text: [m.span() for m in pattern.finditer(text)]
