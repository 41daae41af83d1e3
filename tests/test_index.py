"""The index: chunking with the real tokenizer and the real build's manifest (integration); build, atomic
swap, manifest, staleness, CURRENT/PREVIOUS, reader leases and failed builds with the fake model (unit).
"""

import gc
import json
import os
import subprocess
import sys
from importlib.metadata import version

import numpy as np
import pytest

from assistant import index
from assistant.api import Assistant
from assistant.chunking import chunk_corpus
from assistant.config import REPO_ROOT
from assistant.corpus import load_corpus
from assistant.embeddings import MAX_TOKENS, get_build_embedder, get_embedder
from assistant.errors import IndexStoreError
from assistant.index import builder
from tests.helpers import FAKE_MODEL, TINY_QUESTION

# --- integration: the real tokenizer and model -------------------------------------------------


@pytest.fixture(scope="module")
def passages(settings):
    embedder = get_embedder(settings)
    return chunk_corpus(load_corpus(settings.corpus_path), embedder.count_tokens, settings.chunk_tokens)


@pytest.mark.integration
def test_no_passage_exceeds_model_input_limit(settings, passages):
    embedder = get_embedder(settings)
    counts = [embedder.count_tokens(p.text) for p in passages]
    assert max(counts) <= MAX_TOKENS
    essay = [c for c, p in zip(counts, passages, strict=False) if p.kind == "essay"]
    assert max(essay) <= settings.chunk_tokens


@pytest.mark.integration
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


@pytest.mark.integration
def test_ids_are_deterministic(settings, passages):
    again = chunk_corpus(load_corpus(settings.corpus_path), get_embedder(settings).count_tokens, settings.chunk_tokens)
    assert [p.id for p in again] == [p.id for p in passages]
    assert len({p.id for p in passages}) == len(passages)


@pytest.mark.integration
@pytest.mark.slow
def test_build_and_question_encoders_give_the_same_vectors(settings, passages):
    """Builds embed through sentence-transformers, questions through the NumPy encoder: the same vectors."""
    questions, builds = get_embedder(settings), get_build_embedder(settings)
    assert questions.uses_numpy and not builds.uses_numpy
    # One model folder, so the manifest's model identity names the vectors of both.
    assert builds.model_dir == questions.model_dir and builds.identity == questions.identity
    text = load_corpus(settings.corpus_path).text
    texts = [p.text for p in passages] + [text[s.start : s.end] for p in passages for s in p.sentences]
    texts.append(text)  # the whole essay: far past max_seq_length, so both must truncate alike
    assert questions.count_tokens(text) > MAX_TOKENS
    a, b = questions.encode(texts), builds.encode(texts)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.99999


