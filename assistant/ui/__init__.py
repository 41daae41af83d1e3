"""The browser chat UI (Gradio): cited answers, a source panel, an evidence panel, export.

Layout: on the left the essay's overview (title, author, outline, suggested questions), the
chat and the question box; on the right the *Source* panel (the passage of the clicked or
hovered ``[n]`` marker, with the cited sentence highlighted, and its references) and the
*Evidence* panel (the question as searched and, for each passage retrieved, where it is, the
sentence used and why it was chosen, with the scores behind a *Details* toggle). A second tab,
*Read the essay*, shows the whole essay with its footnotes linked to the references and the
current answer's sentences highlighted.

The package's parts:

* :mod:`assistant.ui.rendering`: the HTML and Markdown of messages and panels, pure functions
  of the answers (no Gradio);
* :mod:`assistant.ui.app`: the Gradio app (``create_app``), its events and API, and ``launch``
  with its login and middleware (Gradio is imported only when one of them runs);
* ``static/``: the page's stylesheet (``chat.css``) and scripts (``chat.js``, ``export.js``).

Importing this package loads no Gradio, model or index.
"""

from assistant.ui.app import (
    CHAT_CONCURRENCY,
    DEFAULT_HOST,
    DEFAULT_PORT,
    LOGIN_PAGE_PATHS,
    LOGIN_PAGE_PREFIXES,
    MAX_RESTORED_TURNS,
    MAX_THREADS,
    QUEUE_SIZE,
    STORAGE_KEY,
    Door,
    create_app,
    is_loopback,
    launch,
    load_auth_file,
    static_text,
)
from assistant.ui.rendering import (
    EVIDENCE_HINT,
    SOURCE_HINT,
    conversation_markdown,
    corpus_of,
    messages,
    plain_answer,
    render_answer,
    render_essay,
    render_evidence,
    render_notice,
    render_overview,
    render_question,
    render_sources_panel,
)

__all__ = [
    "CHAT_CONCURRENCY",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "EVIDENCE_HINT",
    "LOGIN_PAGE_PATHS",
    "LOGIN_PAGE_PREFIXES",
    "MAX_RESTORED_TURNS",
    "MAX_THREADS",
    "QUEUE_SIZE",
    "SOURCE_HINT",
    "STORAGE_KEY",
    "Door",
    "conversation_markdown",
    "corpus_of",
    "create_app",
    "is_loopback",
    "launch",
    "load_auth_file",
    "messages",
    "plain_answer",
    "render_answer",
    "render_essay",
    "render_evidence",
    "render_notice",
    "render_overview",
    "render_question",
    "render_sources_panel",
    "static_text",
]
