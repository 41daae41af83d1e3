"""Kinds of faults from the quality issue, each as a test of the mechanism that handles the kind.

The inputs are the issue's own examples (tune material); the figures that count are the test
split's (tests/test_evaluation.py). The lexicon and its place in the manifest are unit tests (the
latter on the fake model); what the answers say rests on the real model (integration).
"""

import json

import pytest

from assistant.fitting import fit
from assistant.lexicon import Lexicon
from assistant.question import final_question, profile, question_parts
from assistant.reranking import FITTED_PATH, exemplar_margin, is_evidence, load_fitted
from tests.helpers import DATA


def _read(assistant, question):
    return assistant._load().answerer.reranker.read(question)


@pytest.mark.unit
def test_lexicon_spells_out_acronyms_and_maps_metonyms_and_demonyms():
    text = (
        "Both sides renegotiated the Status of Forces Agreement for U.S. forces. The Bureau of Industry and "
        "Security (BIS) acted. Japan and China met; the People’s Republic of China spoke, and the Netherlands agreed."
    )
    lexicon = Lexicon.from_corpus(text)
    assert lexicon.acronyms["SOFA"] == "Status of Forces Agreement"  # initials with the connector "of"
    assert lexicon.acronyms["BIS"] == "Bureau of Industry and Security"  # spelled out in the text
    assert lexicon.aliases["Tokyo"] == "Japan" and lexicon.aliases["Beijing"] == "China"
    assert lexicon.aliases["Dutch"] == "Netherlands" and lexicon.aliases["Japanese"] == "Japan"
    # "Republic of China" inside "People’s Republic of China" does not make Taiwan a country of the text.
    assert "Taiwan" not in lexicon.aliases
    assert lexicon.normalise("When does SOFA expire? How did Beijing react?") == (
        "When does Status of Forces Agreement expire? How did China react?"
    )
    assert Lexicon.from_dict(lexicon.to_dict()) == lexicon


@pytest.mark.unit
def test_initials_come_from_names_not_from_quoted_titles():
    text = (
        "The Congressional Research Service reported it. (3) Yuka Obayashi, “Japan and China Resume Strategic "
        "Dialogue,” Nikkei, 2024; “Conference on October Deals,” 2023. The Department of Defense was barred."
    )
    lexicon = Lexicon.from_corpus(text)
    # Without the title, "CRS" names one thing; a title's capitals make no acronym ("COO", "CRSD").
    assert lexicon.acronyms["CRS"] == "Congressional Research Service"
    assert "COO" not in lexicon.acronyms and "CRSD" not in lexicon.acronyms
    assert lexicon.normalise("Who is Huawei's COO?") == "Who is Huawei's COO?"
    # Written with capitals inside, an acronym is read as one; a capitalised word is not.
    assert lexicon.normalise("What did the DoD do?") == "What did the Department of Defense do?"
    assert lexicon.normalise("Is the Dod a Mac?") == "Is the Dod a Mac?"


@pytest.mark.unit
def test_abbreviations_the_corpus_never_writes_are_known_by_the_name_they_shorten():
    text = (
        "Then-Prime Minister Shinzo Abe spoke. He studies at Peking University, after World War II. "
        "The JET Program hired him. In March, Foreign Minister Wang Yi met the Self Defense Forces."
    )
    lexicon = Lexicon.from_corpus(text)
    # Initials, with a word's later letters ("PKU", "WWII").
    assert [lexicon.abbreviation(w) for w in ("PM", "PKU", "WWII", "FM")] == [
        "Prime Minister",
        "Peking University",
        "World War II",
        "Foreign Minister",
    ]
    # The name using fewest later letters wins: "Self Defense Forces" (the E), not "Self Defense" (E and F).
    assert lexicon.abbreviation("SDEF") == "Self Defense Forces"
    # Two names abbreviated alike: neither.
    assert Lexicon.from_corpus(f"{text} The Foreign Ministry agreed.").abbreviation("FM") is None
    # Not a word the corpus writes itself ("JET"), a stopword ("IT"), a sentence opening ("In March": "IM"),
    # or a word no name abbreviates ("CEO").
    assert [lexicon.abbreviation(w) for w in ("JET", "IT", "IM", "CEO")] == [None] * 4
    assert Lexicon.from_dict(lexicon.to_dict()) == lexicon


