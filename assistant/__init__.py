"""essay-assistant: cited answers grounded in the essay "Bonding Over Bans" (Ian Wong).

``from assistant import answer`` is the one obvious entry; ``Assistant`` keeps the model and
index loaded across questions. Importing this package loads nothing heavy.
"""

import os

# Offline by construction: no library may reach for the Hugging Face hub or send telemetry.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__all__ = ["Answer", "Assistant", "Settings", "answer"]


def __getattr__(name: str):
    if name in ("Answer", "Assistant", "answer"):
        from assistant import api

        return getattr(api, name)
    if name == "Settings":
        from assistant.config import Settings

        return Settings
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
