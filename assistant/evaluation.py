"""Evaluation on a QA set (JSON lines): retrieval recall, key facts, refusal, citations, speed.

Each line holds ``question``, ``type``, ``must_include`` (strings; ``"a|b"`` is met by either),
``evidence`` (verbatim corpus strings) and optionally ``id``. Items of type ``unanswerable``
should be declined; items with gold evidence should be answered. Every question goes through
:meth:`Assistant.answer`, the same path as the CLI and UI.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.api import Answer, Assistant

RECALL_KS = (1, 3, 5)


@dataclass(frozen=True)
class Item:
    """One evaluation question."""

    id: str
    type: str
    question: str
    must_include: tuple[str, ...]
    evidence: tuple[str, ...]

    @property
    def should_refuse(self) -> bool:
        return self.type == "unanswerable"

    @property
    def answerable(self) -> bool:
        """Has gold evidence in the essay, so declining it is a false refusal."""
        return bool(self.evidence) and not self.should_refuse


def load_items(path: Path) -> list[Item]:
    """Read a QA JSONL file.

    Raises:
        ValueError: On a line that is not JSON or lacks ``question``, naming the line number.

    """
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(
                Item(
                    id=str(row.get("id", number)),
                    type=row.get("type", "fact"),
                    question=row["question"],
                    must_include=tuple(row.get("must_include", ())),
                    evidence=tuple(row.get("evidence", ())),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a QA item ({exc})") from exc
    return items


def key_facts_met(item: Item, answer: Answer) -> bool:
    """All ``must_include`` entries appear in the answer text (case-insensitive; ``a|b``: either)."""
    text = answer.answer.lower()
    return all(any(option.lower() in text for option in entry.split("|")) for entry in item.must_include)


def evidence_recall(item: Item, answer: Answer, k: int) -> tuple[int, int]:
    """(gold evidence strings found verbatim in the top-k passages, gold strings)."""
    texts = [r.passage.text for r in answer.passages[:k]]
    return sum(any(e in t for t in texts) for e in item.evidence), len(item.evidence)


def citation_checks(answer: Answer, corpus_text: str) -> tuple[int, int, int, int]:
    """(valid citations, citations, cited answer sentences, answer sentences).

    A citation is valid when its quote is verbatim in its passage and at ``[start, end)`` of
    the corpus. Answer sentences are the marker-terminated segments of the answer text.
    """
    passages = {r.passage.id: r.passage.text for r in answer.passages}
    valid = sum(
        c.quote in passages.get(c.passage_id, "") and corpus_text[c.start : c.end] == c.quote for c in answer.citations
    )
    if answer.refused:
        return valid, len(answer.citations), 0, 0
    segments = [s for s in answer.answer.split("] ") if s.strip()]
    cited = sum("[" in s for s in segments)
    return valid, len(answer.citations), cited, len(segments)


def _pct(numerator: float, denominator: float) -> float | None:
    return round(100.0 * numerator / denominator, 1) if denominator else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate per-question rows into the report's metrics (percentages 0..100)."""
    answerable = [r for r in rows if r["answerable"]]
    with_facts = [r for r in rows if r["must_include"] and not r["should_refuse"]]
    refuse = [r for r in rows if r["should_refuse"]]
    answers = [r for r in rows if not r["refused"]]
    lengths = [len(r["answer"]) for r in answers] or [0]
    latencies = [r["total_ms"] for r in rows]
    metrics: dict[str, Any] = {"questions": len(rows)}
    for k in RECALL_KS:
        found = sum(r[f"recall@{k}"][0] for r in rows)
        gold = sum(r[f"recall@{k}"][1] for r in rows)
        metrics[f"evidence_recall@{k}"] = _pct(found, gold)
        metrics[f"context_chars@{k}"] = round(statistics.mean(r[f"context_chars@{k}"] for r in rows))
    metrics |= {
        "key_fact_accuracy": _pct(sum(r["key_facts"] for r in with_facts), len(with_facts)),
        "refusal_accuracy": _pct(sum(r["refused"] for r in refuse), len(refuse)),
        "refused_unanswerable": f"{sum(r['refused'] for r in refuse)}/{len(refuse)}",
        "false_refusal_rate": _pct(sum(r["refused"] for r in answerable), len(answerable)),
        "false_refusals": sum(r["refused"] for r in answerable),
        "citation_validity": _pct(sum(r["citations_valid"] for r in rows), sum(r["citations"] for r in rows)),
        "sentences_cited": _pct(sum(r["sentences_cited"] for r in rows), sum(r["sentences"] for r in rows)),
        "answer_chars_median": statistics.median(lengths),
        "answer_chars_max": max(lengths),
        "latency_ms_p50": round(_percentile(latencies, 0.5), 1),
        "latency_ms_p95": round(_percentile(latencies, 0.95), 1),
    }
    return metrics


def evaluate(assistant: Assistant, items: list[Item]) -> dict[str, Any]:
    """Run every item through ``assistant``; returns ``{"overall", "by_type", "questions"}``."""
    corpus_text = assistant.settings.corpus_path.read_text(encoding="utf-8")
    rows = []
    for item in items:
        answer = assistant.answer(item.question, id=item.id)
        valid, n_citations, cited, n_sentences = citation_checks(answer, corpus_text)
        row = {
            "id": item.id,
            "type": item.type,
            "question": item.question,
            "answer": answer.answer,
            "refused": answer.refused,
            "should_refuse": item.should_refuse,
            "answerable": item.answerable,
            "must_include": list(item.must_include),
            "key_facts": key_facts_met(item, answer),
            "citations_valid": valid,
            "citations": n_citations,
            "sentences_cited": cited,
            "sentences": n_sentences,
            "total_ms": answer.timings_ms["total"],
        }
        for k in RECALL_KS:
            row[f"recall@{k}"] = evidence_recall(item, answer, k)
            row[f"context_chars@{k}"] = sum(len(r.passage.text) for r in answer.passages[:k])
        rows.append(row)
    by_type = defaultdict(list)
    for row in rows:
        by_type[row["type"]].append(row)
    return {
        "overall": summarise(rows),
        "by_type": {t: summarise(r) for t, r in sorted(by_type.items())},
        "questions": rows,
    }
