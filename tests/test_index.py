import json
import subprocess
import sys

import pytest

from assistant import index
from assistant.chunking import chunk_corpus
from assistant.corpus import load_corpus
from assistant.embeddings import MAX_TOKENS, get_embedder
from assistant.errors import IndexStoreError


@pytest.fixture(scope="module")
def passages(settings):
    embedder = get_embedder(settings)
    return chunk_corpus(load_corpus(settings.corpus_path), embedder.count_tokens, settings.chunk_tokens)


def test_no_passage_exceeds_model_input_limit(settings, passages):
    embedder = get_embedder(settings)
    counts = [embedder.count_tokens(p.text) for p in passages]
    assert max(counts) <= MAX_TOKENS
    essay = [c for c, p in zip(counts, passages, strict=False) if p.kind == "essay"]
    assert max(essay) <= settings.chunk_tokens


def test_passages_carry_metadata_and_offsets(settings, passages):
    text = load_corpus(settings.corpus_path).text
    kinds = {p.kind for p in passages}
    assert kinds == {"essay", "reference"}
    assert sum(p.kind == "reference" for p in passages) == 26
    for p in passages:
        assert text[p.start : p.end] == p.text
    huawei = next(p for p in passages if "December 2018" in p.text)
    assert huawei.section == "Cooperating and Hedging: Japan’s Strategy"
    assert 9 in huawei.refs


def test_ids_are_deterministic(settings, passages):
    again = chunk_corpus(load_corpus(settings.corpus_path), get_embedder(settings).count_tokens, settings.chunk_tokens)
    assert [p.id for p in again] == [p.id for p in passages]
    assert len({p.id for p in passages}) == len(passages)


def test_index_holds_exactly_the_passages(assistant, passages):
    loaded = index.open_index(assistant.settings)
    assert list(loaded.passages) == sorted((p.id for p in passages), key=lambda i: loaded.passages[i].start)
    assert set(loaded.passages) == {p.id for p in passages}


def test_status_fresh_then_stale_when_chunking_changes(assistant):
    assert index.status(assistant.settings).state == "fresh"
    other = assistant.settings.model_copy(update={"chunk_tokens": assistant.settings.chunk_tokens + 8})
    state = index.status(other)
    assert state.state == "stale"
    assert any("chunking" in reason for reason in state.reasons)


def test_rebuild_twice_keeps_passage_count_and_ids(tmp_path, settings, passages):
    own = settings.model_copy(update={"index_dir": tmp_path / "idx"})
    assert index.status(own).state == "missing"
    first = index.build(own, force=True, progress=False)
    second = index.build(own, force=True, progress=False)
    assert first.path != second.path
    loaded = index.open_index(own)
    assert len(loaded.passages) == len(passages) == second.manifest["passage_count"]
    assert loaded.store._collection.count() == len(passages)
    # Only the served build and the one before it are kept.
    assert len(list((own.index_dir / "builds").iterdir())) == 2
    # A fresh index is not rebuilt by `build`.
    assert index.build(own, progress=False).path == second.path


def test_manifest_records_what_built_it(assistant):
    manifest = index.status(assistant.settings).manifest
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["model_sha256"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert len(manifest["corpus_sha256"]) == 64
    assert manifest["chunking"]["chunk_tokens"] == assistant.settings.chunk_tokens
    for key in ("passage_count", "package_version", "built_at"):
        assert key in manifest


def test_killed_rebuild_leaves_old_index_serving(tmp_path, settings):
    own = settings.model_copy(update={"index_dir": tmp_path / "idx"})
    served = index.build(own, progress=False).path
    script = (
        "import os, assistant.index as ix\n"
        "from assistant.config import Settings\n"
        f"s = Settings(index_dir={str(own.index_dir)!r})\n"
        "ix._swap_current = lambda *a: os._exit(9)  # die after writing, before the swap\n"
        "ix.build(s, force=True, progress=False)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == 9
    assert index.current_build(own.index_dir) == served
    assert index.status(own).state == "fresh"
    assert index.build(own, force=True, progress=False).path != served


def test_corrupted_index_gives_rebuild_hint(tmp_path, settings):
    own = settings.model_copy(update={"index_dir": tmp_path / "idx"})
    build = index.build(own, progress=False).path
    for db in build.glob("*.sqlite3"):
        db.write_bytes(b"this is not a database")
    with pytest.raises(IndexStoreError, match="index rebuild"):
        index.open_index(own)


def test_manifest_edit_makes_index_stale(tmp_path, settings):
    own = settings.model_copy(update={"index_dir": tmp_path / "idx"})
    build = index.build(own, progress=False).path
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["corpus_sha256"] = "0" * 64
    (build / "manifest.json").write_text(json.dumps(manifest))
    assert index.status(own).state == "stale"
    # Answering rebuilds a stale index rather than serving it.
    assert index.open_index(own).path != build
