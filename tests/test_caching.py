"""Cache keys stay byte-for-byte what the folders on disk are already named by (wavegan/caching.py)."""

import hashlib
import json
from pathlib import Path

from wavegan.caching import cache_key, text_digest

# What the store, feature, classifier and run-identity keys hash: nested dicts, tuples, floats, None.
CONTENTS = [
    {"source": "builtin", "num_samples": 3000, "pitch_range": [36, 84], "families": None, "seed": 0},
    {"name": "specgan", "n_fft": 256, "log_eps": 1e-6, "center": False},
    {"version": 3, "mel": {"n_fft": 512}, "classifier": {"channels": (16, 32)}, "sklearn": ["1", "9"]},
    {"b": 1, "a": {"y": 2.5, "x": [True, "z"]}},
]


def old_key(content, length, **dumps_kwargs) -> str:
    """The formula each module wrote out by hand before the helper."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, **dumps_kwargs).encode()).hexdigest()[:length]


def test_cache_key_equals_the_hand_written_keys_it_replaced():
    for content in CONTENTS:
        assert cache_key(content, 12) == old_key(content, 12, default=str)  # data store
        assert cache_key(content, 12) == old_key(content, 12)  # feature cache
        assert cache_key(content, 12) == old_key(content, 12, default=list)  # classifier cache
        assert cache_key(content, 16) == old_key(content, 16, default=str)  # run identity


def test_cache_key_ignores_dict_order_and_writes_paths_as_text():
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})
    assert cache_key({"path": Path("/x/y")}) == cache_key({"path": "/x/y"})
    assert len(cache_key({})) == 16 and len(cache_key({}, 12)) == 12


def test_text_digest_is_the_sha256_prefix():
    assert text_digest("sqlite:///s.db|study", 16) == hashlib.sha256(b"sqlite:///s.db|study").hexdigest()[:16]
