"""Fit the answerer's learned weights on the tune split: ``python -m assistant.fitting``.

Two logistic regressions (scikit-learn, L2, ``C=1``), fitted in order and written to
``assistant/fitted.json`` with their source (the tune file's SHA-256, its size, the
cross-validated scores):

1. **Sentence evidence model** (:data:`assistant.reranking.SENTENCE_FEATURES`): one row per
   candidate sentence of each tune question; the label is whether the sentence overlaps one of
   the question's gold evidence strings by at least half of the shorter of the two (never, for
   an unanswerable question: its near misses teach the model what is not evidence).
2. **Answerability model** (:data:`assistant.answering.ANSWERABILITY_FEATURES`): one row per
   tune question, computed with model 1; the label is whether the essay answers it (gold
   evidence, not ``unanswerable``). Its refusal threshold is the highest whose 5-fold
   cross-validated false-refusal rate stays within ``FALSE_REFUSAL_BUDGET``: as many
   unanswerable questions declined as that budget of wrongly declined answerable ones allows.
   Answers between it and ``hedge_below`` (where the out-of-fold share of answerable questions
   reaches ``HEDGE_PRECISION``) open by saying the essay may not answer exactly that.
   One of its features, ``exemplar_margin``, compares a question with the tune questions
   themselves (:func:`assistant.reranking.exemplar_margin`); so does the sentence model's
   ``exemplar_evidence`` (the gold evidence of the nearest answerable ones). Each tune question
   is scored with all tune questions but itself as exemplars, as answering scores it; every
   labelled tune question's vector, label and gold evidence spans are written to
   ``assistant/exemplars.npz`` for answering.

The exemplar floor of ``exemplar_evidence`` is the candidate (``EXEMPLAR_FLOORS``) of the best
cross-validated top-1 of model 1, unless others come within ``TOP1_TOLERANCE`` of it: then steps
1-3 run for each, and the floor whose answers hold the most key facts (step 3) wins.

3. **Selection** (``join_ratio``, ``join_coverage``, ``join_strong`` of
   :class:`assistant.config.AnswerSettings`):
   among grid points whose median answer (summaries and timelines aside, which may run longer) is at
   most ``MEDIAN_CHARS_CAP`` characters, the one with
   the most answerable tune questions whose key facts (``must_include``) are all in the answer,
   the shortest median answer, then the fewest probability-only joins (highest ``join_strong``),
   breaking ties.

The test split is never read. Needs the ``fit`` extra (scikit-learn). Deterministic: the same
tune file, corpus and model give the same weights (``tests/test_quality.py`` checks it).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import REPO_ROOT, Settings

TUNE_PATH = REPO_ROOT / "tests" / "data" / "tune.jsonl"
# Share of answerable tune questions the threshold may decline (cross-validated). Saying "the essay does
# not say" when it does is the worse error: the budget is the quality issue's target, at most 3 %.
FALSE_REFUSAL_BUDGET = 0.03
# Answers less sure than this share of answerable questions (out of fold) say they may not answer exactly.
HEDGE_PRECISION = 0.9
C = 1.0  # inverse L2 strength (scikit-learn's default)
FOLDS = 5
# Candidate floors of the exemplar_evidence feature (cosine below which a tune question lends nothing);
# the fit keeps the one of the best cross-validated top-1, or of the most key facts among near ties.
EXEMPLAR_FLOORS = (0.0, 0.5, 0.6, 0.7, 0.8)
# Floors whose cross-validated top-1 is within this of the best are told apart by the answers instead: the
# tune questions whose key facts the fitted answers hold (step 3). The top-1 of one floor ranged over 0.007
# across five shuffled 5-fold splits of the tune split (0.8501-0.8573 at floor 0.6, 2026-12-01).
TOP1_TOLERANCE = 0.01


def _zero_model(features: dict[str, str]) -> dict[str, Any]:
    return {"features": list(features), "coef": [0.0] * len(features), "intercept": 0.0}


def gold_spans(text: str, evidence: list[str]) -> list[tuple[int, int]]:
    """Every ``[start, end)`` where a gold evidence string occurs in the corpus text."""
    spans = []
    for e in evidence:
        start = text.find(e)
        while start >= 0:
            spans.append((start, start + len(e)))
            start = text.find(e, start + 1)
    return spans


def _collect(settings: Settings, items: list[dict[str, Any]], fitted: dict[str, Any]):
    """Run retrieval and sentence scoring for each item, with the items themselves as exemplars.

    ``fitted["exemplars"]`` is set to :func:`_exemplars` of the items before any is scored, so
    each is scored as answering would score it (it is never its own example). Returns (answerer,
    [(item, profile, scored)]).
    """
    from assistant import index
    from assistant.answering import ExtractiveAnswerer
    from assistant.corpus import load_corpus
    from assistant.embeddings import get_embedder
    from assistant.question import validate
    from assistant.retrieval import HybridRetriever

    loaded = index.open_index(settings, progress=False)
    corpus = load_corpus(settings.corpus_path)
    answerer = ExtractiveAnswerer(loaded, corpus, settings, fitted=fitted)
    reranker = answerer.reranker
    retriever = HybridRetriever(loaded, settings, reranker.terms)
    embedder = get_embedder(settings)
    questions = [reranker.read(validate(item["question"], settings.max_question_chars)) for item in items]
    vectors = [embedder.encode([question.text])[0] for question in questions]
    fitted["exemplars"] = _exemplars(items, np.array(vectors, dtype=np.float32), corpus.text)
    runs = []
    for item, question, vector in zip(items, questions, vectors, strict=True):
        retrieved = retriever.retrieve(question, vector)
        runs.append((item, question, reranker.score_sentences(question, vector, retrieved)))
    return answerer, runs


def _exemplars(items: list[dict[str, Any]], vectors: np.ndarray, text: str) -> dict[str, Any]:
    """The exemplars (:func:`assistant.reranking.load_fitted`): every tune question labelled answerable or not.

    Vectors are rounded to float16, as ``exemplars.npz`` stores them, so fitting sees the values
    answering will load. Gold evidence is kept as corpus spans (:func:`gold_spans`).
    """
    kept = [i for i, item in enumerate(items) if _label(item) is not None]
    owners, spans = [], []
    for n, i in enumerate(kept):
        for span in gold_spans(text, items[i].get("evidence") or []) if _label(items[i]) else []:
            owners.append(n)
            spans.append(span)
    return {
        "vectors": vectors[kept].astype(np.float16).astype(np.float32),
        "answerable": np.array([bool(_label(items[i])) for i in kept]),
        "evidence_spans": np.array(spans, dtype=np.int32).reshape(-1, 2),
        "evidence_owner": np.array(owners, dtype=np.int32),
    }


def _label(item: dict[str, Any]) -> int | None:
    """1 if the essay answers ``item`` (gold evidence), 0 if it is ``unanswerable``, else None."""
    if item.get("type") == "unanswerable":
        return 0
    return 1 if item.get("evidence") else None


def _fit(rows: list[list[float]], labels: list[int]):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=5000).fit(rows, labels)


def _cv_probabilities(rows: list[list[float]], labels: list[int], groups: list[int] | None = None) -> list[float]:
    """Out-of-fold probabilities (5 folds; rows of one question stay in one fold when ``groups`` is given)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict

    model = LogisticRegression(C=C, max_iter=5000)
    if groups is not None:
        folds = GroupKFold(n_splits=FOLDS)
        predicted = cross_val_predict(model, rows, labels, groups=groups, cv=folds, method="predict_proba")
    else:
        folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0)
        predicted = cross_val_predict(model, rows, labels, cv=folds, method="predict_proba")
    return [float(p) for p in predicted[:, 1]]