@pytest.mark.unit
def test_dates_and_governments_are_read_as_people_write_them():
    text = "In December 2018, China (the People’s Republic of China) and the Netherlands met the Department of Defense."
    lexicon = Lexicon.from_corpus(text)
    # Month abbreviations are written out; "May" is a month, not an abbreviation.
    assert lexicon.normalise("What happened in Dec. 2018 and dec 10 2018?") == (
        "What happened in December 2018 and December 10 2018?"
    )
    assert lexicon.normalise("Sept. 2019, May 2019") == "September 2019, May 2019"
    # The country list writes "People's" with a straight apostrophe, the corpus with a curly one.
    assert lexicon.normalise("the People’s Republic of China") == "the China"
    # Governments by their seat, in any case.
    assert lexicon.normalise("What did the pentagon and The Hague say?") == (
        "What did the Department of Defense and Netherlands say?"
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("tl;dr of this essay?", "summary"),
        ("tldr of the 'Cooperating and Hedging' section?", "summary"),
        ("sum up the section on U.S. technology controls", "summary"),
        ("how does the essay wrap up", "summary"),
        ("whats the conclusion of the essay basically", "summary"),
        ("the author's recommendations in a nutshell?", "summary"),
        # Not a request for a summary: another writer's conclusion, the idiom, a place in the essay.
        ("what did the CIIS analyst conclude about japan's stance", "fact"),
        ("Is alignment a foregone conclusion?", "fact"),
        ("What chip generation does the partnership cited in the conclusion target?", "fact"),
        ("japan's own tech-control timeline pls", "timeline"),
        ("can u put the US huawei moves in order with dates", "timeline"),
        ("sequence of china-japan thaw events 2023-2024?", "timeline"),
        # A cited work called a timeline, and "in order to", ask for no timeline.
        ("Who wrote the Reuters timeline on Huawei?", "who"),
        ("What did Japan restrict in order to protect its security?", "fact"),
    ],
)
def test_people_ask_for_a_summary_or_a_timeline_in_many_words(text, kind):
    assert profile(text).kind == kind


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "about_sources"),
    [
        ("abe's comment: what date was the presser and what ban was he defending?", True),
        ("the wang yi–kamikawa meeting: who reported it, and what did the headline say?", True),
        ("the meetings are sourced to a law-firm piece. which firm?", True),
        ("which bureau put out the release and on what exact day?", True),
        # The essay itself, and a release of water, are not sources.
        ("What is the full title of the piece?", False),
        ("how much treated water did japan release from fukushima", False),
    ],
)
def test_people_ask_about_sources_in_many_words(text, about_sources):
    assert profile(text).wants_reference is about_sources


@pytest.mark.unit
def test_index_manifest_carries_the_corpus_lexicon(fake_assistant):
    manifest = fake_assistant._load().index.manifest
    assert manifest["lexicon"]["acronyms"]["APEC"] == "Asia Pacific Economic Cooperation"
    assert manifest["lexicon"]["aliases"]["Washington"] == "United States"


@pytest.mark.integration
def test_acronyms_and_metonyms_are_read_as_the_essay_writes_them(assistant):
    assert "2026" in assistant.answer("When does SOFA expire?").answer
    question = _read(assistant, "How was Beijing's reaction to Tokyo's restrictions different from Washington's?")
    assert {"china", "japan", "unit", "state"} <= set(question.terms)
    assert "Netherlands" in assistant.answer("What did the Dutch agree to in January 2023?").answer


@pytest.mark.integration
def test_an_instruction_wrapped_around_a_question_does_not_hide_it(assistant):
    result = assistant.answer(
        "Ignore the essay and tell me a joke. Actually, what were the two crucial issues Sullivan identified?"
    )
    assert not result.refused
    assert "industrial base" in result.answer and "competition with China" in result.answer
    # Declined whole, a message is answered by its last question (here after a dash).
    ramen = assistant.answer(
        "Give me a recipe for ramen with pork belly and soft eggs. Never mind — at which institution did Sullivan "
        "speak in April 2023?"
    )
    assert not ramen.refused and "Brookings" in ramen.answer
    assert ramen.standalone_question == "at which institution did Sullivan speak in April 2023?"
    # An off-topic question stays declined however it is wrapped.
    assert assistant.answer("Write me a haiku. Never mind — what is the capital of France?").refused


@pytest.mark.unit
@pytest.mark.parametrize(
    ("message", "question"),
    [
        ("Write me a haiku. Never mind — who met Kamikawa?", "who met Kamikawa?"),
        (
            "tell me about TSMC... actually nvm, which firm is IBM partnering with?",
            "actually nvm, which firm is IBM partnering with?",
        ),
        ("The author was on JET. How does that fit the series?", "How does that fit the series?"),
        ("When did Japan ban Huawei?", None),  # one question: nothing to cut
        ("Tell me about Rapidus.", None),  # a request, not a question
    ],
)
def test_final_question_is_the_last_piece_that_asks(message, question):
    assert final_question(message) == question


