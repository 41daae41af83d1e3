"""The corpus's own vocabulary for reading questions: acronyms, metonyms and demonyms.

People ask "When does SOFA expire?", "How did Beijing react to Tokyo?", "What did the Dutch
do?"; the essay writes "Status of Forces Agreement (SOFA)", "China", "Japan", "the Netherlands".
A :class:`Lexicon` is derived from the corpus text when the index is built and stored in its
manifest, so nothing here is specific to one essay:

* ``acronyms``: every "Full Name (ACRONYM)" the corpus spells out, and the initials of its
  capitalised multi-word names ("Asia-Pacific Economic Cooperation" -> "APEC");
* ``names``: the corpus's capitalised names of two to four words ("Prime Minister", "World War
  II"), and ``capitals``, the upper-case words it writes ("JET", "IBM"): an upper-case word the
  corpus never writes may abbreviate one of its names by initials and inner letters ("PM", "PKU",
  "WWII"; :meth:`Lexicon.abbreviation`), so an answer never says the essay does not mention it;
* ``aliases``: for each country the corpus names (countryinfo's country list), its capital
  (the usual metonym for its government: Tokyo, Beijing, Washington), its demonym
  ("Japanese") and its upper-case codes and alternative names ("USA", "Holland"), each
  mapped to the country's name as the corpus writes it.

:meth:`Lexicon.normalise` rewrites a question with these (after writing out abbreviated months,
"Dec. 2018", and the seats of government that are not capitals, :data:`METONYMS`: "the Pentagon",
"The Hague"), and :meth:`Lexicon.term_aliases` maps stemmed terms ("japanes" -> "japan") so that
coverage and BM25 meet either form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from assistant.patterns import expand_month_abbreviations
from assistant.text import STOPWORDS, stem

LEXICON_VERSION = 5  # bump when what is derived changes: the index is then stale and rebuilt

_SPELLED_OUT = re.compile(r"\b((?:[A-Z][\w’'-]*\s+(?:(?:of|and|the|for|on)\s+)?){1,7}[A-Z][\w’'-]*)\s+\(([A-Z]{2,8})\)")
_CAPITALISED_PHRASE = re.compile(r"(?:[A-Z][\w’]*[ -]+(?:(?:of|and|the|for|on) +)?)+[A-Z][\w’]*")
_MIXED_CASE = re.compile(r"(?<![\w.])(?=\w*[a-z])(?=[A-Za-z]*[A-Z][a-z]*[A-Z])[A-Za-z]{3,8}(?![\w])")
_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"")
_CONNECTORS = frozenset({"of", "and", "the", "for", "on"})
_UPPER_CASE_WORD = re.compile(r"(?<![\w.’'-])[A-Z]{2,6}(?![\w’'-])")


@dataclass(frozen=True)
class Lexicon:
    """Question vocabulary derived from one corpus (see the module docstring).

    Attributes:
        acronyms: Upper-case acronym -> the full name the corpus uses.
        aliases: Word or phrase as people write it -> the corpus's name for it; keys are
            matched case-sensitively on word boundaries.
        names: Capitalised names of 2-4 words, outside quotation marks, not opening with a
            stopword ("In March") nor ending with a possessive ("Prime Minister’s").
        capitals: Upper-case words of 2-6 letters the corpus writes ("JET", "US").

    """

    acronyms: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    capitals: frozenset[str] = frozenset()

    @classmethod
    def from_corpus(cls, text: str) -> Lexicon:
        """Derive the lexicon of ``text`` (about 0.1 s: countryinfo's 250 countries)."""
        acronyms = {acr: name for full, acr in _SPELLED_OUT.findall(text) if (name := _spelled_out(full, acr))}
        initialisms: dict[str, set[str]] = {}
        # Not inside quotation marks: a title's capitals ("Japan and China Resume Strategic
        # Dialogue") name no organisation, and would make real initials ambiguous ("CRS").
        for phrase in _CAPITALISED_PHRASE.findall(_QUOTED.sub(" ", text)):
            for name, initials in _initialisms(phrase):
                if initials not in acronyms and not re.search(rf"\b{initials}\b", text):
                    initialisms.setdefault(initials, set()).add(name)
        # An initialism two names share ("SEC") is ambiguous: left as written.
        acronyms |= {initials: names.pop() for initials, names in initialisms.items() if len(names) == 1}
        return cls(
            acronyms=dict(sorted(acronyms.items())),
            aliases=_country_aliases(text),
            names=_names(text),
            capitals=frozenset(_UPPER_CASE_WORD.findall(text)),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Lexicon:
        data = data or {}
        return cls(
            acronyms=dict(data.get("acronyms", {})),
            aliases=dict(data.get("aliases", {})),
            names=tuple(data.get("names", ())),
            capitals=frozenset(data.get("capitals", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "acronyms": self.acronyms,
            "aliases": self.aliases,
            "names": list(self.names),
            "capitals": sorted(self.capitals),
        }

    def normalise(self, question: str) -> str:
        """``question`` with acronyms spelled out and metonyms/demonyms replaced by the corpus's names.

        "When does SOFA expire?" -> "When does Status of Forces Agreement expire?"; the
        corpus's own acronyms stay when it uses them in the text too.
        """
        text = expand_month_abbreviations(question)  # "Dec. 2018": the corpus writes months out
        text = _METONYM_PATTERN.sub(_metonym, text)
        if self._acronym_pattern is not None:
            text = self._acronym_pattern.sub(lambda m: _look_up(self.acronyms, m.group(0)), text)
            # Written with capitals inside ("DoD", "MoFA"): an acronym too; a plain word ("Mac") is not.
            text = _MIXED_CASE.sub(lambda m: self.acronyms.get(m.group(0).upper(), m.group(0)), text)
        if self._alias_pattern is not None:
            text = self._alias_pattern.sub(lambda m: _look_up(self.aliases, m.group(0)), text)
        return text

    @cached_property
    def _acronym_pattern(self) -> re.Pattern[str] | None:
        return _alternation(self.acronyms)

    @cached_property
    def _alias_pattern(self) -> re.Pattern[str] | None:
        return _alternation(self.aliases)

    def abbreviation(self, word: str) -> str | None:
        """The name of :attr:`names` that upper-case ``word`` abbreviates, or None.

        ``word`` abbreviates a name when it is, in order, each word's first letter followed by
        none or more of that word's later letters (connectors may be skipped): "PM" -> "Prime
        Minister", "PKU" -> "Peking University", "WWII" -> "World War II". Of several names, the
        one using fewest later letters ("SDEF": "Self Defense Forces", not "Self Defense"); None
        if that is a tie, and for a word the corpus writes itself (it means what the corpus means
        by it), a stopword ("IT", "US") or an acronym the lexicon spells out.
        """
        if word in self.capitals or word.lower() in STOPWORDS or word in self.acronyms:
            return None
        if word not in self._abbreviations:
            found = sorted((inner, name) for name in self.names if (inner := _abbreviates(word, name)) is not None)
            unique = found and (len(found) == 1 or found[0][0] < found[1][0])
            self._abbreviations[word] = found[0][1] if unique else None
        return self._abbreviations[word]

    @cached_property
    def _abbreviations(self) -> dict[str, str | None]:
        return {}

    def term_aliases(self) -> dict[str, str]:
        """Stemmed single-word alias -> stemmed corpus name ("japanes" -> "japan")."""
        found = {}
        for alias, name in self.aliases.items():
            if " " not in alias and " " not in name:
                found[stem(alias)] = stem(name)
        return found


# Well-known metonyms of governments that are not their country's capital (capitals come from the country
# list): "the Pentagon" for the U.S. Department of Defense, "The Hague" for the Dutch government. Matched
# in any case ("the pentagon"); the first letter keeps the case it was written in.
METONYMS = {
    "the pentagon": "the Department of Defense",
    "pentagon": "Department of Defense",
    "the hague": "the Netherlands",
    "foggy bottom": "the Department of State",
    "kasumigaseki": "Japan",
    "zhongnanhai": "China",
}


def _alternation(words: dict[str, str], flags: int = 0) -> re.Pattern[str] | None:
    """One pattern matching any key of ``words`` as a whole word, longest first; None if there are none.

    An apostrophe matches either form ("People's" and "People’s"): the corpus and the country
    list write them differently, and so do people.
    """
    if not words:
        return None
    alternatives = "|".join(re.sub("['’]", "['’]", re.escape(w)) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w])", flags)


_METONYM_PATTERN = _alternation(METONYMS, re.I)


def _metonym(match: re.Match[str]) -> str:
    found, name = match.group(0), METONYMS[match.group(0).lower()]
    return name[0].upper() + name[1:] if found[0].isupper() else name


def _look_up(words: dict[str, str], found: str) -> str:
    """``words[found]``, where ``found`` may write an apostrophe the other way (see :func:`_alternation`)."""
    if found in words:
        return words[found]
    return words.get(found.replace("’", "'")) or words[found.replace("'", "’")]


def _names(text: str) -> tuple[str, ...]:
    """The capitalised names of 2-4 words of ``text`` (see :attr:`Lexicon.names`), in first-seen order."""
    found: dict[str, None] = {}
    for phrase in _CAPITALISED_PHRASE.findall(_QUOTED.sub(" ", text)):
        words = phrase.replace("-", " ").split()
        for i, first in enumerate(words):
            if first.lower() in STOPWORDS:
                continue
            for j in range(i + 1, min(len(words), i + 4)):
                # "Prime Minister’s Office" names "Prime Minister", not "Prime Minister’s".
                if words[j][0].isupper() and not re.search(r"['’]s$", words[j]):
                    found[" ".join(words[i : j + 1])] = None
    return tuple(found)


def _abbreviates(word: str, name: str) -> int | None:
    """How many later letters ``word`` takes from ``name``'s words, or None if it does not abbreviate it.

    Each word of ``name`` but a connector gives its first letter, then any of its later letters in
    order; a connector gives its first letter or nothing. Case is ignored.
    """
    letters = word.lower()
    parts = [(w.lower(), w.lower() in _CONNECTORS) for w in name.split()]

    @cache
    def inner(i: int, k: int) -> int | None:
        if k == len(parts):
            return 0 if i == len(letters) else None
        part, optional = parts[k]
        options = []
        if optional and (rest := inner(i, k + 1)) is not None:
            options.append(rest)
        if i < len(letters) and letters[i] == part[0]:
            later, taken = iter(part[1:]), 0
            while True:
                if (rest := inner(i + 1 + taken, k + 1)) is not None:
                    options.append(taken + rest)
                if i + 1 + taken >= len(letters) or letters[i + 1 + taken] not in later:
                    break
                taken += 1
        return min(options) if options else None

    return inner(0, 0)


def _initialisms(phrase: str) -> list[tuple[str, str]]:
    """(name, initials) for each run of 2-6 words of ``phrase`` that starts and ends capitalised.

    Both the capitals' initials and those with the connectors ("Status of Forces Agreement":
    "SFA" and "SOFA"); only initials of 3 to 6 letters.
    """
    words = phrase.replace("-", " ").split()
    found = []
    for i, first in enumerate(words):
        for j in range(i + 1, min(len(words), i + 6)):
            run = words[i : j + 1]
            if not (first[0].isupper() and run[-1][0].isupper()):
                continue
            name = " ".join(run)
            for initials in {
                "".join(w[0] for w in run if w[0].isupper()),
                "".join(w[0].upper() for w in run if w[0].isupper() or w in _CONNECTORS and w != "the"),
            }:
                if 3 <= len(initials) <= 6:
                    found.append((name, initials))
    return found


def _spelled_out(phrase: str, acronym: str) -> str | None:
    """The longest end of ``phrase`` that ``acronym`` abbreviates, or None when none does.

    "The Bureau of Industry and Security" with "BIS" -> "Bureau of Industry and Security".
    """
    last = phrase.replace("-", " ").split()[-1]
    return next((n for n, i in _initialisms(phrase) if i == acronym and n.split()[-1] == last), None)


def _mentions(text: str, name: str) -> bool:
    """A cheap pre-check before the word-boundary search: ``name`` occurs in ``text`` at all."""
    return name in text or name.replace("'", "’") in text


def _name_pattern(name: str) -> str:
    """A name on word boundaries, with either apostrophe ("People's" or "People’s")."""
    return r"\b" + re.escape(name).replace("'", "[’']") + r"\b"


def _country_aliases(text: str) -> dict[str, str]:
    """Capitals, demonyms and alternative names of the countries ``text`` names, to the name it uses."""
    from countryinfo import all_countries

    countries = [country.info() for country in all_countries()]
    spans: list[tuple[int, int, str]] = []  # where each country name occurs, and whose it is
    for info in countries:
        for name in {info.get("name") or "", *(info.get("altSpellings") or [])}:
            if len(name) > 3 and _mentions(text, name):
                spans += [(m.start(), m.end(), info["name"]) for m in re.finditer(_name_pattern(name), text)]

    def inside_another(start: int, end: int, owner: str) -> bool:  # "Republic of China" in "People’s Republic of China"
        return any(s <= start and end <= e and (e - s) > (end - start) and o != owner for s, e, o in spans)

    aliases: dict[str, str] = {}
    for info in countries:
        names = [info.get("name") or "", *(info.get("altSpellings") or [])]
        used = next(
            (
                n
                for n in names
                if len(n) > 3
                and _mentions(text, n)
                and any(
                    not inside_another(m.start(), m.end(), info["name"]) for m in re.finditer(_name_pattern(n), text)
                )
            ),
            None,
        )
        if used is None:
            continue
        capital = info.get("capital") or ""
        candidates = [capital, capital.split(" D.C.")[0], info.get("demonym") or "", *names]
        for alias in candidates:
            alias = alias.strip()
            if (
                alias
                and alias != used
                and alias.isascii()
                and (len(alias) > 3 or alias.isupper())
                and alias.lower() != used.lower()
            ):
                aliases.setdefault(alias, used)
                if alias.isupper() and len(alias) <= 3:  # "US" is also written "U.S."
                    aliases.setdefault("".join(f"{c}." for c in alias), used)
    return dict(sorted(aliases.items()))
