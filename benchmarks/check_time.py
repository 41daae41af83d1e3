"""``python -m benchmarks.check_time``: how long the citation check takes per answer.

Times :meth:`assistant.verification.CitationChecker.check` on the dev set's gold answers as an
LLM would send them (every sentence, cited to the prompt passage holding its evidence, against
the passages the LLM is shown for that question), after one warm-up pass. The LLM call itself and
retrieval are not counted; the embedding of the claims (part of the check) is also timed alone.
Prints the figures and writes them to ``--out`` (JSON) for ``python -m assistant.llm_eval docs
--bench``. Target: at most 50 ms per answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from assistant.api import Assistant
from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.llm import passages_block, split_cited_text
from assistant.llm_eval import gold_script
from assistant.replay import ReplayServer
from assistant.verification import CitationChecker, split_claims


def prepared(assistant: Assistant) -> list[tuple[list, list]]:
    """``(sentences, passages)`` per gold answer, with the markers the replay server would give."""
    loaded = assistant._load()
    top_k = assistant.settings.top_k
    out = []
    for question, lines in gold_script().items():
        state = loaded.chain.invoke({"question": loaded.answerer.reranker.read(question)})
        passages = [r.passage for r in state["retrieved"][:top_k]]
        for citation in state["citations"]:
            if citation.passage_id not in {p.id for p in passages} and len(passages) < 8:
                passages.append(loaded.index.passages[citation.passage_id])
        user = f"Passages:\n\n{passages_block(passages)}\n\nQuestion: {question}\n"
        reply = ReplayServer({question: lines}).reply({"messages": [{"role": "user", "content": user}]})
        out.append((split_cited_text(reply), passages))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = Settings()
    assistant = Assistant(settings)
    loaded = assistant._load()
    checker = CitationChecker(loaded.answerer.reranker, get_embedder(settings), settings)
    cases = prepared(assistant)
    for sentences, passages in cases:  # warm-up: caches of the corpus sentences' readings
        checker.check(sentences, passages)
    times, embedding = [], []
    for _ in range(args.repeats):
        for sentences, passages in cases:
            started = time.perf_counter()
            checker.check(sentences, passages)
            times.append((time.perf_counter() - started) * 1e3)
            claims = [c for text, _ in sentences for c in split_claims(text)]
            started = time.perf_counter()
            checker.embedder.encode(claims)  # the part of the check that is the embedding model's
            embedding.append((time.perf_counter() - started) * 1e3)
    times.sort()
    result = {
        "answers": len(cases),
        "repeats": args.repeats,
        "sentences_per_answer": round(statistics.mean(len(s) for s, _ in cases), 2),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[round(0.95 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
        "embedding_p50_ms": round(statistics.median(embedding), 1),
    }
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
