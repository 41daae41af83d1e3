"""The conversation and composed answers (the conversation issue), each kind of fault as a test.

The tests of :func:`assistant.conversation.resolve` need no model, and the questions about the document's
structure none that retrieves well (unit, fake model); the others answer through the real assistant
(integration). The figures on whole scripts are in tests/test_evaluation.py.
"""

from pathlib import Path

import pytest

from assistant import structure
from assistant.answering import NOTHING_MORE, REFUSAL, REFUSED_AGAIN, SHORTER_NOTE
from assistant.conversation import Turn, resolve, turns_from
from assistant.corpus import parse_corpus
from assistant.errors import InvalidQuestionError
from tests.helpers import TINY_ESSAY

COUNTRIES = {"U.S.": "United States", "Tokyo": "Japan", "Japanese": "Japan", "United States": "United States"}


def _turns(*questions: str) -> list[Turn]:
    return turns_from(list(questions), lambda q, ts: resolve(q, ts, countries=COUNTRIES))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("previous", "question"),
    [
        ("When did Japan ban Huawei equipment?", "Who is Jake Sullivan?"),
        ("What is the main argument of the essay?", "What is 'cooperative prohibition'?"),
        ("What is the main argument of the essay?", "Who is Jake Sullivan?"),
        ("When did Japan ban Huawei equipment?", "Is there any mention of Korea?"),
        ("Who is Jake Sullivan?", "What does this essay say about the Netherlands?"),
        ("Who is Jake Sullivan?", "Which official said that chips drive the economy?"),
        # A pronoun after a name in the question itself refers to that name.
        ("Who is Jake Sullivan?", "When did Japan ban Huawei equipment from its ministries?"),
        ("Who is Jake Sullivan?", "Did Abe say he was targeting Huawei?"),
        ("Who is Jake Sullivan?", "why did japan avoid naming china in their rules?"),
        # "it" is the essay.
        ("What is the main argument of the essay?", "who wrote it"),
    ],
)
def test_a_question_that_does_not_lean_on_the_conversation_stands_alone(previous, question):
    resolution = resolve(question, _turns(previous), countries=COUNTRIES)
    assert (resolution.intent, resolution.standalone) == ("new", question)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "intent"),
    [
        # "that" as a pronoun, after a contraction or before a filler or noun, points back ...
        ("why's that important", "why"),
        ("why say that tho", "why"),
        ("why'd that phrase come back", "why"),
        ("n thats which kind of coop", "followup"),
        ("is that line true?", "followup"),
        # ... "that" opening a clause does not.
        ("Did the essay say that Japan named China?", "new"),
        ("Which rule says that companies need approval?", "new"),
    ],
)
def test_that_points_back_only_as_a_pronoun(question, intent):
    previous = Turn("What does the Bluebook say?", "What does the Bluebook say?", cited=((10, 20),))
    assert resolve(question, [previous], countries=COUNTRIES).intent == intent


@pytest.mark.unit
def test_follow_ups_resolve_through_any_number_of_turns():
    turns = _turns("When did the United States ban Huawei?", "When did Japan do that?")
    # The second turn was itself a follow-up: its country replaced the first one's, its topic carried.
    assert turns[1].standalone == "When did Japan do that? (ban Huawei)"
    third = resolve("What did its prime minister say about it?", turns, countries=COUNTRIES)
    assert third.intent == "followup"
    assert third.standalone == "What did its prime minister say about it? (Japan ban Huawei)"


@pytest.mark.unit
def test_a_pronoun_keeps_the_previous_country_when_the_question_names_another():
    # "they" is Japan; China is what they might have named, not a new subject.
    countries = COUNTRIES | {"China": "China"}
    turns = _turns("What chip controls did Japan announce in 2023?")
    resolved = resolve("did they actually name china?", turns, countries=countries)
    assert resolved.standalone == "did they actually name china? (chip controls Japan announce 2023)"
    # With no pronoun standing for it, a country the question names replaces the previous one.
    assert resolve("When did the U.S. do that?", turns, countries=countries).standalone == (
        "When did the U.S. do that? (chip controls announce 2023)"
    )