def top1(probabilities: list[float], labels: list[int], groups: list[int]) -> float:
    """Share of questions with gold evidence among their candidates whose highest-scored one is evidence."""
    best: dict[int, tuple[float, int]] = {}
    for p, label, group in zip(probabilities, labels, groups, strict=True):
        if group not in best or p > best[group][0]:
            best[group] = (p, label)
    answerable = {g for g, label in zip(groups, labels, strict=True) if label}
    return sum(best[g][1] for g in answerable) / len(answerable) if answerable else 0.0


def choose_threshold(probabilities: list[float], answerable: list[int]) -> float:
    """The refusal threshold for out-of-fold ``probabilities``.

    The highest threshold (0.01 steps) that declines at most ``FALSE_REFUSAL_BUDGET`` of the
    answerable questions.
    """
    positives = sum(answerable) or 1
    chosen = 0.0
    for i in range(1, 100):
        t = i / 100
        declined = sum(p < t and a for p, a in zip(probabilities, answerable, strict=True))
        if declined / positives <= FALSE_REFUSAL_BUDGET:
            chosen = t
    return round(chosen, 2)


def choose_hedge(probabilities: list[float], answerable: list[int], threshold: float) -> float:
    """The answerability below which an answer says it may not answer exactly what was asked.

    The lowest threshold (0.01 steps, at least the refusal threshold) above which at least
    ``HEDGE_PRECISION`` of the out-of-fold tune questions are answerable.
    """
    for i in range(int(round(threshold * 100)), 100):
        t = i / 100
        above = [a for p, a in zip(probabilities, answerable, strict=True) if p >= t]
        if above and sum(above) / len(above) >= HEDGE_PRECISION:
            return round(t, 2)
    return 1.0


