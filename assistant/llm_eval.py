"""Dev-set figures for LLM answers, and the sweep the support threshold came from.

``python -m assistant.llm_eval sweep`` scores the dev set's gold answers (``answer`` field,
paraphrases written by hand) against the passage holding their evidence (should be kept) and
against the best-ranked retrieved passage that does not hold it (should be dropped), and prints
accuracy, precision and recall of the keep decision per threshold.

``python -m assistant.llm_eval compare --base-url URL [--model NAME]`` answers every dev question
extractively and through the LLM with checking, and prints key-fact accuracy, the share of LLM
sentences kept, the fallback rate, citation validity and latency for each.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from assistant.api import Assistant
from assistant.config import REPO_ROOT, Settings
from assistant.evaluation import Item, key_facts_met, load_items

DEV_SET = REPO_ROOT / "tests" / "data" / "dev.jsonl"
log = logging.getLogger(__name__)


def support_pairs(assistant: Assistant) -> list[tuple[float, bool]]:
    """``(support, should_keep)`` for each gold answer sentence of the dev set (see module docstring)."""
    from assistant.embeddings import get_embedder
    from assistant.llm import split_cited_text
    from assistant.verification import CitationChecker

    loaded = assistant._load()
    embedder = get_embedder(assistant.settings)
    checker = CitationChecker(loaded.answerer.reranker, embedder, assistant.settings)
    passages = list(loaded.index.passages.values())
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = []
    for row in rows:
        if not row.get("evidence") or not row.get("answer") or row.get("type") == "unanswerable":
            continue
        gold = [p for p in passages if any(e in p.text for e in row["evidence"])]
        if not gold:
            continue
        state = loaded.chain.invoke({"question": loaded.answerer.reranker.read(row["question"])})
        negative = next(r.passage for r in state["retrieved"] if r.passage.id not in {p.id for p in gold})
        for text, _ in split_cited_text(row["answer"]):
            vector = embedder.encode([text])[0]
            pairs.append((max(checker.score(text, vector, p, 1).score for p in gold), True))
            pairs.append((checker.score(text, vector, negative, 1).score, False))
    return pairs


def sweep(pairs: list[tuple[float, bool]], thresholds: list[float]) -> list[dict[str, float]]:
    """Accuracy, precision and recall (0..1) of ``support >= t`` against ``should_keep``, per threshold."""
    table = []
    for t in thresholds:
        tp = sum(s >= t and keep for s, keep in pairs)
        fp = sum(s >= t and not keep for s, keep in pairs)
        fn = sum(s < t and keep for s, keep in pairs)
        tn = len(pairs) - tp - fp - fn
        table.append(
            {
                "threshold": round(t, 2),
                "accuracy": (tp + tn) / len(pairs),
                "precision": tp / (tp + fp) if tp + fp else 1.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
            }
        )
    return table


def run(assistant: Assistant, items: list[Item]) -> dict[str, Any]:
    """Answer ``items``; returns key-fact accuracy, LLM sentence/fallback shares, validity and latency."""
    corpus_text = assistant.settings.corpus_path.read_text(encoding="utf-8")
    facts, latencies, generated, kept, fallbacks, asked = [], [], 0, 0, 0, 0
    citations = valid = 0
    rows = []
    for item in items:
        started = time.perf_counter()
        answer = assistant.answer(item.question, id=item.id)
        latencies.append((time.perf_counter() - started) * 1e3)
        if item.must_include and not item.should_refuse:
            facts.append(key_facts_met(item, answer))
        citations += len(answer.citations)
        valid += sum(corpus_text[c.start : c.end] == c.quote for c in answer.citations)
        if answer.verified is not None:
            asked += 1
            generated += answer.verified["sentences_generated"]
            kept += answer.verified["sentences_kept"]
        fallbacks += answer.fallback is not None
        rows.append(
            {
                "id": item.id,
                "backend": answer.backend,
                "answer": answer.answer,
                "fallback": answer.fallback,
                "key_facts": key_facts_met(item, answer),
                "verified": answer.verified,
            }
        )
    return {
        "questions": len(items),
        "key_fact_accuracy": round(100 * sum(facts) / len(facts), 1),
        "llm_asked": asked,
        "llm_sentences_generated": generated,
        "llm_sentences_kept": kept,
        "llm_sentences_kept_pct": round(100 * kept / generated, 1) if generated else None,
        "fallback_rate_pct": round(100 * fallbacks / len(items), 1),
        "llm_answers_shown": sum(r["backend"] != "extractive" for r in rows),
        "citations_valid_pct": round(100 * valid / citations, 1) if citations else None,
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(sorted(latencies)[round(0.95 * (len(latencies) - 1))], 1),
        "rows": rows,
    }


def main() -> None:
    """Command line: ``sweep`` or ``compare`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m assistant.llm_eval")
    parser.add_argument("command", choices=["sweep", "compare"])
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--out", type=Path, help="Write the per-question rows here (JSON).")
    parser.add_argument("--text", action="store_true", help="Plain-text replies (llm_structured_output off).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    base = Settings(**({"index_dir": args.index_dir} if args.index_dir else {}))
    if args.command == "sweep":
        pairs = support_pairs(Assistant(base))
        for row in sweep(pairs, [x / 100 for x in range(30, 91, 5)]):
            print(json.dumps({k: round(v, 3) for k, v in row.items()}))
        return
    items = load_items(DEV_SET)
    llm = base.model_copy(
        update={
            "llm": "openai",
            "llm_base_url": args.base_url,
            "llm_model": args.model,
            "llm_structured_output": not args.text,
        }
    )
    report = {"extractive": run(Assistant(base), items), "llm": run(Assistant(llm), items)}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    for name, figures in report.items():
        print(name, json.dumps({k: v for k, v in figures.items() if k != "rows"}))


if __name__ == "__main__":
    main()