@pytest.mark.unit
def test_and_x_puts_a_new_subject_into_the_previous_question():
    turns = _turns("When did the U.S. first restrict Huawei?")
    assert resolve("and Japan?", turns, countries=COUNTRIES).standalone == "When did Japan first restrict Huawei?"
    abe = _turns("What did Abe say about the Huawei ban?")
    assert resolve("And Nishimura?", abe).standalone == "What did Nishimura say about the Huawei ban?"
    assert resolve("what about Tokyo?", turns, countries=COUNTRIES).standalone == (
        "When did Tokyo first restrict Huawei?"
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("previous", "question", "standalone"),
    [
        # Two countries side by side give way to the new one once, not "the Netherlands and the Netherlands".
        (
            "What did Japan and the Netherlands agree in January 2023?",
            "What about the Netherlands?",
            "What did the Netherlands agree in January 2023?",
        ),
        # A preposition already before the country is not doubled ("the capital of of Japan").
        ("What is the capital of France?", "And of Japan?", "What is the capital of Japan?"),
        # With no country to replace, a country is added: it never takes the place of a month.
        (
            "What did the foreign ministry say in January 2023?",
            "What about the Netherlands?",
            "What did the foreign ministry say in January 2023 (the Netherlands)?",
        ),
    ],
)
def test_a_new_country_takes_the_place_of_the_previous_ones(previous, question, standalone):
    countries = COUNTRIES | {"Netherlands": "Netherlands", "France": "France"}
    turns = turns_from([previous], lambda q, ts: resolve(q, ts, countries=countries))
    assert resolve(question, turns, countries=countries).standalone == standalone


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("why?", "why"),
        ("Why is that?", "why"),
        ("how come", "why"),
        ("Tell me more.", "more"),
        ("go on", "more"),
        ("anything else?", "more"),
        ("Put that in simpler words, one sentence", "shorter"),
        ("shorter please", "shorter"),
        ("Why would Japan say that?", "why"),
    ],
)
def test_conversational_requests_work_on_the_previous_answer(question, intent):
    previous = Turn("When did Japan ban Huawei?", "When did Japan ban Huawei?", cited=((10, 20),))
    resolution = resolve(question, [previous])
    assert resolution.intent == intent
    assert resolution.previous == previous and resolution.shown == {(10, 20)}


@pytest.mark.integration
def test_an_unrelated_question_is_not_answered_from_the_history(assistant):
    answer = assistant.answer("Who is Jake Sullivan?", history=["When did Japan ban Huawei equipment?"])
    assert answer.standalone_question == "Who is Jake Sullivan?"
    assert "Sullivan" in answer.answer and "Huawei" not in answer.answer


@pytest.mark.integration
@pytest.mark.parametrize(
    ("previous", "question", "expected"),
    [
        ("What did Japan announce in March 2023?", "Starting when?", "starting July 2023"),
        ("What are the two case studies?", "Which company?", "Huawei"),
    ],
)
def test_a_question_declined_alone_is_answered_on_the_conversations_topic(assistant, previous, question, expected):
    # No pronoun leans back, but alone the essay does not answer it: read on the previous topic.
    assert assistant.answer(question).refused
    answer = assistant.answer(question, history=[assistant.answer(previous)])
    assert not answer.refused and expected in answer.answer
    assert answer.standalone_question.startswith(question) and answer.standalone_question != question


@pytest.mark.integration
def test_a_declined_question_that_names_something_stays_declined(assistant):
    # It is about what it names, answered or not: never read on the previous topic.
    first = assistant.answer("What did Japan announce in March 2023?")
    answer = assistant.answer("Who is Yasutoshi Nishimura's deputy?", history=[first])
    assert answer.refused and answer.standalone_question == "Who is Yasutoshi Nishimura's deputy?"
    # A name the essay never uses is still a name; and a declined turn sets no topic to read it on.
    declined = assistant.answer("What is the GDP of Japan?")
    after = assistant.answer("What did Gazprom do?", history=[declined])
    assert after.refused and after.standalone_question == "What did Gazprom do?"
    assert assistant.answer("Starting when?", history=[declined]).refused


@pytest.mark.integration
def test_why_gives_the_reason_for_the_previous_claim_without_repeating_it(assistant):
    first = assistant.answer("What did the success of U.S. controls hinge on?")
    assert "parallel rules" in first.answer
    why = assistant.answer("Why?", history=[first])
    assert "third-country suppliers" in why.answer
    assert not {(c.start, c.end) for c in why.citations} & {(c.start, c.end) for c in first.citations}
    # The README's example: the reason the essay gives, not the next event ("In March 2023, Japan once again…").
    first = assistant.answer("When did the U.S. first restrict Huawei?")
    second = assistant.answer("And Japan?", history=[first])
    why = assistant.answer("Why?", history=[first, second])
    assert why.standalone_question == "Why did Japan first restrict Huawei?"
    assert "justification" in why.answer and "March 2023" not in why.answer