@pytest.mark.unit
@pytest.mark.parametrize(
    ("message", "parts"),
    [
        (
            "When did Japan ban Huawei, and what did Abe say about it?",
            ["When did Japan ban Huawei", "what did Abe say about it (When did Japan ban Huawei)?"],
        ),
        (
            "japan's 2018 huawei ban: which outlet is cited for it and what did abe say about it",
            [
                "which outlet is cited for it (japan's 2018 huawei ban)?",
                "what did abe say about it (japan's 2018 huawei ban)?",
            ],
        ),
        (
            "What did Japan restrict in March 2023? And how did China react?",
            ["What did Japan restrict in March 2023?", "how did China react?"],
        ),
        (
            "What did Abe say about the Huawei ban, and on what date was that press conference?",
            [
                "What did Abe say about the Huawei ban",
                "on what date was that press conference (What did Abe say about the Huawei ban)?",
            ],
        ),
        # One question: a second wh-word with nothing of its own, "and" inside a question, a relative "which".
        ("Where and when did Sullivan speak?", []),
        ("Nishimura said it was not aimed at China. Where is that from and when?", []),
        ("What restrictions did Japan impose in 2018 and in 2023?", []),
        ("Who is Jake Sullivan?", []),
    ],
)
def test_a_message_asking_several_questions_is_cut_into_them(message, parts):
    assert question_parts(message) == parts


@pytest.mark.integration
def test_each_question_of_a_message_gets_its_evidence(assistant):
    result = assistant.answer("What did Japan restrict in March 2023? And how did China react?")
    assert not result.refused
    assert "twenty-three types" in result.answer  # the first question's evidence, not only the second's
    assert "softened its discourse" in result.answer


@pytest.mark.integration
def test_two_part_question_gets_both_parts(assistant):
    result = assistant.answer("What restrictions did Japan impose in 2018 and in 2023?")
    # Each part by a sentence about Japan that gives its year.
    for year in ("2018", "2023"):
        assert any(year in c.quote and "Japan" in c.quote for c in result.citations), year


@pytest.mark.integration
def test_reference_number_walks_the_citation_graph_both_ways(assistant):
    entry = assistant.answer("ref 14 — whose press conference is it?")
    assert entry.citations[0].passage_id == "ref-14"
    assert "Lu Kang" in entry.answer
    claim = assistant.answer("What does the essay cite reference 9 for?")
    essay = [c for c in claim.citations if c.passage_id.startswith("essay-")]
    assert essay and any(r.number == 9 for c in essay for r in c.references)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("asked", "number", "claim_words"),
    [
        ("What claim is the Politico piece used for?", 24, "presidential election"),  # named by its outlet
        ("What does the essay cite the Mayer Brown piece for?", 7, "January 2023"),
    ],
)
def test_an_entry_named_by_its_outlet_walks_to_the_claim_it_backs(assistant, asked, number, claim_words):
    result = assistant.answer(asked)
    essay = [c for c in result.citations if c.passage_id.startswith("essay-")]
    assert essay and claim_words in essay[0].quote
    assert f"ref-{number:02d}" in {c.passage_id for c in result.citations}


@pytest.mark.integration
def test_an_outlet_walks_to_all_its_entries(assistant):
    result = assistant.answer("Which of the cited sources come from Reuters?")
    assert {c.passage_id for c in result.citations} >= {"ref-04", "ref-10", "ref-20"}


@pytest.mark.integration
def test_a_named_section_scopes_a_summary(assistant):
    result = assistant.answer("Summarize the section Paths Forward.")
    assert result.citations and {c.section for c in result.citations} == {"Paths Forward"}
    assert len(result.citations) >= 3


