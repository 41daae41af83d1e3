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

from assistant.answering import REFUSAL
from assistant.api import Answer, Assistant
from assistant.question import profile

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
            "answerability": answer.answerability,
            # Whether the threshold decides this question (not a summary/author question or a missing table).
            "threshold_applies": profile(answer.standalone_question).kind not in ("summary", "author")
            and not answer.answer.startswith(f"{REFUSAL} It refers to"),
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
        "refusal_sweep": refusal_sweep(rows),
        "questions": rows,
    }


def refusal_sweep(rows: list[dict[str, Any]], step: float = 0.01) -> dict[str, Any]:
    """Refusals at each threshold 0.20..0.80, and the threshold this QA set supports.

    A threshold's gain is the ``unanswerable`` items it declines minus the answerable items it
    wrongly declines. Among runs of thresholds with equal gain within one of the best, the
    widest run wins and its middle is chosen: the threshold farthest from flipping a question,
    which matters more on unseen questions than one more dev item.
    """
    table = []
    for i in range(int(0.2 / step), int(0.8 / step) + 1):
        threshold = round(i * step, 4)
        declined = [r for r in rows if r["threshold_applies"] and r["answerability"] < threshold]
        table.append(
            {
                "threshold": threshold,
                "unanswerable_declined": sum(r["should_refuse"] for r in declined),
                "answerable_declined": sum(r["answerable"] for r in declined),
            }
        )
    gain = [t["unanswerable_declined"] - t["answerable_declined"] for t in table]
    runs: list[list[float]] = []
    for i, entry in enumerate(table):
        if gain[i] >= max(gain) - 1:
            if runs and i > 0 and gain[i] == gain[i - 1] and runs[-1][-1] == table[i - 1]["threshold"]:
                runs[-1].append(entry["threshold"])
            else:
                runs.append([entry["threshold"]])
    widest = max(runs, key=len)
    return {"table": table, "chosen": round((widest[0] + widest[-1]) / 2, 2), "tied_range": [widest[0], widest[-1]]}


def render_markdown(report: dict[str, Any], plot_name: str | None) -> str:
    """A Markdown report: overall metrics, a per-type table, misses, and the plot."""
    overall = report["overall"]
    lines = ["# Evaluation report", "", f"Questions: {overall['questions']}", "", "## Overall", ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in overall.items() if k != "questions"]
    columns = [
        "key_fact_accuracy",
        "evidence_recall@1",
        "evidence_recall@3",
        "evidence_recall@5",
        "refused_unanswerable",
        "false_refusals",
        "answer_chars_median",
    ]
    lines += ["", "## By question type", "", "| type | n | " + " | ".join(columns) + " |"]
    lines += ["| --- " * (len(columns) + 2) + "|"]
    for kind, metrics in report["by_type"].items():
        lines.append(f"| {kind} | {metrics['questions']} | " + " | ".join(str(metrics[c]) for c in columns) + " |")
    misses = [
        q
        for q in report["questions"]
        if (q["should_refuse"] and not q["refused"]) or (q["must_include"] and not q["key_facts"])
    ]
    lines += ["", "## Misses", ""]
    lines += [f"- `{q['id']}` ({q['type']}) {q['question']}\n  - answer: {q['answer'][:300]}" for q in misses] or [
        "None."
    ]
    sweep = report.get("refusal_sweep")
    if sweep:
        lines += ["", "## Refusal threshold", ""]
        lines += [
            f"Thresholds {sweep['tied_range'][0]}–{sweep['tied_range'][1]} form the widest run whose gain "
            "(unanswerable declined minus answerable declined) is within one of the best; "
            f"its middle, {sweep['chosen']}, is the one to use.",
            "",
            "| threshold | unanswerable declined | answerable declined |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {t['threshold']} | {t['unanswerable_declined']} | {t['answerable_declined']} |"
            for t in sweep["table"][::5]
        ]
    if plot_name:
        lines += ["", f"![recall@k and per-type accuracy]({plot_name})"]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    """Save a PNG: evidence recall@k (left) and key-fact accuracy per question type (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overall = report["overall"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(RECALL_KS, [overall[f"evidence_recall@{k}"] for k in RECALL_KS], marker="o")
    left.set(
        xlabel="k (passages)", ylabel="evidence recall (%)", title="Evidence recall@k", xticks=RECALL_KS, ylim=(0, 101)
    )
    kinds = [k for k, m in report["by_type"].items() if m["key_fact_accuracy"] is not None]
    right.bar(kinds, [report["by_type"][k]["key_fact_accuracy"] for k in kinds])
    right.set(ylabel="key-fact accuracy (%)", title="Key-fact accuracy by question type", ylim=(0, 101))
    right.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict[str, Any], out_dir: Path, stem: str = "eval") -> list[Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = (out_dir / f"{stem}.{ext}" for ext in ("json", "md", "png"))
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot(report, png_path)
    md_path.write_text(render_markdown(report, png_path.name), encoding="utf-8")
    return [json_path, md_path, png_path]
