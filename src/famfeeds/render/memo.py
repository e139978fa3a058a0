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
import marshal
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from famfeeds.render.files import FileSet, digest_of


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


def key_of(*inputs: str) -> bytes:
    """:func:`key` of strings (which always give one)."""
    digest = key(*inputs)
    assert digest is not None
    return digest


def remember(memo: Memo, *inputs: str) -> None:
    """Keep what ``inputs`` gave before for a later build, though this one did not need it
    (a memo keeps what a build uses)."""
    memo.get(key_of(*inputs))


def memoized_files(
    memo: Memo, make: Callable[[], Mapping[str, bytes]], *inputs: str
) -> Mapping[str, bytes]:
    """The files ``make()`` gives, as a mapping that knows each file's name and digest;
    when the same ``inputs`` (every input of ``make``, as strings, a name for the
    computation first) were seen before, a :class:`LazyFiles` that calls ``make`` only if
    something asks for bytes (the build's writer asks only for files that changed on disk).

    The memo keeps the names and digests only, never the bytes."""
    if isinstance(memo, NoMemo):
        return make()
    digest = key_of(*inputs)
    found = memo.get(digest)
    if found is not None:
        known = _decode_digests(found)
        if known is not None:
            return LazyFiles(known, make)
    files = Digested(make())
    memo.put(digest, _encode_digests(files.digests))
    return files


class Digested(Mapping[str, bytes]):
    """Files with their digests (famfeeds.render.files.digest_of) worked out once."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = files
        known = getattr(files, "digest", None)  # a mapping that knows them (FileSet, ...)
        self.digests: dict[str, bytes]
        if isinstance(files, FileSet):
            self.digests = files.digests()
        elif callable(known):
            self.digests = {name: bytes(known(name)) for name in files}
        else:
            self.digests = {name: digest_of(data) for name, data in files.items()}

    def __getitem__(self, name: str) -> bytes:
        return self.files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def digest(self, name: str) -> bytes:
        """The digest of one file's bytes."""
        return self.digests[name]


class LazyFiles(Mapping[str, bytes]):
    """Files known by name and digest, made (all at once, by the pure ``make``) only when
    one's bytes are asked for. ``make`` gives the same bytes for the same inputs, so the
    digests remembered from an earlier build describe what it would give now."""

    def __init__(
        self, digests: Mapping[str, bytes], make: Callable[[], Mapping[str, bytes]]
    ) -> None:
        self.digests = digests
        self.make = make
        self.made: Mapping[str, bytes] | None = None

    def __getitem__(self, name: str) -> bytes:
        """The file's bytes, made now; they must have the digest remembered (else the
        inputs changed while the build ran, say a template saved meanwhile)."""
        if name not in self.digests:
            raise KeyError(name)
        if self.made is None:
            self.made = self.make()
        data = self.made[name]
        if digest_of(data) != self.digests[name]:
            raise StaleMemo(name)
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(self.digests)

    def __len__(self) -> int:
        return len(self.digests)

    def __contains__(self, name: object) -> bool:
        return name in self.digests

    def digest(self, name: str) -> bytes:
        """The digest of one file's bytes, without making them."""
        return self.digests[name]


def _encode_digests(digests: Mapping[str, bytes]) -> bytes:
    """Names and digests as one value (marshal: the memo is keyed by the interpreter)."""
    return marshal.dumps(dict(digests))


def _decode_digests(data: bytes) -> dict[str, bytes] | None:
    try:
        found = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(found, dict):
        return None
    return found


class StaleMemo(Exception):
    """A remembered file made again came out other than remembered: something the memo's
    key does not hold changed (a template saved during the build, say). The build forgets
    the memo and builds again (famfeeds.build.pipeline.build)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} came out other than an earlier build made it from the same inputs"
        )
        self.name = name