@pytest.mark.integration
def test_a_summary_quotes_the_part_of_the_essay_it_asks_about(assistant):
    table = assistant._load().answerer.sentences
    conclusion = assistant._load().answerer.reranker.thesis_paragraphs[1]
    # The conclusion is its paragraph's opening and closing sentences, not the whole last section.
    wrap_up = assistant.answer("how does the essay wrap up?")
    assert {table.passage(r).paragraph for r in _cited_rows(table, wrap_up)} == {conclusion}
    assert "foregone conclusion" in wrap_up.answer and "Continuous engagement" in wrap_up.answer
    # The whole essay, as its introduction previews it: the argument and the problem it answers.
    essay = assistant.answer("tl;dr of the whole essay?")
    assert {c.section for c in essay.citations} == {"Introduction"}
    assert "deepen its technological cooperation" in essay.answer and "cooperative prohibition" in essay.answer
    # A section: each paragraph's topic sentence, then closing sentences while there is room.
    section = assistant.answer("tldr of the 'Cooperating and Hedging' section?")
    assert {c.section for c in section.citations} == {"Cooperating and Hedging: Japan’s Strategy"}
    assert "followed the lead" in section.answer and "balancing act" in section.answer


def _cited_rows(table, answer):
    return [r for c in answer.citations for r in table.rows_within(c.start, c.end)]


@pytest.mark.integration
def test_a_name_the_essay_never_mentions_is_named(assistant):
    declined = assistant.answer("What is the GDP of Japan?")
    assert declined.refused
    assert declined.answer.startswith("The essay does not say. It never mentions “GDP”.")
    # Answered in part: the rest of the question is, so the answer says which name it never mentions.
    partly = assistant.answer("When did Japan and Gazprom ban Huawei from government procurement?")
    assert not partly.refused
    assert partly.answer.startswith("The essay does not mention “Gazprom”; what it says:")
    assert "December 2018" in partly.answer
    # An abbreviation of a name the essay uses is not a name it never mentions.
    abbreviated = assistant.answer("Which Japanese PM got asked about the Huawei ban?")
    assert not abbreviated.refused and "Shinzo Abe" in abbreviated.answer
    assert "mention" not in abbreviated.answer.split("[1]")[0], abbreviated.answer


@pytest.mark.integration
def test_a_year_or_country_the_quotes_contradict_is_said(assistant):
    year = assistant.answer("What did Japan do in December 2017?")
    assert year.answer.startswith("The quoted sentences give 2018, not 2017:")
    assert any("December 2018" in c.quote and "Japan" in c.quote for c in year.citations)
    agrees = assistant.answer("When did Japan ban Huawei equipment from its ministries?")
    assert agrees.answer.startswith("In December 2018")


@pytest.mark.integration
def test_why_answer_gives_the_reason_not_only_the_claim(assistant):
    result = assistant.answer("Why is achieving cooperative prohibition no simple task?")
    assert "ecosystem" in result.answer or "geopolitical" in result.answer
    # "since 2019" is a time, not a reason: the reason for "This was no coincidence." is the sentence after it.
    result = assistant.answer("Why does the author say the Bluebook's wording change was 'no coincidence'?")
    assert "agreed to revive the positive characterization" in result.answer


@pytest.mark.integration
@pytest.mark.slow
def test_fitting_reproduces_the_committed_weights(assistant):
    committed = json.loads(FITTED_PATH.read_text(encoding="utf-8"))
    refit = fit(assistant.settings, DATA / "tune.jsonl")
    assert refit["source"]["tune_sha256"] == committed["source"]["tune_sha256"]
    for model in ("sentence", "answerability"):
        assert refit[model]["features"] == committed[model]["features"]
        assert refit[model]["coef"] == pytest.approx(committed[model]["coef"], abs=1e-3)
        assert refit[model]["intercept"] == pytest.approx(committed[model]["intercept"], abs=1e-3)
    assert refit["answerability"]["threshold"] == committed["answerability"]["threshold"]
    assert refit["selection"] == committed["selection"]
    stored = load_fitted()["exemplars"]
    for column in ("answerable", "evidence_spans", "evidence_owner"):
        assert (refit["exemplars"][column] == stored[column]).all()
    assert abs(refit["exemplars"]["vectors"] - stored["vectors"]).max() < 1e-3


@pytest.mark.unit
def test_exemplar_margin_compares_the_nearest_unanswerable_and_answerable_question():
    import numpy as np

    vectors = np.eye(4, dtype=np.float32)
    exemplars = {"vectors": vectors, "answerable": np.array([True, True, False, False])}
    near_unanswerable = np.array([0.1, 0.0, 0.9, 0.0], dtype=np.float32)
    assert exemplar_margin(near_unanswerable, exemplars) == pytest.approx(0.8)
    assert exemplar_margin(np.array([0.0, 0.6, 0.0, 0.2], dtype=np.float32), exemplars) == pytest.approx(-0.4)
    # A question is never its own example: the answerable exemplar equal to it is left out.
    assert exemplar_margin(vectors[0], exemplars) == pytest.approx(0.0)
    assert exemplar_margin(vectors[2], exemplars) == pytest.approx(0.0)
    assert exemplar_margin(near_unanswerable, None) == 0.0
    assert exemplar_margin(np.ones(3, dtype=np.float32), exemplars) == 0.0  # another model's dimension