def fit(settings: Settings, tune_path: Path = TUNE_PATH) -> dict[str, Any]:
    """Fit both models on ``tune_path``; returns the content of ``fitted.json``."""
    from sklearn.metrics import roc_auc_score

    from assistant.answering import ANSWERABILITY_FEATURES
    from assistant.reranking import SENTENCE_FEATURES, exemplar_evidence, is_evidence

    raw = tune_path.read_bytes()
    items = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    bootstrap = {
        "sentence": _zero_model(SENTENCE_FEATURES),
        "answerability": _zero_model(ANSWERABILITY_FEATURES) | {"threshold": 0.5},
    }
    answerer, runs = _collect(settings, items, bootstrap)
    text = answerer.corpus.text

    # 1. Sentence evidence model; its exemplar floor is chosen below (TOP1_TOLERANCE).
    labelled = []  # (question number, scored sentences, each one's label): the same for every floor
    for number, (item, _question, scored) in enumerate(runs):
        unanswerable = item.get("type") == "unanswerable"
        spans = [] if unanswerable else gold_spans(text, item.get("evidence") or [])
        if spans or unanswerable:  # else no gold evidence to label by (an instruction with no question in it)
            labelled.append((number, scored, [int(is_evidence(s.span.start, s.span.end, spans)) for s in scored]))

    def sentence_rows(floor: float):
        rows, labels, groups = [], [], []
        for number, scored, sentence_labels in labelled:
            for s in scored:
                s.features["exemplar_evidence"] = exemplar_evidence(s.features["exemplar_similarity"], floor)
                rows.append([s.features[f] for f in SENTENCE_FEATURES])
            labels += sentence_labels
            groups += [number] * len(scored)
        return rows, labels, groups

    by_floor, cv_by_floor = {}, {}
    for floor in EXEMPLAR_FLOORS:
        rows, labels, groups = sentence_rows(floor)
        cv_by_floor[floor] = _cv_probabilities(rows, labels, groups)
        by_floor[floor] = top1(cv_by_floor[floor], labels, groups)

    def fit_with(floor: float) -> dict[str, Any]:
        """Steps 1-3 with the exemplar floor ``floor``."""
        rows, labels, groups = sentence_rows(floor)
        sentence = _fit(rows, labels)
        sentence_cv = cv_by_floor[floor]
        fitted = dict(bootstrap)
        fitted["sentence"] = {
            "features": list(SENTENCE_FEATURES),
            "coef": [round(float(c), 6) for c in sentence.coef_[0]],
            "intercept": round(float(sentence.intercept_[0]), 6),
            "exemplar_floor": floor,
            "cv_top1_by_exemplar_floor": {str(f): round(v, 4) for f, v in by_floor.items()},
            "rows": len(rows),
            "positives": sum(labels),
            "cv_auc": round(float(roc_auc_score(labels, sentence_cv)), 4),
            "cv_top1": round(top1(sentence_cv, labels, groups), 4),
        }

        # 2. Answerability model, on the sentence scores of model 1.
        from assistant.reranking import LogisticModel

        model = LogisticModel.from_dict(fitted["sentence"])
        q_rows, answerable = [], []
        for item, question, scored in runs:
            if (label := _label(item)) is None:
                continue  # neither answerable nor unanswerable (an instruction with no question in it)
            rescored = sorted((_rescore(s, model) for s in scored), key=lambda s: -s.score)
            features = answerer.answerability_features(question, rescored, model)
            q_rows.append([features[f] for f in ANSWERABILITY_FEATURES])
            answerable.append(label)
        answerability = _fit(q_rows, answerable)
        cv = _cv_probabilities(q_rows, answerable)
        fitted["answerability"] = {
            "features": list(ANSWERABILITY_FEATURES),
            "coef": [round(float(c), 6) for c in answerability.coef_[0]],
            "intercept": round(float(answerability.intercept_[0]), 6),
            "threshold": (threshold := choose_threshold(cv, answerable)),
            "hedge_below": choose_hedge(cv, answerable, threshold),
            "rows": len(q_rows),
            "answerable": sum(answerable),
            "cv_auc": round(float(roc_auc_score(answerable, cv)), 4),
            "cv_probabilities": [round(p, 4) for p in cv],
            "labels": answerable,
        }
        # 3. Selection: how readily further sentences join the answer.
        fitted["selection"] = _fit_selection(settings, answerer, runs, model, fitted)
        return fitted

    # Floors whose top-1 is within the noise of the best compete on what the answers get right.
    near = [f for f in EXEMPLAR_FLOORS if by_floor[f] >= max(by_floor.values()) - TOP1_TOLERANCE]
    candidates = {floor: fit_with(floor) for floor in near}
    floor = max(near, key=lambda f: (candidates[f]["selection"]["key_facts_met"], by_floor[f], -f))
    fitted = candidates[floor]
    exemplars = fitted["exemplars"]
    fitted["source"] = {
        "script": "python -m assistant.fitting",
        "tune_file": str(tune_path.relative_to(REPO_ROOT)) if tune_path.is_relative_to(REPO_ROOT) else str(tune_path),
        "tune_sha256": hashlib.sha256(raw).hexdigest(),
        "tune_items": len(items),
        "corpus_sha256": answerer.corpus.sha256,
        "model": settings.embedding_model,
        "false_refusal_budget": FALSE_REFUSAL_BUDGET,
        "exemplars": f"{len(exemplars['answerable'])} tune questions ({int((~exemplars['answerable']).sum())} "
        f"unanswerable, {len(exemplars['evidence_owner'])} gold evidence spans) in exemplars.npz",
        "C": C,
    }
    return fitted


