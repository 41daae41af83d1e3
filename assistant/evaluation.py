"""Evaluation on a QA set (JSON lines): retrieval recall, key facts, refusal, citations, speed.

Each line holds ``question``, ``type``, ``must_include`` (strings; ``"a|b"`` is met by either),
``evidence`` (verbatim corpus strings) and optionally ``id``. Items of type ``unanswerable``
should be declined; items with gold evidence should be answered. Every question goes through
:meth:`Assistant.answer`, the same path as the CLI and UI.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.api import Answer, Assistant
from assistant.config import MECHANISMS
from assistant.question import normalise_question

RECALL_KS = (1, 3, 5)
EVIDENCE_COVERED = 0.8  # share of a gold string a passage must cover to count as retrieving it
# The frozen test split's SHA-256, recorded in docs/eval.md before any change it measures.
FROZEN_TEST_SHA256 = "53843774da174a6e6d963e5e3d5c553f857c953df3db1123d36b350c809703ed"


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


def evidence_recall(item: Item, answer: Answer, k: int, corpus_text: str) -> tuple[int, int]:
    """(gold evidence strings found in the top-k passages, gold strings).

    A gold string is found when a top-k passage covers at least ``EVIDENCE_COVERED`` of one of its
    occurrences in the corpus (by character offsets), so a reference entry quoted with its "(23) "
    number, which the passage leaves out, still counts; a string split across passages does not.
    """
    spans = [(r.passage.start, r.passage.end) for r in answer.passages[:k]]
    found = 0
    for evidence in item.evidence:
        starts = [m.start() for m in re.finditer(re.escape(evidence), corpus_text)]
        found += any(
            min(end, s + len(evidence)) - max(start, s) >= EVIDENCE_COVERED * len(evidence)
            for s in starts
            for start, end in spans
        )
    return found, len(item.evidence)


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
        }
        for k in RECALL_KS:
            row[f"recall@{k}"] = evidence_recall(item, answer, k, corpus_text)
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


# ---------------------------------------------------------------------------------------------
# Several splits side by side (tune and test), ablations, and the answerability reliability plot.

SPLIT_COLUMNS = (
    "key_fact_accuracy",
    "false_refusal_rate",
    "refusal_accuracy",
    "evidence_recall@5",
    "context_chars@5",
    "citation_validity",
    "answer_chars_median",
    "latency_ms_p50",
    "latency_ms_p95",
)
ABLATION_COLUMNS = ("key_fact_accuracy", "false_refusals", "refusal_accuracy", "evidence_recall@5")


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluate_splits(assistant: Assistant, paths: list[Path]) -> dict[str, Any]:
    """Evaluate each QA file (a split named by its file stem); ``{"splits": {name: report}, "files": …}``."""
    splits = {path.stem: evaluate(assistant, load_items(path)) for path in paths}
    files = {path.stem: {"path": str(path), "sha256": sha256_of(path)} for path in paths}
    return {"splits": splits, "files": files}


def ablate(settings: Any, paths: list[Path]) -> dict[str, Any]:
    """Each mechanism of :data:`assistant.config.MECHANISMS` off in turn, on every split.

    Returns ``{"baseline": {split: overall}, "ablations": {mechanism: {split: overall}}}``.
    """
    items = {path.stem: load_items(path) for path in paths}

    def run(disabled: frozenset[str]) -> dict[str, Any]:
        tried = settings.model_copy(update={"answer": settings.answer.model_copy(update={"disabled": disabled})})
        assistant = Assistant(tried)
        return {name: evaluate(assistant, split)["overall"] for name, split in items.items()}

    return {
        "baseline": run(frozenset()),
        "ablations": {mechanism: run(frozenset({mechanism})) for mechanism in MECHANISMS},
    }


def render_ablation(result: dict[str, Any]) -> str:
    """Markdown: per mechanism and split, each figure with its change against everything on."""
    splits = list(result["baseline"])
    lines = [
        "# Ablation: each mechanism switched off in turn",
        "",
        "Produced by `essay-assistant eval --ablate`. Each cell is the figure with the mechanism off, and in",
        "brackets its change against the full system (key facts, unanswerable declined and recall@5 in %;",
        "false refusals in questions). A mechanism earns its place when switching it off costs on the test split.",
        "",
        "| mechanism | what it does | " + " | ".join(f"{s}: {c}" for s in splits for c in ABLATION_COLUMNS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in splits for _ in ABLATION_COLUMNS) + " |",
    ]
    base = result["baseline"]
    lines.append(
        "| (none: full system) | | " + " | ".join(str(base[s][c]) for s in splits for c in ABLATION_COLUMNS) + " |"
    )
    for mechanism, by_split in result["ablations"].items():
        cells = []
        for s in splits:
            for c in ABLATION_COLUMNS:
                value, reference = by_split[s][c], base[s][c]
                delta = "" if value is None or reference is None else f" ({value - reference:+.1f})"
                cells.append(f"{value}{delta}")
        lines.append(f"| {mechanism} | {MECHANISMS[mechanism]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_splits(result: dict[str, Any], plot_names: list[str]) -> str:
    """Markdown for several splits: the question bank, overall figures side by side, per type, tune misses.

    Misses are listed for every split except ``test``: the test split is only ever scored.
    """
    splits = result["splits"]
    names = list(splits)
    lines = ["# Evaluation report", "", "## Question bank", ""]
    for name, info in result["files"].items():
        lines.append(
            f"- `{info['path']}` ({splits[name]['overall']['questions']} questions): SHA-256 `{info['sha256']}`"
        )
    lines += [
        "",
        "The test split is frozen (its SHA-256 was first recorded as",
        f"`{FROZEN_TEST_SHA256}`, before any change it measures) and only ever scored.",
        "",
        "## Overall",
        "",
        "| metric | " + " | ".join(names) + (" | tune − test |" if {"tune", "test"} <= set(names) else " |"),
        "| --- " * (len(names) + 1 + ({"tune", "test"} <= set(names))) + "|",
    ]
    for column in SPLIT_COLUMNS:
        values = [splits[n]["overall"][column] for n in names]
        row = f"| {column} | " + " | ".join(str(v) for v in values) + " |"
        if {"tune", "test"} <= set(names):
            tune, test = splits["tune"]["overall"][column], splits["test"]["overall"][column]
            row += f" {tune - test:+.1f} |" if tune is not None and test is not None else " |"
        lines.append(row)
    for name in names:
        overall = splits[name]["overall"]
        lines += [
            "",
            f"Unanswerable declined ({name}): {overall['refused_unanswerable']}; answerable declined: "
            f"{overall['false_refusals']}.",
        ]
    columns = [
        "key_fact_accuracy",
        "evidence_recall@5",
        "refused_unanswerable",
        "false_refusals",
        "answer_chars_median",
    ]
    for name in names:
        lines += ["", f"## By question type: {name}", "", "| type | n | " + " | ".join(columns) + " |"]
        lines += ["| --- " * (len(columns) + 2) + "|"]
        for kind, metrics in splits[name]["by_type"].items():
            lines.append(f"| {kind} | {metrics['questions']} | " + " | ".join(str(metrics[c]) for c in columns) + " |")
    for name in names:
        if name == "test":
            continue
        misses = [
            q
            for q in splits[name]["questions"]
            if (q["should_refuse"] and not q["refused"]) or (q["must_include"] and not q["key_facts"])
        ]
        lines += ["", f"## Misses: {name}", ""]
        lines += [f"- `{q['id']}` ({q['type']}) {q['question']}\n  - answer: {q['answer'][:300]}" for q in misses] or [
            "None."
        ]
    lines += [""] + [f"![{n}]({n})" for n in plot_names]
    return "\n".join(lines) + "\n"


def reliability(rows: list[dict[str, Any]], bins: int = 10) -> list[dict[str, Any]]:
    """Answerability calibration: per probability bin, the questions in it and the share the essay answers.

    Only questions that are answerable (gold evidence) or ``unanswerable`` count.
    """
    table = [{"low": i / bins, "high": (i + 1) / bins, "n": 0, "answerable": 0, "mean": 0.0} for i in range(bins)]
    for r in rows:
        if r["answerability"] is None or not (r["answerable"] or r["should_refuse"]):
            continue
        entry = table[min(bins - 1, int(r["answerability"] * bins))]
        entry["n"] += 1
        entry["answerable"] += int(r["answerable"])
        entry["mean"] += r["answerability"]
    for entry in table:
        entry["mean"] = round(entry["mean"] / entry["n"], 4) if entry["n"] else None
        entry["observed"] = round(entry["answerable"] / entry["n"], 4) if entry["n"] else None
    return table


def plot_splits(result: dict[str, Any], out_dir: Path, threshold: float) -> list[Path]:
    """Save ``eval.png`` (recall@k and key facts per type, each split) and ``reliability.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = result["splits"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    kinds = sorted({k for r in splits.values() for k, m in r["by_type"].items() if m["key_fact_accuracy"] is not None})
    width = 0.8 / max(1, len(splits))
    for i, (name, report) in enumerate(splits.items()):
        overall = report["overall"]
        left.plot(RECALL_KS, [overall[f"evidence_recall@{k}"] for k in RECALL_KS], marker="o", label=name)
        values = [(report["by_type"].get(k) or {}).get("key_fact_accuracy") or 0 for k in kinds]
        right.bar([x + i * width for x in range(len(kinds))], values, width, label=name)
    left.set(
        xlabel="k (passages)", ylabel="evidence recall (%)", title="Evidence recall@k", xticks=RECALL_KS, ylim=(0, 101)
    )
    left.legend()
    right.set(ylabel="key facts in the answer (%)", title="Key facts by question type", ylim=(0, 101))
    right.set_xticks([x + width * (len(splits) - 1) / 2 for x in range(len(kinds))], kinds, rotation=45, ha="right")
    right.legend()
    fig.tight_layout()
    eval_png = out_dir / "eval.png"
    fig.savefig(eval_png, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    for name, report in splits.items():
        table = [t for t in reliability(report["questions"]) if t["n"]]
        ax.plot([t["mean"] for t in table], [t["observed"] for t in table], marker="o", label=f"{name}")
        for t in table:
            ax.annotate(str(t["n"]), (t["mean"], t["observed"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axvline(threshold, color="red", linewidth=1, label=f"refusal threshold {threshold}")
    ax.set(
        xlabel="answerability (predicted probability the essay answers)",
        ylabel="share the essay answers (observed)",
        title="Answerability reliability (n per point)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    reliability_png = out_dir / "reliability.png"
    fig.savefig(reliability_png, dpi=100)
    plt.close(fig)
    return [eval_png, reliability_png]


def write_split_report(result: dict[str, Any], out_dir: Path, threshold: float) -> list[Path]:
    """Write ``eval.json``, ``eval.md``, ``eval.png`` and ``reliability.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for report in result["splits"].values():
        report["reliability"] = reliability(report["questions"])
    json_path, md_path = out_dir / "eval.json", out_dir / "eval.md"
    pngs = plot_splits(result, out_dir, threshold)
    public = {
        "files": result["files"],
        "splits": {
            # The test split's per-question rows are left out: it is only ever scored.
            name: {k: v for k, v in report.items() if name != "test" or k != "questions"}
            for name, report in result["splits"].items()
        },
    }
    json_path.write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(render_splits(result, [p.name for p in pngs]), encoding="utf-8")
    return [json_path, md_path, *pngs]


# ---------------------------------------------------------------------------------------------
# Conversations: follow-ups, topic changes, "why?", "tell me more", "shorter".

# The frozen conversation test script's SHA-256, recorded before any change it measures.
FROZEN_CONVERSATION_TEST_SHA256 = "3cf6dd21ee74d6d34a580991dba875654f798d370270759b4d4acc94e7506300"


@dataclass(frozen=True)
class ConversationTurn:
    """One turn of a conversation script (``conversation``, ``turn``, ``question``, ``kind``, ``must_include``)."""

    conversation: str
    turn: int
    question: str
    kind: str
    must_include: tuple[str, ...]


def load_conversations(path: Path) -> dict[str, list[ConversationTurn]]:
    """Read a conversation script (JSON lines, one turn per line, turns in order).

    Raises:
        ValueError: On a line that is not JSON or lacks a field, naming the line number.

    """
    conversations: dict[str, list[ConversationTurn]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            turn = ConversationTurn(
                str(row["conversation"]), int(row["turn"]), row["question"], row["kind"], tuple(row["must_include"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a conversation turn ({exc})") from exc
        conversations.setdefault(turn.conversation, []).append(turn)
    return conversations


def evaluate_conversations(assistant: Assistant, conversations: dict[str, list[ConversationTurn]]) -> dict[str, Any]:
    """Play each conversation through ``assistant`` (earlier answers as history).

    A turn is correct when it is answered with every ``must_include`` entry (``unanswerable``:
    when it is declined). A ``new`` turn after the first is *hijacked* when it was resolved
    against the conversation; an answer *repeats* when its text equals the previous answer's.

    Returns:
        ``{"overall": {...}, "by_kind": {kind: {...}}, "turns": [...]}``; percentages 0..100.

    """
    rows = []
    for turns in conversations.values():
        history: list[Answer] = []
        for turn in turns:
            answer = assistant.answer(turn.question, history=history)
            item = Item(turn.conversation, turn.kind, turn.question, turn.must_include, ())
            if turn.kind == "unanswerable":
                correct = answer.refused
            else:
                correct = not answer.refused and key_facts_met(item, answer)
            rows.append(
                {
                    "conversation": turn.conversation,
                    "turn": turn.turn,
                    "kind": turn.kind,
                    "question": turn.question,
                    "standalone": answer.standalone_question,
                    "answer": answer.answer,
                    "correct": correct,
                    "hijacked": turn.kind == "new"
                    and bool(history)
                    and answer.standalone_question != normalise_question(answer.question),
                    "repeated": bool(history) and answer.answer == history[-1].answer,
                    "total_ms": answer.timings_ms["total"],
                }
            )
            history.append(answer)

    def summary(selected: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "turns": len(selected),
            "correct": _pct(sum(r["correct"] for r in selected), len(selected)),
            "hijacked": sum(r["hijacked"] for r in selected),
            "repeated": sum(r["repeated"] for r in selected),
            "latency_ms_p95": round(_percentile([r["total_ms"] for r in selected], 0.95), 1),
        }

    by_kind = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    return {
        "overall": summary(rows),
        "by_kind": {k: summary(v) for k, v in sorted(by_kind.items())},
        "turns": rows,
    }


def write_conversation_report(paths: list[Path], reports: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``conversation.json`` and ``conversation.md``: each script's figures by turn kind.

    The turns that went wrong are listed for tune scripts only: the frozen test script
    (:data:`FROZEN_CONVERSATION_TEST_SHA256`) is only ever scored.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {p.stem: {"path": str(p), "sha256": sha256_of(p)} for p in paths}
    summary = {p.stem: {k: v for k, v in r.items() if k != "turns"} for p, r in zip(paths, reports, strict=True)}
    lines = ["# Conversation evaluation", ""]
    for path, report in zip(paths, reports, strict=True):
        sha = files[path.stem]["sha256"]
        overall = report["overall"]
        lines += [
            f"## `{path}` ({overall['turns']} turns)",
            "",
            f"SHA-256 `{sha}`.",
            "",
            f"Correct {overall['correct']} %; hijacked by history {overall['hijacked']}; "
            f"repeating the previous answer {overall['repeated']}; p95 {overall['latency_ms_p95']} ms.",
            "",
            "| kind | turns | correct % | hijacked | repeated |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {kind} | {m['turns']} | {m['correct']} | {m['hijacked']} | {m['repeated']} |"
            for kind, m in report["by_kind"].items()
        ]
        if sha != FROZEN_CONVERSATION_TEST_SHA256:
            wrong = [t for t in report["turns"] if not t["correct"] or t["hijacked"] or t["repeated"]]
            lines += ["", f"Turns that went wrong ({len(wrong)}):", ""]
            lines += [
                f"- {t['conversation']}.{t['turn']} ({t['kind']}) {t['question']} → `{t['standalone']}`" for t in wrong
            ]
        lines.append("")
    json_path, md_path = out_dir / "conversation.json", out_dir / "conversation.md"
    json_path.write_text(json.dumps({"files": files, "scripts": summary}, indent=2) + "\n", encoding="utf-8")
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return [json_path, md_path]