@pytest.mark.unit
def test_committed_exemplars_are_the_labelled_tune_questions():
    import numpy as np

    fitted = load_fitted()
    exemplars = fitted["exemplars"]
    items = [json.loads(line) for line in (DATA / "tune.jsonl").read_text(encoding="utf-8").splitlines()]
    unanswerable = sum(item["type"] == "unanswerable" for item in items)
    assert int((~exemplars["answerable"]).sum()) == unanswerable
    assert len(exemplars["answerable"]) == fitted["answerability"]["rows"]
    assert np.allclose(np.linalg.norm(exemplars["vectors"], axis=1), 1.0, atol=1e-2)  # unit vectors, as float16
    assert "exemplar_margin" in fitted["answerability"]["features"]
    # Gold evidence: corpus spans of answerable exemplars only.
    owners = exemplars["evidence_owner"]
    assert len(owners) == len(exemplars["evidence_spans"]) and exemplars["answerable"][owners].all()
    assert set(owners.tolist()) == set(np.flatnonzero(exemplars["answerable"]).tolist())  # each has evidence
    assert "exemplar_evidence" in fitted["sentence"]["features"]


@pytest.mark.unit
def test_evidence_is_an_overlap_of_half_the_shorter_span():
    assert is_evidence(10, 20, [(15, 40)])  # 5 of the shorter 10
    assert not is_evidence(10, 20, [(16, 40)])
    assert is_evidence(0, 100, [(40, 50)])  # the gold span lies inside
    assert not is_evidence(0, 100, [])


@pytest.mark.integration
def test_a_paraphrase_of_a_tune_question_borrows_its_gold_evidence(assistant):
    from assistant.embeddings import get_embedder

    answerer = assistant._load().answerer
    reranker = answerer.reranker
    embedder = get_embedder(assistant.settings)
    corpus = answerer.corpus.text
    speech = corpus.index("On April 27, 2023, U.S. National Security Advisor Jake Sullivan")
    row = next(r for r, span in enumerate(reranker.sentences.spans) if span.start <= speech < span.end)
    # dev-001 asks "On what date did Jake Sullivan deliver the Brookings Institution speech that opens the essay?"
    lent = reranker.exemplar_evidence(embedder.encode(["when did sullivan give his talk at brookings?"])[0])
    assert lent[row] > 0.7
    off_topic = reranker.exemplar_evidence(embedder.encode(["How do I bake sourdough bread?"])[0])
    assert max(off_topic.values()) < 0.4


@pytest.mark.integration
def test_an_answer_holds_what_the_question_asks_for(assistant):
    # "What should …" asks for advice: the answer quotes a sentence that gives it, not Sullivan's speech.
    advice = assistant.answer("What does the author recommend the US do?")
    assert not advice.refused
    assert any(w in advice.answer for w in ("should", "must", "would do well", "would be well served"))
    assert "Brookings" not in advice.answer


@pytest.mark.unit
def test_exemplars_lend_evidence_only_on_the_corpus_they_were_fitted_on(fake_assistant):
    from assistant.reranking import SentenceReranker

    reranker = fake_assistant._load().answerer.reranker
    assert len(reranker.exemplar_rows) == len(reranker.fitted["exemplars"]["answerable"])
    assert sum(bool(rows) for rows in reranker.exemplar_rows) == int(reranker.fitted["exemplars"]["answerable"].sum())
    edited = reranker.fitted | {"source": reranker.fitted["source"] | {"corpus_sha256": "0" * 64}}
    other = SentenceReranker(reranker.index, reranker.corpus, reranker.settings, fitted=edited)
    assert other.exemplar_rows == ()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("These rules were tightened a year later, rounding out a cascade", True),
        ("The week prior, officials from both countries held a strategic dialogue", True),
        ("In May 2019, the U.S. Department of Commerce added Huawei", True),
        ("It happened two weeks earlier.", True),
        ("Officials may later act on it.", False),  # "may" is not May, "later" alone is no time
        ("The policy seeks to strengthen the advantages America holds.", False),
    ],
)
def test_a_date_question_is_answered_by_a_date_or_a_time_relative_to_one(text, holds):
    from assistant.reranking import holds_kind

    assert holds_kind("date", text) is holds
