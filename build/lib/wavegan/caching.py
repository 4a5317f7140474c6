"""Short, stable names for cached and identified things: hex digests of their content.

Store folders, feature caches, classifier caches, run identities and study lock files are named by
these, so a name changes exactly when the content does. The digests must stay byte-for-byte what they
are: a different formula would orphan every cache already on disk.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["cache_key", "text_digest"]


def text_digest(text: str, length: int = 16) -> str:
    """The first `length` hex digits of the SHA-256 of `text` (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def cache_key(content: Any, length: int = 16) -> str:
    """A digest of JSON-able `content` (dicts, lists, numbers, strings) that changes whenever it does.

    Keys are sorted, so dict order does not matter; a value JSON cannot write (a Path, a set) goes in
    as its str().
    """
    return text_digest(json.dumps(content, sort_keys=True, default=str), length)
