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
import subprocess
import sys

import pytest

from assistant import index
from assistant.api import Assistant
from assistant.config import REPO_ROOT
from assistant.errors import IndexStoreError

HUAWEI = "When did Japan ban Huawei equipment from its ministries?"
OLD = "In December 2018, the Japanese government"
NEW = "In December 2019, the Japanese government"
INSERTED = "This paragraph was added after the index was built, so every later offset moves.\n\n"


@pytest.fixture
def live(tmp_path, assistant):
    """Settings over a private copy of the corpus and of the session's built index."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPO_ROOT / "corpus" / "essay.md", corpus / "essay.md")
    target = tmp_path / "idx"
    shutil.copytree(assistant.settings.index_dir, target, ignore=shutil.ignore_patterns(".lock", ".readers"))
    return assistant.settings.model_copy(update={"corpus_dir": corpus, "index_dir": target})


def _edit(settings) -> str:
    """Move every offset (a paragraph before the first section) and change the Huawei sentence's year."""
    path = settings.corpus_path
    text = path.read_text(encoding="utf-8")
    assert OLD in text
    first_section = text.index("\n## ") + 1
    edited = text[:first_section] + INSERTED + text[first_section:].replace(OLD, NEW)
    path.write_text(edited, encoding="utf-8")
    return edited


def _verbatim(answer, text: str) -> None:
    assert answer.citations
    for c in answer.citations:
        assert text[c.start : c.end] == c.quote


def test_running_assistant_rebuilds_when_the_corpus_changes(live):
    assistant = Assistant(live)
    before = assistant.answer(HUAWEI)
    assert "December 2018" in before.answer
    edited = _edit(live)
    after = assistant.answer(HUAWEI)
    _verbatim(after, edited)  # never the old text at shifted offsets
    assert "December 2019" in after.answer and "December 2018" not in after.answer
    assert after.build != before.build
    assert index.status(live).state == "fresh" and index.served_build(live) == after.build


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
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ask", HUAWEI],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
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


def test_touching_the_corpus_without_changing_it_keeps_the_build(live):
    assistant = Assistant(live)
    first = assistant.answer(HUAWEI)
    builds = sorted(p.name for p in (live.index_dir / "builds").iterdir())
    path = live.corpus_path
    path.write_bytes(path.read_bytes())  # new mtime, same text
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = assistant.answer(HUAWEI)
    assert second.build == first.build and second.answer == first.answer
    assert sorted(p.name for p in (live.index_dir / "builds").iterdir()) == builds  # nothing rebuilt


def test_answers_carry_the_corpus_of_the_build_that_answered(live):
    """After `index rebuild` in another shell, old and new answers each render from their own text."""
    assistant = Assistant(live)
    before = assistant.answer(HUAWEI)
    edited = _edit(live)
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "--corpus-dir", str(live.corpus_dir), "index", "rebuild"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ASSISTANT_INDEX_DIR": str(live.index_dir)},
    )
    assert result.returncode == 0, result.stderr
    after = assistant.answer(HUAWEI)
    assert after.build != before.build and after.build == index.served_build(live)
    assert after.corpus.text == edited
    _verbatim(after, after.corpus.text)
    _verbatim(before, before.corpus.text)  # the earlier answer still renders from its own build's text
    assert OLD in before.corpus.text and NEW in after.corpus.text
