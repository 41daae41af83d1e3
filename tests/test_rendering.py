"""The chat UI's rendering (assistant/ui/rendering.py): pure functions checked on a small essay made here.

No model, index, Gradio or browser: each answer is built by hand, its citations' offsets found in the
essay text, so every expected string below is exact.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from html import escape
from pathlib import Path

import pytest

from assistant import api
from assistant.corpus import parse_corpus
from assistant.overview import build_overview
from assistant.types import Answer, Citation, Passage, ReferenceInfo, RetrievedPassage
from assistant.ui import rendering, static_text

pytestmark = pytest.mark.unit

ESSAY = """# Bans & <Bonds>

Jane Doe (Tokyo, 2024)

Japan banned the equipment in 2018. (1) It said no company was named.

## Second <Section>

Tokyo weighed the cost of <script>alert('x')</script> and $$x^2$$ rules. Markets noticed. (7)

## References

(1) Jane Roe, “Japan Bans Kit,” Nikkei Asia, December 10, 2018, https://example.org/a?b=1&c=2.
"""
CORPUS = parse_corpus(ESSAY, Path("essay.md"))
REF_1 = CORPUS.references[1]
BANNED = "Japan banned the equipment in 2018. (1)"  # paragraph 1, sentence 1
SCRIPT = "Tokyo weighed the cost of <script>alert('x')</script> and $$x^2$$ rules."  # paragraph 2, sentence 1
BANNED_AT = ESSAY.index(BANNED)


def _cite(n: int, passage_id: str, section: str, quote: str, *refs: int) -> Citation:
    """Citation ``n`` of ``quote``, a sentence of ESSAY, with the reference entries ``refs``."""
    start = ESSAY.index(quote)
    infos = tuple(ReferenceInfo(r, CORPUS.references[r].text, CORPUS.references[r].url) for r in refs)
    return Citation(n, passage_id, section, quote, start, start + len(quote), "essay.md", infos)


CITE_BANNED = _cite(1, "essay-01-1", "Introduction", BANNED, 1)
CITE_SCRIPT = _cite(2, "essay-02-1", "Second <Section>", SCRIPT)


def _passage(pid: str, number: int) -> Passage:
    para = CORPUS.paragraphs[number]
    return Passage(
        id=pid,
        kind="essay",
        section=para.section,
        paragraph=para.number,
        start=para.start,
        end=para.end,
        text=ESSAY[para.start : para.end],
        refs=para.footnotes,
        sentences=para.sentences,
    )


def _answer(**changes) -> Answer:
    fields = {
        "question": "When did Japan ban it?",
        "answer": f"{BANNED} [1]",
        "refused": False,
        "citations": [CITE_BANNED],
        "passages": [
            RetrievedPassage(
                _passage("essay-01-1", 1), fused_score=0.04871, dense=0.7351, bm25=9.6, rerank_score=0.9054
            ),
            RetrievedPassage(_passage("essay-02-1", 2), fused_score=0.03, dense=None, bm25=None, rerank_score=0.0791),
        ],
        "timings_ms": {"total": 41.6},
    }
    return Answer(**(fields | changes))


def _marker(turn: int, n: int) -> str:
    return (
        f'<button type="button" class="ea-marker ea-k-{turn}-{n}" '
        f'title="Show source {n}" aria-label="Show source {n}">[{n}]</button>'
    )


def _without_details(html: str) -> str:
    """``html`` with each ``<details>…</details>`` toggle cut out: what the reader sees unopened."""
    return re.sub(r"<details>.*?</details>", "", html)


# --- messages --------------------------------------------------------------------------------


def test_question_is_escaped_and_math_stays_as_typed():
    assert rendering.render_question("<script>alert('x')</script>") == (
        '<div class="ea-msg ea-question">&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</div>'
    )
    # No Markdown or LaTeX is applied here (and the chat has its LaTeX delimiters off): shown as typed.
    assert rendering.render_question('$$x^2$$ **bold** & "q"') == (
        '<div class="ea-msg ea-question">$$x^2$$ **bold** &amp; &quot;q&quot;</div>'
    )


def test_plain_answer_lists_each_quote_with_its_footnoted_reference():
    expected = (
        f"{BANNED} [1]\n"
        "\n"
        "Sources:\n"
        f"[1] Introduction: “{BANNED}” (essay.md, characters {BANNED_AT}–{BANNED_AT + len(BANNED)})\n"
        f"    (1) {REF_1.text}"
    )
    assert rendering.plain_answer(_answer()) == expected
    assert rendering.plain_answer(_answer(answer="The essay does not say.", refused=True, citations=[])) == (
        "The essay does not say."
    )


def test_extractive_answer_has_markers_sources_copy_text_and_no_repeated_quote():
    html = rendering.render_answer(_answer(), 3)
    assert html.startswith(f'<div class="ea-msg ea-answer ea-turn-3"><p class="ea-text">{BANNED} {_marker(3, 1)}</p>')
    # The source line says where the quote is from and its footnote; the answer already is the quote.
    assert (
        f"<div class='ea-src'>{_marker(3, 1)} <span class='ea-where'>Introduction — essay-01-1 · refs (1)</span></div>"
        in html
    )
    assert html.count(BANNED) == 3  # the answer, and the copy text's answer and Sources lines
    copy_lines = re.search(r'<div class="ea-copytext">(.*?)</div>', html).group(1)
    # One escaped <span> per line of the plain text (the reference's "&" too).
    assert re.findall(r"<span>(.*?)</span>", copy_lines) == [
        escape(line) for line in rendering.plain_answer(_answer()).split("\n")
    ]
    assert "https://example.org/a?b=1&amp;c=2.</span>" in copy_lines
    assert html.endswith(
        '<div class="ea-actions"><button type="button" class="ea-copy" '
        'aria-label="Copy the answer and its sources as plain text">Copy</button></div></div>'
    )
    assert "ea-note" not in html


def test_answer_text_and_quotes_are_escaped():
    answer = _answer(answer=f"{SCRIPT} [2]", citations=[CITE_SCRIPT], backend="openai")
    html = rendering.render_answer(answer, 1)
    assert "<script" not in html
    escaped = "Tokyo weighed the cost of &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; and $$x^2$$ rules."
    assert f'<p class="ea-text">{escaped} {_marker(1, 2)}</p>' in html
    # An LLM's answer is not the quotes: each source shows its quote, and a note says who wrote it.
    assert f"<span class='ea-where'>Second &lt;Section&gt; — essay-02-1</span><br>“{escaped}”</div>" in html
    assert '<p class="ea-note">Written by the openai LLM; every sentence checked against the essay.</p>' in html


def test_only_the_first_bracket_of_each_number_becomes_a_marker():
    html = rendering.render_answer(_answer(answer=f"{BANNED} [1] See [1] again."), 1)
    assert f"{_marker(1, 1)} See [1] again." in html


def test_fallback_note_escapes_the_reason():
    html = rendering.render_answer(_answer(fallback="LLM said <nonsense>"), 1)
    assert (
        '<p class="ea-note">The LLM’s answer was not used (LLM said &lt;nonsense&gt;); quoting the essay instead.</p>'
    ) in html


def test_long_llm_quote_is_shortened_at_a_word():
    long_quote = "abcdefgh " * 22  # 198 characters; the 160th falls inside the 18th word
    citation = Citation(1, "essay-01-1", "Introduction", long_quote, 0, 198, "essay.md")
    shown = re.search(r"<br>“(.*?)”</div>", rendering.render_answer(_answer(citations=[citation], backend="ollama"), 1))
    assert shown.group(1) == "abcdefgh " * 17 + "…"
    short = replace(citation, quote="abcdefgh " * 17)  # 153 characters: shown whole
    assert f"<br>“{'abcdefgh ' * 17}”</div>" in rendering.render_answer(_answer(citations=[short], backend="ollama"), 1)


def test_messages_alternate_question_and_answer_by_turn():
    first, second = _answer(), _answer(question="And <then>?")
    assert rendering.messages([first, second]) == [
        {"role": "user", "content": rendering.render_question("When did Japan ban it?")},
        {"role": "assistant", "content": rendering.render_answer(first, 1)},
        {"role": "user", "content": '<div class="ea-msg ea-question">And &lt;then&gt;?</div>'},
        {"role": "assistant", "content": rendering.render_answer(second, 2)},
    ]
    assert rendering.messages([]) == []


def test_notice_is_an_escaped_alert():
    assert rendering.render_notice("Question <too> long") == (
        '<div class="ea-notice" role="alert">⚠ Question &lt;too&gt; long</div>'
    )


# --- the Source panel ----------------------------------------------------------------------------


def test_source_panel_highlights_the_quote_in_its_paragraph_with_its_reference():
    html = rendering.render_sources_panel(CORPUS, [_answer()])
    end = BANNED_AT + len(BANNED)
    assert html == (
        f'<div class="ea-panel"><p class="ea-hint">{rendering.SOURCE_HINT}</p>'
        '<div class="ea-cite" data-cite="1-1" hidden><h4>[1] Introduction</h4>'
        f'<div class="ea-meta">paragraph 1 · passage essay-01-1 · essay.md, characters {BANNED_AT}–{end}</div>'
        f'<p class="ea-para"><mark class="ea-hl">{BANNED}</mark> It said no company was named.</p>'
        "<div><strong>References</strong><ol class='ea-refs'><li><strong>(1)</strong> Japan Bans Kit — "
        'Nikkei Asia, December 10, 2018 <a href="https://example.org/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer">https://example.org/a?b=1&amp;c=2</a></li></ol></div></div></div>'
    )


def test_source_panel_keys_entries_by_turn_and_escapes_the_paragraph():
    second = _answer(answer=f"{SCRIPT} [1]", citations=[replace(CITE_SCRIPT, n=1)])
    html = rendering.render_sources_panel(CORPUS, [_answer(), second])
    assert re.findall(r'data-cite="([\d-]+)"', html) == ["1-1", "2-1"]
    assert "<script" not in html
    assert (
        '<mark class="ea-hl">Tokyo weighed the cost of &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; '
        "and $$x^2$$ rules.</mark> Markets noticed. (7)</p>"
    ) in html
    assert (
        rendering.render_sources_panel(CORPUS, [])
        == f'<div class="ea-panel"><p class="ea-hint">{rendering.SOURCE_HINT}</p></div>'
    )


def test_source_panel_shows_a_cited_reference_entry_as_its_own_passage():
    cite = Citation(1, "ref-01", "References", REF_1.text, REF_1.start, REF_1.end, "essay.md")
    html = rendering.render_sources_panel(CORPUS, [_answer(citations=[cite])])
    assert f"reference (1) · passage ref-01 · essay.md, characters {REF_1.start}–{REF_1.end}" in html
    assert '<mark class="ea-hl">Jane Roe, “Japan Bans Kit,” Nikkei Asia' in html


def test_corpus_of_prefers_the_answers_own_build():
    edited = parse_corpus(ESSAY.replace("2018", "2019"), Path("essay.md"))
    assert rendering.corpus_of(api.Answer(**_answer().__dict__, corpus=edited), CORPUS) is edited
    assert rendering.corpus_of(api.Answer(**_answer().__dict__), CORPUS) is CORPUS
    assert rendering.corpus_of(_answer(), CORPUS) is CORPUS
    assert rendering.corpus_of(None, CORPUS) is CORPUS


# --- the Evidence panel --------------------------------------------------------------------------


def test_evidence_hint_before_any_answer():
    assert (
        rendering.render_evidence(None, 0.5)
        == f'<div class="ea-evidence"><p class="ea-hint">{rendering.EVIDENCE_HINT}</p></div>'
    )


def test_evidence_reads_without_developer_scores_which_sit_behind_details():
    html = rendering.render_evidence(_answer(), 0.55, CORPUS)
    visible = _without_details(html)
    for developer_word in ("rerank", "fused", "dense", "BM25", "0.905", "0.0487", "0.735", "9.60"):
        assert developer_word not in visible
    assert visible == (
        '<div class="ea-evidence"><p class="ea-standalone"><strong>Searched as:</strong> When did Japan ban it?</p>'
        '<p class="ea-meta">The passages found for it, best first; <em>Details</em> shows the scores.</p>'
        '<ol class="ea-ev-list">'
        "<li class='ea-ev ea-cited' data-passage='essay-01-1' value='1'>"
        "<div class='ea-ev-where'>Introduction, paragraph 1</div>"
        f"<blockquote class='ea-ev-sentence'>{BANNED}</blockquote>"
        "<div class='ea-ev-why'>Quoted in the answer as [1]. It shares 2 of the question’s key words.</div></li>"
        "<li class='ea-ev' data-passage='essay-02-1' value='2'>"
        "<div class='ea-ev-where'>Second &lt;Section&gt;, paragraph 2</div>"
        "<blockquote class='ea-ev-sentence'>Tokyo weighed the cost of "
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; and $$x^2$$ rules.</blockquote>"
        "<div class='ea-ev-why'>Found for the question but not quoted: other sentences answer it better.</div></li>"
        '</ol><p class="ea-meta">Answered in 42 ms.</p></div>'
    )
    details = re.findall(r"<details>.*?</details>", html)
    assert details[0] == (
        "<details><summary>Details</summary><dl><dt>passage</dt><dd>essay-01-1</dd>"
        "<dt title='best sentence score of the reranker, 0..1'>rerank</dt><dd>0.905</dd>"
        "<dt title='reciprocal-rank fusion score'>fused</dt><dd>0.0487</dd>"
        "<dt title='cosine similarity'>dense</dt><dd>0.735</dd><dt>BM25</dt><dd>9.60</dd></dl>"
        f"<p>{BANNED} It said no company was named.</p></details>"
    )
    assert "<dt title='cosine similarity'>dense</dt><dd>—</dd><dt>BM25</dt><dd>—</dd>" in details[1]


def test_evidence_without_the_corpus_shows_the_passage_text():
    # Without the corpus text there are no sentence offsets to read: the passage itself (under 240 characters).
    shown = re.findall(
        r"<blockquote class='ea-ev-sentence'>(.*?)</blockquote>", rendering.render_evidence(_answer(), 0.55)
    )
    paragraph_2 = CORPUS.paragraphs[2]
    assert shown == [escape(BANNED), escape(ESSAY[paragraph_2.start : paragraph_2.end])]


def test_evidence_says_a_follow_up_was_made_standalone_and_a_cited_passage_was_not_ranked():
    unranked = RetrievedPassage(_passage("essay-01-1", 1), fused_score=None, dense=None, bm25=None, rerank_score=0.5)
    answer = _answer(question="And <when>?", standalone_question="When did Japan ban it?", passages=[unranked])
    html = _without_details(rendering.render_evidence(answer, 0.55, CORPUS))
    assert (
        '<strong>Searched as:</strong> When did Japan ban it?<br><span class="ea-meta">Your follow-up was made '
        "standalone with the previous question.</span></p>"
    ) in html
    assert ("The search did not rank it among its candidates; it is shown because the answer cites it.</div>") in html


def test_evidence_explains_a_refusal_with_its_numbers_or_says_nothing_was_searched():
    declined = _answer(answer="The essay does not say.", refused=True, citations=[], answerability=0.281)
    html = rendering.render_evidence(declined, 0.55, CORPUS)
    assert (
        '<div class="ea-declined" role="status"><strong>The assistant declined.</strong> No passage of the essay '
        "answers this question (its answerability 0.28 is below the refusal threshold 0.55, or the question names "
        "something the essay never mentions), so it does not guess."
    ) in html
    assert "key words" not in html  # shared words are no reason when nothing answers
    not_searched = _answer(answer="This question looks like <French>.", refused=True, citations=[], passages=[])
    assert rendering.render_evidence(not_searched, 0.55) == (
        '<div class="ea-evidence"><p class="ea-standalone"><strong>Searched as:</strong> When did Japan ban it?</p>'
        '<div class="ea-declined" role="status"><strong>Not searched.</strong> This question looks like '
        '&lt;French&gt;.</div><p class="ea-meta">Answered in 42 ms.</p></div>'
    )


# --- the essay, the overview and the export --------------------------------------------------------


def test_essay_links_known_footnotes_and_marks_the_cited_sentences():
    html = rendering.render_essay(CORPUS, _answer(citations=[CITE_BANNED, CITE_SCRIPT]))
    link = '<a class="ea-fn" href="#ea-ref-1" title="Reference 1">(1)</a>'
    assert html.startswith(
        '<article class="ea-essay"><h2>Bans &amp; &lt;Bonds&gt;</h2><p class="ea-meta">Jane Doe (Tokyo, 2024)</p>'
        '<p class="ea-hint">Highlighted: the sentences quoted in the answer to “When did Japan ban it?”.</p>'
        "<h3>Introduction</h3>"
        f'<p><mark class="ea-hl" id="ea-cited-1"><span class="ea-hl-n">[1]</span>'
        f"Japan banned the equipment in 2018. {link}</mark> It said no company was named.</p>"
    )
    assert "Markets noticed. (7)</p>" in html  # no reference 7: not a link
    assert '<mark class="ea-hl" id="ea-cited-2"><span class="ea-hl-n">[2]</span>Tokyo weighed' in html
    assert "<script" not in html
    # The reference list, its entries the footnotes' targets (entries are not linked inside).
    assert html.endswith(
        '<h3 id="ea-references">References</h3><ol class="ea-refs"><li id="ea-ref-1">Jane Roe, “Japan Bans Kit,” '
        "Nikkei Asia, December 10, 2018, https://example.org/a?b=1&amp;c=2.</li></ol></article>"
    )


def test_essay_without_an_answer_has_no_highlight():
    html = rendering.render_essay(CORPUS)
    assert "<mark" not in html and "ea-hint" not in html
    assert html.count('class="ea-fn"') == 1  # paragraph 1's "(1)"; "(7)" has no entry, the list links none


def test_overview_escapes_title_and_counts_paragraphs():
    html = rendering.render_overview(build_overview(CORPUS))
    assert html.startswith(
        '<div class="ea-overview"><h2>Bans &amp; &lt;Bonds&gt;</h2>'
        '<p class="ea-meta">by Jane Doe (Tokyo, 2024) · 1 references</p>'
        "<details><summary>Outline</summary><ol class='ea-outline'>"
        "<li>Introduction <span class='ea-meta'>(1 ¶)</span></li>"
        "<li>Second &lt;Section&gt; <span class='ea-meta'>(1 ¶)</span></li></ol></details>"
    )


def test_conversation_markdown_keeps_quotes_references_and_refusals():
    follow = _answer(question="Why?", standalone_question="Why did Japan ban it?")
    refused = _answer(question="GDP?", answer="The essay does not say.", refused=True, citations=[])
    end = BANNED_AT + len(BANNED)
    assert rendering.conversation_markdown(build_overview(CORPUS), [_answer(), follow, refused]) == (
        "# Conversation about “Bans & <Bonds>”\n\nEssay by Jane Doe (Tokyo, 2024).\n\n"
        f"## 1. When did Japan ban it?\n\n{BANNED} [1]\n\n"
        f"- [1] Introduction — essay-01-1 (essay.md, characters {BANNED_AT}–{end})\n"
        f"  > {BANNED}\n"
        f"  - (1) {REF_1.text}\n\n"
        f"## 2. Why?\n\n*Searched as:* Why did Japan ban it?\n\n{BANNED} [1]\n\n"
        f"- [1] Introduction — essay-01-1 (essay.md, characters {BANNED_AT}–{end})\n"
        f"  > {BANNED}\n"
        f"  - (1) {REF_1.text}\n\n"
        "## 3. GDP?\n\nThe essay does not say.\n\n"
        "*The essay does not answer this question; any sentences quoted are only related.*\n"
    )


# --- the stylesheet: readable in dark mode ---------------------------------------------------------


def _rules(css: str) -> list[tuple[list[str], str]]:
    """``css``'s rules as (selectors, body), comments dropped."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    return [([s.strip() for s in sel.split(",")], body) for sel, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)]


