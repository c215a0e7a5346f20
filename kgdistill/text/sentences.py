"""How a note is cut into sentences: the text modality, the negation detector and prediction read it alike."""
from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


def split_sentences(text: str) -> list[str]:
    """Notes are read sentence by sentence: each sentence is one finding, mostly."""
    parts = [p.strip() for p in _SENTENCE.split(text.strip())]
    return [p for p in parts if p] or [text.strip()]
