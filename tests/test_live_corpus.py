"""The corpus edited under a running process (issue 12, part 2).

A running :class:`Assistant` checks before each question that the corpus file still holds the text
its build was made from (a ``stat``; a hash only when size or mtime changed). When it does not, it
rebuilds, or with ``auto_rebuild`` off says to run ``essay-assistant index rebuild``; it never quotes
text that is not the file's at the quoted offsets. Each answer carries the build and corpus text it
came from, so sources render from the build that answered even after a rebuild in another shell.
"""

from __future__ import annotations

import os
import shutil

import pytest

from assistant import index
from assistant.api import Assistant
from assistant.config import REPO_ROOT
from assistant.errors import IndexStoreError
from tests.helpers import HUAWEI, TINY_QUESTION, copy_index, run_cli

OLD = "In December 2018, the Japanese government"
NEW = "In December 2019, the Japanese government"
INSERTED = "This paragraph was added after the index was built, so every later offset moves.\n\n"
# The same edit in the tiny corpus (tests/helpers.py TINY_ESSAY) of the unit tests.
TINY_OLD, TINY_NEW = "Japan banned Huawei equipment in 2018.", "Japan banned Huawei equipment in 2019."


@pytest.fixture
def live(tmp_path, assistant):
    """Settings over a private copy of the corpus and of the session's built index."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPO_ROOT / "corpus" / "essay.md", corpus / "essay.md")
    return copy_index(assistant.settings, tmp_path / "idx", corpus_dir=corpus)


def _edit(settings) -> str:
    """Move every offset (a paragraph before the first section) and change the Huawei sentence's year."""
    path = settings.corpus_path
    text = path.read_text(encoding="utf-8")
    assert OLD in text
    first_section = text.index("\n## ") + 1
    edited = text[:first_section] + INSERTED + text[first_section:].replace(OLD, NEW)
    path.write_text(edited, encoding="utf-8")
    return edited


def _edit_tiny(settings) -> str:
    """Move the offsets of the Huawei sentence (a paragraph before it) and change its year."""
    path = settings.corpus_path
    text = path.read_text(encoding="utf-8")
    assert TINY_OLD in text
    edited = text.replace(TINY_OLD, INSERTED + TINY_NEW)
    path.write_text(edited, encoding="utf-8")
    return edited


def _verbatim(answer, text: str) -> None:
    assert answer.citations
    for c in answer.citations:
        assert text[c.start : c.end] == c.quote


@pytest.mark.unit
def test_running_assistant_rebuilds_when_the_corpus_changes(tiny_index):
    assistant = Assistant(tiny_index)
    before = assistant.answer(TINY_QUESTION)
    assert "in 2018" in before.answer
    edited = _edit_tiny(tiny_index)
    after = assistant.answer(TINY_QUESTION)
    _verbatim(after, edited)  # never the old text at shifted offsets
    assert "in 2019" in after.answer and "2018" not in after.answer
    old_start, new_start = (next(c.start for c in a.citations if "Huawei" in c.quote) for a in (before, after))
    assert new_start == old_start + len(INSERTED)
    assert after.build != before.build
    assert index.status(tiny_index).state == "fresh" and index.served_build(tiny_index) == after.build


@pytest.mark.integration
def test_without_auto_rebuild_it_says_to_rebuild_and_quotes_nothing(live):
    own = live.model_copy(update={"auto_rebuild": False})
    assistant = Assistant(own)
    assert "December 2018" in assistant.answer(HUAWEI).answer
    _edit(own)
    with pytest.raises(IndexStoreError) as info:
        assistant.answer(HUAWEI)
    message = str(info.value)
    assert "the essay changed" in message and "run `essay-assistant index rebuild`" in message
    assert "\n" not in message
    # A new process with the same settings says the same, in one line.
    result = run_cli(
        "ask",
        HUAWEI,
        env={
            "ASSISTANT_CORPUS_DIR": str(own.corpus_dir),
            "ASSISTANT_INDEX_DIR": str(own.index_dir),
            "ASSISTANT_AUTO_REBUILD": "false",
        },
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "the essay changed" in result.stderr and "index rebuild" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    index.build(own, force=True, progress=False)  # what the message says to run
    again = assistant.answer(HUAWEI)
    _verbatim(again, own.corpus_path.read_text(encoding="utf-8"))
    assert "December 2019" in again.answer


@pytest.mark.unit
def test_touching_the_corpus_without_changing_it_keeps_the_build(tiny_index):
    assistant = Assistant(tiny_index)
    first = assistant.answer(TINY_QUESTION)
    builds = sorted(p.name for p in (tiny_index.index_dir / "builds").iterdir())
    path = tiny_index.corpus_path
    path.write_bytes(path.read_bytes())  # new mtime, same text
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = assistant.answer(TINY_QUESTION)
    assert second.build == first.build and second.answer == first.answer
    assert sorted(p.name for p in (tiny_index.index_dir / "builds").iterdir()) == builds  # nothing rebuilt


@pytest.mark.integration
def test_answers_carry_the_corpus_of_the_build_that_answered(live):
    """After `index rebuild` in another shell, old and new answers each render from their own text."""
    assistant = Assistant(live)
    before = assistant.answer(HUAWEI)
    edited = _edit(live)
    result = run_cli(
        "--corpus-dir", str(live.corpus_dir), "index", "rebuild", env={"ASSISTANT_INDEX_DIR": str(live.index_dir)}
    )
    assert result.returncode == 0, result.stderr
    after = assistant.answer(HUAWEI)
    assert after.build != before.build and after.build == index.served_build(live)
    assert after.corpus.text == edited
    _verbatim(after, after.corpus.text)
    _verbatim(before, before.corpus.text)  # the earlier answer still renders from its own build's text
    assert OLD in before.corpus.text and NEW in after.corpus.text