@pytest.mark.unit
def test_a_reason_runs_on_through_sentences_that_point_back(fake_assistant):
    # "This gesture could include … These steps would project stability …": the second sentence
    # opens with no connective, yet it goes on with the reason, so it is part of it.
    answerer = fake_assistant._load().answerer
    texts = answerer.sentences.texts
    row = next(r for r, text in enumerate(texts) if text.startswith("This gesture could include"))
    chain = [texts[s.row] for s in answerer._chain(answerer._row(row))]
    assert len(chain) == 2 and chain[1].startswith("These steps would project stability")


@pytest.mark.integration
def test_more_and_shorter_work_on_what_was_quoted(assistant):
    first = assistant.answer("What did Japan's Minister Nishimura say about the chip curbs?")
    more = assistant.answer("Tell me more", history=[first])
    assert not more.refused and more.answer != first.answer
    assert not {(c.start, c.end) for c in more.citations} & {(c.start, c.end) for c in first.citations}
    shorter = assistant.answer("Shorter please, one sentence", history=[first, more])
    assert shorter.answer.startswith(SHORTER_NOTE)
    assert len(shorter.citations) == 1
    assert (shorter.citations[0].start, shorter.citations[0].end) in {(c.start, c.end) for c in more.citations}


@pytest.mark.integration
def test_more_says_so_when_the_essay_has_nothing_more(assistant):
    history = [assistant.answer("Where did the author teach on the JET Program?")]
    for _ in range(6):
        history.append(assistant.answer("tell me more", history=history))
        if history[-1].answer == NOTHING_MORE:
            break
    assert history[-1].answer == NOTHING_MORE and history[-1].refused


@pytest.mark.integration
def test_a_follow_up_never_repeats_the_previous_answer(assistant):
    first = assistant.answer("When did Japan ban Huawei equipment from its ministries?")
    again = assistant.answer("When did they do that?", history=[first])
    assert again.answer != first.answer
    # "Why?" of a claim no sentence marks a reason for: the sentences around it, not the answer again.
    first = assistant.answer("whats the conclusion of the essay")
    why = assistant.answer("why does it say that?", history=[first])
    assert why.citations and not {(c.start, c.end) for c in why.citations} & {(c.start, c.end) for c in first.citations}


@pytest.mark.integration
def test_a_refusal_after_a_refusal_says_so_rather_than_repeat_it(assistant):
    first = assistant.answer("how do you bake bread?")
    second = assistant.answer("tell me a joke", history=[first])
    assert first.refused and second.refused
    assert first.answer.startswith(REFUSAL) and second.answer.startswith(REFUSED_AGAIN)


@pytest.mark.integration
def test_length_short_normal_long(assistant):
    question = "What did Japan do in March 2023?"
    short = assistant.answer(question, length="short")
    normal = assistant.answer(question)
    long = assistant.answer(question, length="long")
    assert len(short.citations) == 1
    assert len(short.citations) <= len(normal.citations) <= len(long.citations)
    assert len(long.answer) >= len(normal.answer)
    with pytest.raises(InvalidQuestionError, match="length must be one of short, normal, long"):
        assistant.answer(question, length="tiny")


@pytest.mark.unit
def test_questions_about_the_document_are_answered_from_its_structure(fake_assistant):
    assistant = fake_assistant
    count = assistant.answer("How many references does the essay have?")
    assert "26 numbered references" in count.answer and count.citations[0].passage_id == "ref-26"
    sections = assistant.answer("List the sections of the essay.")
    for heading in ("U.S. Technology Controls", "Cooperating and Hedging: Japan’s Strategy", "Paths Forward"):
        assert f"“{heading}”" in sections.answer
    one = structure.answer("How many references does the essay have?", parse_corpus(TINY_ESSAY, Path("essay.md")))
    assert one is not None and one.lead == "The essay lists one numbered reference (1):"
    japanese = assistant.answer("Which references are in Japanese?")
    assert "11, 12, 18" in japanese.answer
    # Entry 18 does not fit under the quotes' length cap after 11 and 12: the answer says so.
    assert [c.passage_id for c in japanese.citations] == ["ref-11", "ref-12"]
    assert japanese.answer.endswith("Not quoted, for length: reference 18.")
    chinese = assistant.answer("Which sources are in Chinese?")  # "Chinese" reads "China" through the lexicon
    assert "13, 14, 15, 16, 17, 19" in chinese.answer
    uncited = assistant.answer("Which references are never cited in the text?")
    assert "13, 14, 15, 16, 17" in uncited.answer
    for answer in (count, sections, japanese, chinese, uncited):
        assert not answer.refused and answer.citations


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("List the sections of the essay.", "sections"),
        ("what are the section headings", "sections"),
        ("sections?", "sections"),
        ("what sections are there", "sections"),
        # A question about what a section says is not about the structure.
        ("which section talks about hedging?", None),
        ("summarize the sections of the essay", None),
    ],
)
def test_a_question_about_the_sections_alone_is_a_structure_question(question, kind):
    assert structure.classify(question, parse_corpus(TINY_ESSAY, Path("essay.md"))) == kind