def test_every_fixed_colour_has_a_dark_mode_twin_and_styles_a_class_the_rendering_uses():
    rules = _rules(static_text("chat.css"))
    dark = {s.removeprefix(".dark ") for selectors, _ in rules for s in selectors if s.startswith(".dark ")}
    fixed = {
        s
        for selectors, body in rules
        if re.search(r"(?:^|;)\s*(?:color|background)\s*:\s*#[0-9a-f]{6}", body)
        for s in selectors
        if not s.startswith(".dark ")
    }
    assert fixed == {
        ".ea-where",
        ".ea-notice",
        "mark.ea-hl",
        ".ea-meta",
        ".ea-hint",
        ".ea-note",
        ".ea-declined",
    }
    assert fixed <= dark
    rendered = "".join(
        [
            rendering.render_answer(_answer(fallback="x"), 1),
            rendering.render_notice("x"),
            rendering.render_sources_panel(CORPUS, [_answer()]),
            rendering.render_evidence(_answer(refused=True, answerability=0.1), 0.5, CORPUS),
        ]
    )
    used = {name for names in re.findall(r"class=[\"']([^\"']*)[\"']", rendered) for name in names.split()}
    assert {selector.rsplit(".", 1)[1] for selector in fixed} <= used


def test_importing_the_ui_loads_no_gradio():
    probe = (
        "import sys, json, assistant.ui; print(json.dumps(sorted(m for m in sys.modules if m.startswith('gradio'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
