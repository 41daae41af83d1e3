"""A corpus N times the essay's size: the essay plus synthetic sections in the same Markdown format.

The synthetic paragraphs are sentences of words drawn (seeded) from the essay's own vocabulary,
so BM25 postings and passage lengths resemble the essay's; they sit in ``## Synthetic Section n``
headings between the essay body and its ``## References``, which stay as they are.
"""

from __future__ import annotations

import random
import re
from pathlib import Path


def scaled_corpus(essay: str, factor: int, seed: int = 7) -> str:
    """Return the essay text grown to about ``factor`` times its length (characters)."""
    words = re.findall(r"[A-Za-z][A-Za-z’'-]+", essay.split("\n## References", 1)[0])
    rng = random.Random(seed)
    target = len(essay) * (factor - 1)
    sections: list[str] = []
    size, n = 0, 0
    while size < target:
        n += 1
        paragraphs = []
        for _ in range(rng.randint(4, 8)):
            sentences = []
            for _ in range(rng.randint(3, 6)):
                sentence = " ".join(rng.choice(words) for _ in range(rng.randint(12, 28)))
                sentences.append(sentence[0].upper() + sentence[1:] + ".")
            paragraphs.append(" ".join(sentences))
        block = f"## Synthetic Section {n}\n\n" + "\n\n".join(paragraphs)
        sections.append(block)
        size += len(block) + 2
    body, refs = essay.split("\n## References", 1)
    return body.rstrip("\n") + "\n\n" + "\n\n".join(sections) + "\n\n## References" + refs


def write_scaled_corpus(essay_path: Path, out_dir: Path, factor: int, name: str = "essay.md") -> Path:
    """Write :func:`scaled_corpus` of ``essay_path`` to ``out_dir/name`` and return that path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(scaled_corpus(essay_path.read_text(encoding="utf-8"), factor), encoding="utf-8")
    return path