@pytest.mark.integration
def test_a_timeline_lists_every_dated_step_in_date_order(assistant):
    answer = assistant.answer("Give me a timeline of the US actions against Huawei")
    text = answer.answer
    positions = [text.find(d) for d in ("December 2017", "May 2019", "August 2019")]
    assert -1 not in positions and positions == sorted(positions)


@pytest.mark.integration
def test_a_timeline_dates_a_month_or_a_relative_time_by_the_sentences_before_it(assistant):
    # "In July, …" follows "In November 2023, …" (so July 2024); "The week prior, …" comes just before it.
    text = assistant.answer("chronology of the china japan thaw pls").answer
    positions = [text.find(s) for s in ("In November 2023", "The week prior", "In July, Chinese")]
    assert -1 not in positions and positions == sorted(positions)


@pytest.mark.integration
def test_a_section_summary_has_a_sentence_from_each_paragraph(assistant):
    answer = assistant.answer("Summarize the section on Japan's cooperating and hedging strategy")
    paragraphs = {c.passage_id.split("-")[1] for c in answer.citations}
    assert len(paragraphs) >= 4
    assert {c.section for c in answer.citations} == {"Cooperating and Hedging: Japan’s Strategy"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("gimme summary of the japan section", "Cooperating and Hedging: Japan’s Strategy"),
        ("ok sum up the us controls section", "U.S. Technology Controls"),
    ],
)
def test_a_section_named_loosely_is_summarised(fake_assistant, question, section):
    # The heading that shares more of the question's words than any other is the one meant.
    answer = fake_assistant.answer(question)
    assert answer.citations and {c.section for c in answer.citations} == {section}


@pytest.mark.integration
def test_a_summary_quotes_no_question_of_the_essay(assistant):
    # "What exactly did Sullivan mean?" opens an introductory paragraph but states nothing.
    answer = assistant.answer("Summarize the essay")
    assert len(answer.citations) >= 3
    assert not any(c.quote.rstrip('”’" ').endswith("?") for c in answer.citations)


@pytest.mark.integration
def test_a_comparison_quotes_both_sides(assistant):
    answer = assistant.answer(
        "How was Beijing's reaction to Tokyo's restrictions different from its reaction to Washington's?"
    )
    assert not answer.refused and "Japanese technology restrictions" in answer.answer
    assert "American actions" in answer.answer or "unilateral protectionism" in answer.answer  # the U.S. side


@pytest.mark.integration
def test_the_essays_own_questions_and_title_never_answer(assistant):
    answer = assistant.answer("What did he say?", history=["Who is Jake Sullivan?"])
    assert "What exactly did Sullivan mean?" not in answer.answer
    compare = assistant.answer("How does Japan's messaging on its tech controls differ from Washington's?")
    assert "Bonding Over Bans" not in compare.answer


@pytest.mark.integration
def test_suggested_follow_ups_come_from_the_evidence_and_are_never_declined(assistant):
    first = assistant.answer("When did Japan ban Huawei equipment?")
    suggestions = assistant.follow_ups(first)
    assert suggestions == [
        "Why did Japan ban Huawei equipment?",
        "Tell me more",
        "Summarize the section “Cooperating and Hedging: Japan’s Strategy”",
    ]
    for suggestion in suggestions:
        assert not assistant.answer(suggestion, history=[first]).refused
    refusal = assistant.answer("What is the capital of Peru?")
    assert refusal.refused and assistant.follow_ups(refusal) == []  # a refusal gets none


@pytest.mark.integration
def test_what_the_essay_says_about_a_topic_spans_its_sections(assistant):
    answer = assistant.answer("What does the essay say about Huawei?")
    sections = {c.section for c in answer.citations}
    assert {"U.S. Technology Controls", "Cooperating and Hedging: Japan’s Strategy"} <= sections
    assert all("Huawei" in c.quote for c in answer.citations)


@pytest.mark.unit
def test_more_after_a_reference_entry_adds_no_essay_paragraph_of_the_same_number(fake_assistant):
    # A reference entry's `paragraph` is its number: showing entry 9 is not showing essay paragraph 9.
    answerer = fake_assistant._load().answerer
    entry = answerer.sentences.rows_of("ref-09")[0]
    span = answerer.sentences.spans[entry]
    question = answerer.reranker.read("Tell me more")
    draft = answerer.more(question, [], {(span.start, span.end)}, "normal")
    assert draft.refused and draft.text == NOTHING_MORE