JOIN_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
JOIN_COVERAGES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
JOIN_STRONGS = (0.6, 0.7, 0.8, 0.9, 2.0)  # 2.0: no candidate joins on its probability alone
MEDIAN_CHARS_CAP = 320  # the quality issue's target is a median answer of at most 350 characters
# ...which lets summaries, lists and timelines run to 900: their answers are composed by their form, not by
# the joins fitted here, so they stay out of the median the cap applies to.
LONG_FORM_KINDS = ("summary", "timeline")


def _fit_selection(settings, answerer, runs, model, fitted) -> dict[str, Any]:
    import statistics

    from assistant.answering import ExtractiveAnswerer

    rescored = [
        (item, question, sorted((_rescore(s, model) for s in scored), key=lambda s: -s.score))
        for item, question, scored in runs
        if item.get("must_include") and item.get("evidence") and item.get("type") != "unanswerable"
    ]
    grid = []
    for ratio, coverage, strong in itertools.product(JOIN_RATIOS, JOIN_COVERAGES, JOIN_STRONGS):
        joins = {"join_ratio": ratio, "join_coverage": coverage, "join_strong": strong}
        tried = settings.model_copy(update={"answer": settings.answer.model_copy(update=joins)})
        composer = ExtractiveAnswerer(answerer.index, answerer.corpus, tried, fitted=fitted)
        met, lengths = 0, []
        for item, question, scored in rescored:
            if not scored:
                continue
            draft = composer.compose(question, scored)  # as answers are composed
            text = draft.text.lower()
            met += all(any(o.lower() in text for o in m.split("|")) for m in item["must_include"])
            # The median answer, as the evaluation reports it, leaves refusals out.
            if not draft.refused and question.kind not in LONG_FORM_KINDS:
                lengths.append(len(text))
        grid.append((met, -statistics.median(lengths), strong, ratio, coverage))
    met, negative_median, strong, ratio, coverage = max(g for g in grid if -g[1] <= MEDIAN_CHARS_CAP)
    return {
        "join_ratio": ratio,
        "join_coverage": coverage,
        "join_strong": strong,
        "key_facts_met": met,
        "questions": len(rescored),
    }


def _rescore(s, model):
    return s.__class__(s.row, s.passage, s.span, model.probability(s.features), s.terms, s.features)


def main(argv: list[str] | None = None) -> int:
    from assistant.reranking import FITTED_PATH, exemplars_path

    parser = argparse.ArgumentParser(
        prog="python -m assistant.fitting",
        description="Fit the sentence evidence and answerability models on the tune split (never the test split).",
    )
    parser.add_argument("--tune", type=Path, default=TUNE_PATH, help="tune split (JSON lines; default %(default)s)")
    parser.add_argument("--out", type=Path, default=FITTED_PATH, help="where to write (default %(default)s)")
    args = parser.parse_args(argv)
    fitted = fit(Settings(), args.tune.resolve())
    exemplars = fitted.pop("exemplars")
    args.out.write_text(json.dumps(fitted, indent=1) + "\n", encoding="utf-8")
    np.savez(exemplars_path(args.out), **(exemplars | {"vectors": exemplars["vectors"].astype(np.float16)}))
    s, a = fitted["sentence"], fitted["answerability"]
    print(
        f"sentence model: {s['rows']} rows, cv AUC {s['cv_auc']}, top-1 {s['cv_top1']}; "
        f"answerability: {a['rows']} questions, "
        f"cv AUC {a['cv_auc']}, threshold {a['threshold']}; wrote {args.out} and {exemplars_path(args.out)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
