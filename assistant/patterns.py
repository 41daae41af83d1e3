"""The regular expressions (and their parts) that more than one module uses.

Month names, years, a footnote marker "(9)", and the discourse markers that tie a sentence to
the one before it. A pattern only one module needs stays in that module; where two modules
need something similar but not the same, each version has its own name here and says how it
differs. Every pattern is English and case-sensitive unless it says otherwise.
"""

from __future__ import annotations

import re

# --- dates ---------------------------------------------------------------------------------------

# Month names in calendar order, lower case: ``MONTHS.index(name) + 1`` is the month's number.
MONTHS: tuple[str, ...] = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# The capitalised month names as an alternation, no boundaries: "January|February|…|December".
MONTH_NAMES = "|".join(m.title() for m in MONTHS)
# A month's abbreviation as people write dates ("Dec. 10, 2018", "dec 2018", "Sept. 2019"): with its period,
# or before a number. Group 1 is the abbreviation; "May" has none.
MONTH_ABBREVIATION = re.compile(r"\b(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)(?:\.|(?=\s+\d))", re.I)


def expand_month_abbreviations(text: str) -> str:
    """``text`` with month abbreviations (:data:`MONTH_ABBREVIATION`) written out: "Dec. 2018" -> "December 2018"."""

    def full(match: re.Match[str]) -> str:
        start = match.group(1).lower()[:3]
        return next(m for m in MONTHS if m.startswith(start)).title()

    return MONTH_ABBREVIATION.sub(full, text)


# A year 1900..2099 as digits, no boundaries (to build patterns from).
YEAR_DIGITS = r"(?:19|20)\d\d"
# A year 1900..2099 as a word.
YEAR = re.compile(rf"\b{YEAR_DIGITS}\b")
# What a date question asks for: a year 1800..2099 (one more century than YEAR) or a capitalised
# month name, as a word; group 1 is the match.
YEAR_OR_MONTH = re.compile(rf"\b(1[89]\d\d|20\d\d|{MONTH_NAMES})\b")
# A time given relative to another ("a year later", "two weeks earlier", "the week prior"): it answers
# "when" as a date does. Group 1 is the match.
_COUNT = r"(?:an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|several|a few|\d+)"
RELATIVE_TIME = re.compile(
    rf"\b({_COUNT} (?:years?|months?|weeks?|days?) (?:later|earlier|prior|before|after|ago)|"
    r"the (?:year|month|week|day) (?:prior|before|after))\b",
    re.I,
)

# --- footnote markers ----------------------------------------------------------------------------

# The shape of a footnote marker, "(9)": one or two digits in parentheses; group 1 is the number.
# Which "(n)" are footnotes is assistant.corpus.footnotes_in's call ("(1) security and (2) growth"
# has the shape too). The chat UI links "(n)" of up to three digits (assistant/ui/rendering.py).
FOOTNOTE = re.compile(r"\((\d{1,2})\)")

# --- discourse markers at the start of a sentence, used to keep linked sentences together ------

# Points back at the sentence before it ("This action…", "Crucially, this policy…").
CONTINUATION = re.compile(r"^(?:\w+, )?(?:[Tt]his|[Tt]hese|[Tt]hat|[Tt]hose|[Ss]uch|It|He|She|They|The latter)\b")
# Only makes sense after the sentence before it ("Instead, …", "Yet …"). The citation checker
# strips a different set of openers, each followed by a comma (DISCOURSE_OPENER below).
CONNECTIVE = re.compile(
    r"^(Instead|However|Yet|But|Still|Rather|Therefore|Thus|Hence|As such|Indeed|Moreover|In addition)\b"
)
# An opener with its comma that adds nothing to what a clause says ("Indeed, …", "Crucially, …"), with the
# spaces after it: the citation checker strips it before reading a corpus clause. Unlike CONNECTIVE it
# needs the comma and includes openers that link to nothing ("Clearly,", "To be sure,", "For instance,").
DISCOURSE_OPENER = re.compile(
    r"^(?:Indeed|However|Yet|Instead|Still|Moreover|Finally|Crucially|Clearly|In addition|To be sure|For instance),\s*"
)
# Draws a consequence from the sentence before it ("As such, …").
CONSEQUENCE = re.compile(r"^(As such|Therefore|Thus|Hence|Consequently|As a result|For this reason|So)\b")
# States a contrast anywhere in the sentence (the other side of a comparison); any case.
CONTRAST = re.compile(
    r"\b(in (stark )?contrast|contrast(s|ed)? with|whereas|unlike|while|rather than|instead|on the other hand|"
    r"not\b[^.;]{1,60}?\bbut|same cannot be said|goes both ways|by comparison)\b",
    re.I,
)

# --- what a question asks about ------------------------------------------------------------------

# Asks about the essay's conclusion: "the conclusion", "how does it wrap up", "the last paragraph";
# not "a foregone conclusion" or "cited in the conclusion" (where it only locates a detail). Any case.
CONCLUSION = re.compile(
    r"(?<!foregone )(?<!in the )\bconclusion\b|\b(?:closing|final|last) (?:section|paragraph|takeaway)s?\b|"
    r"\bwrap(?:s|ped)? (?:it )?up\b|"
    r"\bhow does (?:the |this )?(?:essay|article|piece|author|it) (?:end|close|conclude)\b",
    re.I,
)
