"""The ``essay-assistant`` command line. Heavy libraries load only inside the commands that need them."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.errors import AssistantError, InvalidQuestionError
from assistant.types import Length

app = typer.Typer(
    help=(
        "Ask the essay “Bonding Over Bans” (Ian Wong) questions and get answers built from its own "
        "sentences, each cited [n] to the passage it came from. Runs offline.\n\n"
        "Examples:\n\n"
        '  essay-assistant ask "When did Japan ban Huawei equipment from its ministries?"\n\n'
        '  essay-assistant ask --json "Why is cooperative prohibition hard to achieve?"\n\n'
        "  essay-assistant ask --jsonl questions.jsonl > answers.jsonl\n\n"
        "  essay-assistant index status\n\n"
        "  essay-assistant chat   (the chat UI on http://127.0.0.1:7860)\n\n"
        "  essay-assistant chat --host 0.0.0.0 --auth-file users.txt   (for other machines, with a login)\n\n"
        "Settings can also come from ASSISTANT_* environment variables (see README)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
index_app = typer.Typer(help="Build, rebuild or inspect the vector index.", no_args_is_help=True)
app.add_typer(index_app, name="index")

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
_overrides: dict[str, Any] = {}


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings():
    from assistant.config import load_settings
    from assistant.errors import SettingsError

    try:
        return load_settings(**_overrides)
    except SettingsError as exc:
        message = str(exc)
        for name in _overrides:  # a value given by a flag is named as the flag: "--top-k=0: …"
            message = message.replace(f"ASSISTANT_{name.upper()}", f"--{name.replace('_', '-')}")
        raise _fail(f"{message}; check your ASSISTANT_* variables and flags", EXIT_BAD_INPUT) from None


@app.callback()
def main_options(
    index_dir: Annotated[Path | None, typer.Option(help="Index folder (env ASSISTANT_INDEX_DIR).")] = None,
    corpus_dir: Annotated[Path | None, typer.Option(help="Folder holding essay.md (env ASSISTANT_CORPUS_DIR).")] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option(help="'all-MiniLM-L6-v2' (bundled) or a local model folder (env ASSISTANT_EMBEDDING_MODEL)."),
    ] = None,
    top_k: Annotated[int | None, typer.Option(help="Passages retrieved per question (env ASSISTANT_TOP_K).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens (to stderr).")] = False,
) -> None:
    """Global options, applied to every command."""
    given = {"index_dir": index_dir, "corpus_dir": corpus_dir, "embedding_model": embedding_model, "top_k": top_k}
    _overrides.clear()
    _overrides.update({k: v for k, v in given.items() if v is not None})
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("assistant").setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("sentence_transformers", "transformers", "chromadb", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


def render_text(answer) -> str:
    """The human-readable form of an answer: text, then numbered sources and their references."""
    width = 100
    lines = [textwrap.fill(answer.answer, width)]
    if answer.citations:
        lines += ["", "Sources:"]
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.section} — {c.passage_id} ({c.source}, characters {c.start}–{c.end})")
        lines.append(textwrap.fill(f"“{c.quote}”", width, initial_indent="    ", subsequent_indent="    "))
        for ref in c.references:
            if ref.text == c.quote:
                continue  # a cited bibliography entry: already shown as the quote
            lines.append(
                textwrap.fill(f"({ref.number}) {ref.text}", width, initial_indent="    ", subsequent_indent="        ")
            )
    return "\n".join(lines)


def _read_jsonl(source: str):
    """Yield ``(line_number, id, question_or_error)``; errors are ``AssistantError`` instances."""
    stream = sys.stdin.buffer if source == "-" else Path(source).open("rb")
    with stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield number, None, InvalidQuestionError("not valid UTF-8")
                continue
            except json.JSONDecodeError as exc:
                yield number, None, InvalidQuestionError(f"not valid JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                yield number, None, InvalidQuestionError('expected a JSON object with a "question" field')
                continue
            item_id = None if row.get("id") is None else str(row["id"])
            if "question" not in row:
                yield number, item_id, InvalidQuestionError('no "question" field')
                continue
            yield number, item_id, row["question"]


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question, in quotes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    jsonl: Annotated[
        str | None,
        typer.Option(
            "--jsonl",
            metavar="FILE",
            help='Answer every line of FILE (or - for stdin): {"question": "...", "id": "..."}; '
            'writes one JSON answer per line, in order. A bad line gets an {"error"} line.',
        ),
    ] = None,
    llm: Annotated[
        str | None,
        typer.Option(
            help="Who writes the answer: extractive (default, no LLM), openai (any OpenAI-compatible server) "
            "or ollama. LLM answers are checked against the passages; the extractive answer is the fallback "
            "[env: ASSISTANT_LLM]. API key: ASSISTANT_LLM_API_KEY or OPENAI_API_KEY.",
        ),
    ] = None,
    llm_base_url: Annotated[
        str | None,
        typer.Option(help="LLM server URL, e.g. http://127.0.0.1:8000/v1 [env: ASSISTANT_LLM_BASE_URL]."),
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="LLM model name [env: ASSISTANT_LLM_MODEL].")] = None,
    llm_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the LLM [env: ASSISTANT_LLM_TIMEOUT_S].")
    ] = None,
    length: Annotated[
        Length,
        typer.Option(
            help="How long the answer runs: short (the first sentence its form calls for), normal, or long "
            "(twice the normal budget).",
        ),
    ] = "normal",
) -> None:
    """Answer a question with cited sentences from the essay (builds the index on first use).

    Questions about the essay's structure work too: "How many references does the essay have?",
    "List the sections", "Which sources are in Japanese?".
    """
    from assistant.api import Assistant

    if (question is None) == (jsonl is None):
        raise _fail("give either a QUESTION or --jsonl FILE (see `essay-assistant ask --help`)", EXIT_BAD_INPUT)
    given = {"llm": llm, "llm_base_url": llm_base_url, "llm_model": llm_model, "llm_timeout_s": llm_timeout}
    _overrides.update({k: v for k, v in given.items() if v is not None})
    assistant = Assistant(_settings())
    try:
        if jsonl is None:
            result = assistant.answer(question, length=length)
            if result.fallback and not as_json:
                typer.echo(f"note: showing the extractive answer: {result.fallback}", err=True)
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False) if as_json else render_text(result))
            return
        failures = 0
        for number, item_id, item in _read_jsonl(jsonl):
            try:
                if isinstance(item, AssistantError):
                    raise item
                answered = assistant.answer(item, id=item_id, length=length)
                typer.echo(json.dumps(answered.to_dict(), ensure_ascii=False))
            except InvalidQuestionError as exc:
                failures += 1
                typer.echo(f"error: line {number}: {exc}", err=True)
                typer.echo(json.dumps({"line": number, "id": item_id, "error": str(exc)}, ensure_ascii=False))
        if failures:
            raise typer.Exit(EXIT_FAILED)
    except FileNotFoundError as exc:
        raise _fail(f"cannot read {exc.filename}: no such file", EXIT_BAD_INPUT) from None
    except InvalidQuestionError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    except AssistantError as exc:
        raise _fail(str(exc)) from None


@app.command("eval")
def evaluate_command(
    qa_files: Annotated[
        list[Path],
        typer.Argument(
            help=(
                "QA sets (JSON lines with question, type, must_include, evidence); each is a split named by its "
                "file stem, e.g. tests/data/tune.jsonl tests/data/test.jsonl."
            )
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for eval.json, eval.md, eval.png and reliability.png.")] = Path(
        "docs"
    ),
    ablate: Annotated[
        bool,
        typer.Option(
            "--ablate",
            help="Also switch each answering mechanism off in turn and write ablation.md/.json (a few minutes).",
        ),
    ] = False,
    min_key_fact_accuracy: Annotated[float, typer.Option(help="Fail (exit 1) below this % of key facts.")] = 0.0,
    min_recall_at_5: Annotated[float, typer.Option(help="Fail below this % evidence recall@5.")] = 0.0,
    min_refusal_accuracy: Annotated[float, typer.Option(help="Fail below this % of unanswerables declined.")] = 0.0,
    max_false_refusal_rate: Annotated[
        float, typer.Option(help="Fail above this % of answerable questions declined.")
    ] = 100.0,
    min_citation_validity: Annotated[float, typer.Option(help="Fail below this % of verbatim citations.")] = 0.0,
    conversation: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="FILE",
            help="Also play conversation scripts (JSON lines: conversation, turn, question, kind, must_include) "
            "and write conversation.md/.json: turns correct, hijacked by history, repeating the previous answer.",
        ),
    ] = None,
) -> None:
    """Score the assistant on QA sets (splits) and write a JSON + Markdown + PNG report.

    Every split goes through answer(), as the CLI and UI do. Thresholds apply to each split;
    exits 1 when one is missed, so CI can gate on it. Example:

      essay-assistant eval tests/data/tune.jsonl tests/data/test.jsonl --out docs --ablate

    and with the conversation scripts: add --conversation tests/data/conversation_test.jsonl.
    """
    from assistant.api import Assistant
    from assistant.evaluation import ablate as run_ablation
    from assistant.evaluation import (
        evaluate_conversations,
        evaluate_splits,
        load_conversations,
        load_items,
        render_ablation,
        write_conversation_report,
        write_split_report,
    )

    conversations = conversation or []
    try:
        for path in qa_files:
            load_items(path)
        scripts = [load_conversations(path) for path in conversations]
    except (OSError, ValueError) as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    settings = _settings()
    try:
        assistant = Assistant(settings)
        result = evaluate_splits(assistant, qa_files)
        threshold = assistant.refusal_threshold
        ablation = run_ablation(settings, qa_files) if ablate else None
        played = [evaluate_conversations(assistant, script) for script in scripts]
    except AssistantError as exc:
        raise _fail(str(exc)) from None
    paths = write_split_report(result, out, threshold)
    if played:
        paths += write_conversation_report(conversations, played, out)
        for path, report in zip(conversations, played, strict=True):
            typer.echo(f"{path.stem}: " + ", ".join(f"{k} {v}" for k, v in report["overall"].items()))
    if ablation is not None:
        (out / "ablation.json").write_text(json.dumps(ablation, indent=2) + "\n", encoding="utf-8")
        (out / "ablation.md").write_text(render_ablation(ablation), encoding="utf-8")
        paths += [out / "ablation.json", out / "ablation.md"]
    gates = [
        ("key_fact_accuracy", min_key_fact_accuracy, lambda v, t: (v or 0) >= t),
        ("evidence_recall@5", min_recall_at_5, lambda v, t: (v or 0) >= t),
        ("refusal_accuracy", min_refusal_accuracy, lambda v, t: v is None or v >= t),
        ("false_refusal_rate", max_false_refusal_rate, lambda v, t: v is None or v <= t),
        ("citation_validity", min_citation_validity, lambda v, t: v is None or v >= t),
    ]
    missed = []
    for name, report in result["splits"].items():
        overall = report["overall"]
        typer.echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in overall.items()))
        missed += [
            f"{name} {metric} {overall[metric]} (threshold {limit})"
            for metric, limit, ok in gates
            if not ok(overall[metric], limit)
        ]
    typer.echo("wrote " + ", ".join(map(str, paths)))
    if missed:
        raise _fail("evaluation below threshold: " + "; ".join(missed))


@app.command()
def chat(
    host: Annotated[
        str, typer.Option(help="Interface to serve on. Anything but loopback needs --auth-file (or --no-auth).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7860,
    auth_file: Annotated[
        Path | None,
        typer.Option(
            "--auth-file",
            envvar="ASSISTANT_AUTH_FILE",
            metavar="FILE",
            help="Require a login: FILE holds username:password lines (# comments allowed); every page and API "
            "route then needs one of them (Gradio's login). Required for a non-loopback --host.",
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve a non-loopback --host with no login, on purpose: anyone who can reach it can use it.",
        ),
    ] = False,
    llm: Annotated[
        str | None,
        typer.Option(help="Who writes the answers: extractive (default), openai or ollama, as for `ask`."),
    ] = None,
    llm_base_url: Annotated[str | None, typer.Option(help="LLM server URL [env: ASSISTANT_LLM_BASE_URL].")] = None,
    llm_model: Annotated[str | None, typer.Option(help="LLM model name [env: ASSISTANT_LLM_MODEL].")] = None,
    llm_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the LLM [env: ASSISTANT_LLM_TIMEOUT_S].")
    ] = None,
) -> None:
    """Serve the chat (open the printed address in your browser): cited answers, sources, evidence (Gradio, offline).

    By default it listens on 127.0.0.1 only. To serve other machines, give --host 0.0.0.0 with --auth-file FILE
    (username:password lines), e.g. `essay-assistant chat --host 0.0.0.0 --auth-file users.txt`. The LLM
    options are those of `ask`: `essay-assistant chat --llm openai --llm-base-url http://127.0.0.1:8000/v1`.
    """
    from assistant.ui import is_loopback, load_auth_file

    given = {"llm": llm, "llm_base_url": llm_base_url, "llm_model": llm_model, "llm_timeout_s": llm_timeout}
    _overrides.update({k: v for k, v in given.items() if v is not None})
    auth = None
    if auth_file is not None:
        try:
            auth = load_auth_file(auth_file)
        except ValueError as exc:
            raise _fail(str(exc), EXIT_BAD_INPUT) from None
    if not is_loopback(host) and auth is None:
        if not no_auth:
            raise _fail(
                f"--host {host} would let other machines reach the assistant: give --auth-file FILE "
                "(username:password lines) to require a login, or --no-auth to serve it to anyone on purpose",
                EXIT_BAD_INPUT,
            )
        typer.echo(
            f"warning: serving on {host}:{port} with no login; anyone who can reach this machine can use it", err=True
        )
    from assistant.api import Assistant
    from assistant.ui import launch

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # the wildcard is no address a browser can open
    where = f"http://{shown}:{port}/" + (f" (and this machine's other addresses, port {port})" if shown != host else "")
    typer.echo(f"Loading the model and index, then serving {where} (Ctrl+C to stop)…", err=True)
    try:
        launch(Assistant(_settings()), host=host, port=port, auth=auth, no_auth=no_auth)
    except AssistantError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot serve on {host}:{port}: {exc}; try another --port") from None


def _print_status(state) -> None:
    manifest = state.manifest
    typer.echo(f"index: {state.state}" + (f" ({state.location})" if state.location else ""))
    for reason in state.reasons:
        typer.echo(f"  why: {reason}")
    if manifest:
        typer.echo(
            f"  {manifest.get('passage_count')} passages, {manifest.get('sentence_count')} sentences; "
            f"model {manifest.get('model')}; chunk_tokens {manifest.get('chunking', {}).get('chunk_tokens')}; "
            f"built {manifest.get('built_at')} in {manifest.get('build_s')} s"
        )
    if state.state != "fresh":
        typer.echo("  run `essay-assistant index build` to build it")


@index_app.command("build")
def index_build() -> None:
    """Build the index if it is missing or stale (no-op when fresh)."""
    _index_command(force=False)


@index_app.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the index from scratch; the old one serves until the new one is complete."""
    _index_command(force=True)


def _index_command(force: bool) -> None:
    from assistant import index

    try:
        _print_status(index.build(_settings(), force=force))
    except AssistantError as exc:
        raise _fail(str(exc)) from None


@index_app.command("status")
def index_status() -> None:
    """Say whether the index is fresh, stale or missing, and why (exit 1 unless fresh)."""
    from assistant import index

    try:
        state = index.status(_settings())
    except AssistantError as exc:
        raise _fail(str(exc)) from None
    _print_status(state)
    if state.state != "fresh":
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
