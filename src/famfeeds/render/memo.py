"""Remembered render results: bytes a pure function made from the same inputs before.

A renderer stays pure: it asks the memo the build hands it (``RenderContext.memo``) for the
bytes of a value it is about to compute, by a key made from *every* input of that
computation; on a miss it computes them and offers them back. The build keeps the memo on
disk between builds, keyed by famfeeds' own code and the libraries that shape the bytes, so
a hit gives exactly what the computation would: the output never depends on the memo.

:func:`key` turns the inputs into a digest of their ``repr``. That suits frozen dataclasses,
records (pydantic models), strings, numbers, dates and tuples of them, whose ``repr`` shows
every field; a value whose ``repr`` is an object's address gives no key, so nothing is
remembered for it (safe, only slower).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol


class Memo(Protocol):
    """Bytes by key; a memo may forget anything at any time."""

    def get(self, key: bytes) -> bytes | None:
        """The bytes remembered under ``key``, or None."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Remember ``value`` under ``key``."""
        ...


class NoMemo:
    """The memo that remembers nothing (renderers called outside a build, tests)."""

    def get(self, key: bytes) -> bytes | None:
        """Nothing is remembered."""
        return None

    def put(self, key: bytes, value: bytes) -> None:
        """Forgotten at once."""


NO_MEMO = NoMemo()


def key(*inputs: object) -> bytes | None:
    """A digest of ``inputs`` (their ``repr``), or None if one of them shows only its
    address (no reliable key)."""
    text = repr(inputs)
    if " object at 0x" in text:
        return None
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def memoized(memo: Memo, make: Callable[[], bytes], *inputs: object) -> bytes:
    """``make()``, or the bytes it gave before for the same ``inputs`` (every input of
    ``make``, and a name for the computation first)."""
    if isinstance(memo, NoMemo):
        return make()
    digest = key(*inputs)
    if digest is None:
        return make()
    found = memo.get(digest)
    if found is None:
        found = make()
        memo.put(digest, found)
    return found
