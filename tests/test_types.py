"""The names of kinds and states in assistant/types.py agree with the code that produces them."""

from typing import get_args

import pytest

from assistant import llm, question
from assistant.config import Settings
from assistant.types import LENGTHS, Backend, QuestionKind, ReplyFormat

pytestmark = pytest.mark.unit


def test_question_kinds_are_the_classifier_kinds_and_fact():
    assert set(get_args(QuestionKind)) == {kind for kind, _ in question._TYPES} | {"fact"}


def test_every_question_kind_is_a_profile_kind():
    assert question.profile("Who wrote the essay?").kind == "author"
    assert question.profile("What happened to the weather?").kind == "fact"


def test_lengths_keep_their_order():
    assert LENGTHS == ("short", "normal", "long")


def test_backends_are_the_llm_setting_values():
    for backend in get_args(Backend):
        assert Settings(llm=backend).llm == backend
    with pytest.raises(ValueError):
        Settings(llm="bogus")


def test_reply_formats_are_the_llm_formats():
    assert set(llm.FORMATS) == set(get_args(ReplyFormat))
