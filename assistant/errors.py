"""Errors the assistant raises. Each message says what went wrong and how to fix it.

The CLI and UI translate these into one-line messages; anything else is a bug.
"""


class AssistantError(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidQuestionError(AssistantError, ValueError):
    """The question is empty, too long, or contains control characters."""


class SettingsError(AssistantError, ValueError):
    """A setting (``ASSISTANT_*`` variable, CLI flag or ``Settings`` field) is out of range or of the wrong type."""


class CorpusError(AssistantError):
    """The corpus file is missing, unreadable, not the essay, or holds a sentence too long to embed."""


class ModelError(AssistantError):
    """The embedding model cannot be found, extracted or loaded."""


class IndexStoreError(AssistantError):
    """The index is missing, corrupt, locked by a rebuild, or cannot be written."""


class LLMError(AssistantError):
    """The LLM backend is not installed, misconfigured, unreachable, too slow or refused the request."""