@pytest.mark.integration
def test_manifest_records_what_built_it(assistant):
    manifest = index.status(assistant.settings).manifest
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["model_sha256"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert manifest["model_modules"] == ["Transformer", "Pooling", "Normalize"] and manifest["dimension"] == 384
    assert len(manifest["corpus_sha256"]) == 64
    assert manifest["chunking"]["chunk_tokens"] == assistant.settings.chunk_tokens
    for key in ("passage_count", "package_version", "built_at"):
        assert key in manifest


# --- unit: the fake model ----------------------------------------------------------------------


def _fake_passages(settings):
    return chunk_corpus(load_corpus(settings.corpus_path), get_embedder(settings).count_tokens, settings.chunk_tokens)


def _builds(settings) -> list[str]:
    return sorted(p.name for p in (settings.index_dir / "builds").iterdir())


def _pointer(settings, name: str) -> str:
    return (settings.index_dir / name).read_text(encoding="utf-8")


@pytest.mark.unit
def test_first_build_writes_its_manifest_and_points_current_at_it(tiny_settings, fake_embedder):
    own = tiny_settings
    assert index.status(own).state == "missing" and index.served_build(own) is None
    built = index.build(own, progress=False)
    assert built.state == "fresh" and built.path == own.index_dir / "builds" / built.build
    assert _pointer(own, "CURRENT") == built.build and index.served_build(own) == built.build
    assert not (own.index_dir / "PREVIOUS").exists()
    assert _builds(own) == [built.build]  # no staging folder left
    on_disk = json.loads((built.path / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == built.manifest == index.status(own).manifest
    assert on_disk["model"] == FAKE_MODEL and on_disk["model_sha256"] == fake_embedder.weights_sha256
    assert on_disk["model_identity"] == fake_embedder.identity["digest"]
    assert on_disk["model_modules"] == ["DeterministicFakeEmbedding"] and on_disk["dimension"] == 32
    assert on_disk["corpus_file"] == "essay.md" and on_disk["corpus_sha256"] == load_corpus(own.corpus_path).sha256
    assert on_disk["chunking"] == {
        "chunk_tokens": own.chunk_tokens,
        "chunker_version": index.CHUNKER_VERSION,
        "sentence_splitter": f"nupunkt {version('nupunkt')}",
    }
    assert (on_disk["passage_count"], on_disk["sentence_count"]) == (3, 5)
    assert [p.id for p in _fake_passages(own)] == ["essay-00-1", "essay-01-1", "ref-01"]
    # A fresh index is not rebuilt by `build`.
    assert index.build(own, progress=False).build == built.build and _builds(own) == [built.build]


@pytest.mark.unit
def test_index_holds_exactly_the_passages(fake_assistant):
    passages = _fake_passages(fake_assistant.settings)
    loaded = index.open_index(fake_assistant.settings)
    assert list(loaded.passages) == sorted((p.id for p in passages), key=lambda i: loaded.passages[i].start)
    assert set(loaded.passages) == {p.id for p in passages}
    assert loaded.store._collection.count() == len(passages) == loaded.manifest["passage_count"]
    table = loaded.sentences
    assert table.vectors.shape == (sum(len(p.sentences) for p in passages), 32)
    assert len(table) == len(table.passage_ids) == len(table.spans) == table.vectors.shape[0]


@pytest.mark.unit
def test_status_fresh_then_stale_when_chunking_changes(fake_assistant):
    assert index.status(fake_assistant.settings).state == "fresh"
    other = fake_assistant.settings.model_copy(update={"chunk_tokens": fake_assistant.settings.chunk_tokens + 8})
    state = index.status(other)
    assert state.state == "stale"
    splitter = f"nupunkt {version('nupunkt')}"
    before = {
        "chunk_tokens": other.chunk_tokens - 8,
        "chunker_version": index.CHUNKER_VERSION,
        "sentence_splitter": splitter,
    }
    assert state.reasons == [f"chunking changed ({before} -> {before | {'chunk_tokens': other.chunk_tokens}})"]


@pytest.mark.unit
def test_each_rebuild_swaps_current_keeps_previous_and_deletes_older_builds(tiny_index):
    first = index.served_build(tiny_index)
    second = index.build(tiny_index, force=True, progress=False)
    assert second.build != first
    assert (_pointer(tiny_index, "CURRENT"), _pointer(tiny_index, "PREVIOUS")) == (second.build, first)
    third = index.build(tiny_index, force=True, progress=False)
    assert (_pointer(tiny_index, "CURRENT"), _pointer(tiny_index, "PREVIOUS")) == (third.build, second.build)
    # Only the served build and the one before it are kept; a rebuild never duplicates passages.
    assert _builds(tiny_index) == sorted([second.build, third.build])
    loaded = index.open_index(tiny_index)
    assert loaded.build == third.build
    assert list(loaded.passages) == ["essay-00-1", "essay-01-1", "ref-01"]
    assert loaded.store._collection.count() == 3 and len(loaded.sentences) == 5


@pytest.mark.unit
def test_a_build_in_use_by_a_reader_is_kept_until_released(tiny_index):
    held = index.open_index(tiny_index)  # a question still reading the first build
    first = held.build
    for _ in range(2):
        index.build(tiny_index, force=True, progress=False)
    assert first not in (_pointer(tiny_index, "CURRENT"), _pointer(tiny_index, "PREVIOUS"))
    assert first in _builds(tiny_index)  # leased: not deleted under its reader
    assert held.store._collection.count() == 3  # and still readable
    held.lease.release()
    del held
    gc.collect()
    index.build(tiny_index, force=True, progress=False)
    assert first not in _builds(tiny_index)
    assert len(_builds(tiny_index)) == 2


class _Boom(Exception):
    pass


@pytest.mark.unit
@pytest.mark.parametrize("failing", ["model", "write"])
def test_a_failed_build_leaves_the_previous_index_serving(tiny_index, fake_embedder, monkeypatch, failing):
    """The model fails on the second batch of texts, or the store on its second write (the passages are written)."""
    from langchain_chroma import Chroma

    assistant = Assistant(tiny_index)
    before = assistant.answer(TINY_QUESTION).to_dict()
    served, builds = index.served_build(tiny_index), _builds(tiny_index)
    batches = []

    def fail_midway(texts, **kwargs):
        batches.append(list(texts))
        if len(batches) > 1:
            raise _Boom(f"the {failing} failed midway")
        return type(fake_embedder).encode(fake_embedder, texts, **kwargs)

    def write_midway(store, texts, *args, **kwargs):
        batches.append(list(texts))
        if len(batches) > 1:
            raise _Boom(f"the {failing} failed midway")
        return add_texts(store, texts, *args, **kwargs)

    add_texts = Chroma.add_texts
    if failing == "model":
        monkeypatch.setattr(builder, "_EMBED_BATCH", 4)
        monkeypatch.setattr(fake_embedder, "encode", fail_midway)
    else:
        monkeypatch.setattr(Chroma, "add_texts", write_midway)
    with pytest.raises(_Boom):
        index.build(tiny_index, force=True, progress=False)
    monkeypatch.undo()
    assert [len(b) for b in batches] == ([4, 4] if failing == "model" else [3, 5])  # 3 passages, 5 sentences
    assert index.served_build(tiny_index) == served and _builds(tiny_index) == builds  # nothing left behind
    assert index.status(tiny_index).state == "fresh"
    after = assistant.answer(TINY_QUESTION).to_dict()
    assert (after["answer"], after["citations"]) == (before["answer"], before["citations"])
    assert Assistant(tiny_index).answer(TINY_QUESTION).answer == before["answer"]


@pytest.mark.unit
def test_killed_rebuild_leaves_old_index_serving(tiny_index):
    """A builder that dies (os._exit, no clean-up) after writing its build, before the swap."""
    served = index.current_build(tiny_index.index_dir)
    script = (
        "import os, assistant.index.builder as builder\n"
        "from assistant.config import Settings\n"
        "from assistant.embeddings import use_embedder\n"
        "from tests.helpers import FAKE_MODEL, FakeEmbedder\n"
        f"s = Settings(index_dir={str(tiny_index.index_dir)!r}, corpus_dir={str(tiny_index.corpus_dir)!r}, "
        "embedding_model=FAKE_MODEL)\n"
        "builder.swap_current = lambda *a: os._exit(9)  # die after writing, before the swap\n"
        "with use_embedder(FAKE_MODEL, FakeEmbedder()):\n"
        "    builder.build(s, force=True, progress=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 9, result.stderr
    (orphan,) = [name for name in _builds(tiny_index) if name != served.name]  # its complete build, never served
    assert (tiny_index.index_dir / "builds" / orphan / "manifest.json").is_file()
    assert index.current_build(tiny_index.index_dir) == served
    assert index.status(tiny_index).state == "fresh"
    rebuilt = index.build(tiny_index, force=True, progress=False)
    assert rebuilt.path != served
    assert _builds(tiny_index) == sorted([served.name, rebuilt.build])  # the orphan is gone


@pytest.mark.unit
def test_a_dead_builders_staging_folder_is_removed_by_the_next_build(tiny_index):
    staging = tiny_index.index_dir / "builds" / ".tmp-20200101t000000000000z-1"
    staging.mkdir()
    (staging / "chroma.sqlite3").write_bytes(b"half written")
    served = index.served_build(tiny_index)
    assert index.open_index(tiny_index).build == served  # readers never look at staging folders
    rebuilt = index.build(tiny_index, force=True, progress=False)
    assert not staging.exists()
    assert _builds(tiny_index) == sorted([served, rebuilt.build])


@pytest.mark.unit
def test_corrupted_index_gives_rebuild_hint(tiny_index):
    build = index.current_build(tiny_index.index_dir)
    for db in build.glob("*.sqlite3"):
        db.write_bytes(b"this is not a database")
    with pytest.raises(IndexStoreError, match="run `essay-assistant index rebuild`"):
        index.open_index(tiny_index)


@pytest.mark.unit
def test_manifest_edit_makes_index_stale(tiny_index):
    build = index.current_build(tiny_index.index_dir)
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["corpus_sha256"] = "0" * 64
    (build / "manifest.json").write_text(json.dumps(manifest))
    state = index.status(tiny_index)
    assert state.state == "stale" and state.reasons[0].startswith("corpus_sha256 changed ('0000")
    # Answering rebuilds a stale index rather than serving it.
    reopened = index.open_index(tiny_index)
    assert reopened.path != build
    assert reopened.manifest["corpus_sha256"] == load_corpus(tiny_index.corpus_path).sha256


@pytest.mark.unit
def test_a_stale_index_is_not_served_without_auto_rebuild(tiny_index):
    stale = tiny_index.model_copy(update={"chunk_tokens": tiny_index.chunk_tokens + 8, "auto_rebuild": False})
    with pytest.raises(IndexStoreError, match=r"is stale \(chunking changed\): run `essay-assistant index rebuild`"):
        index.open_index(stale)
    missing = stale.model_copy(update={"index_dir": tiny_index.index_dir / "nowhere"})
    with pytest.raises(IndexStoreError, match="there is no index in .*run `essay-assistant index build`"):
        index.open_index(missing)
    assert not (tiny_index.index_dir / "nowhere").exists()


@pytest.mark.unit
def test_answering_without_an_index_builds_one(tiny_settings):
    answer = Assistant(tiny_settings).answer("How many references does the essay have?")
    assert answer.answer.startswith("The essay lists one numbered reference")
    assert _pointer(tiny_settings, "CURRENT") == answer.build and _builds(tiny_settings) == [answer.build]
