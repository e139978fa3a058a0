"""A build's files as one mapping that leaves stored bytes where they are.

Renderers return files by name. Most hold bytes; the newsletter's come from the issue cache
as *stored* files (famfeeds.build.issue_cache.StoredFiles), read from disk only when something asks
for their bytes. Merging them into a dict would read every one; a :class:`FileSet` only
remembers which mapping holds which name, so a rebuild that finds a stored file unchanged
(by its digest, :meth:`FileSet.digest`) never reads it, and a first build never holds every
newsletter issue in memory at once.

A mapping tells the digests of its files without their bytes by offering either of:

- ``digests``: an attribute (not a method) holding a Mapping of every one of its names to
  its digest (famfeeds.render.memo's files do): read in one step, the cheapest;
- ``digest(name)``: a method giving one file's digest (a stored newsletter issue's).

Any other mapping's files are hashed (:func:`digest_of`), about 5 µs a file here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping


def digest_of(data: bytes) -> bytes:
    """The digest that identifies a built file's bytes: SHA-256, its first 16 bytes (twice
    as fast as BLAKE2b where the CPU has SHA instructions)."""
    return hashlib.sha256(data).digest()[:16]


class FileSet(Mapping[str, bytes]):
    """Several mappings of files as one; a name given again is taken from the later one
    (as ``dict.update`` would)."""

    def __init__(self, *parts: Mapping[str, bytes]) -> None:
        self.owner: dict[str, Mapping[str, bytes]] = {}
        self.parts: list[Mapping[str, bytes]] = []
        for part in parts:
            self.add(part)

    def add(self, part: Mapping[str, bytes]) -> None:
        """Add the files of ``part`` (their names only: no bytes are read)."""
        if isinstance(part, FileSet):
            self.owner.update(part.owner)
            self.parts.extend(part.parts)
        else:
            self.owner.update(dict.fromkeys(part, part))
            self.parts.append(part)

    def __getitem__(self, name: str) -> bytes:
        return self.owner[name][name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.owner)

    def __len__(self) -> int:
        return len(self.owner)

    def __contains__(self, name: object) -> bool:
        return name in self.owner

    def digest(self, name: str) -> bytes:
        """:func:`digest_of` the file's bytes, from its mapping when that one knows it
        (a stored file's header does) without reading them."""
        part = self.owner[name]
        known = getattr(part, "digest", None)
        if callable(known):
            value = known(name)
            if isinstance(value, bytes):
                return value
        return digest_of(part[name])

    def digests(self) -> dict[str, bytes]:
        """Every file's digest, by name, in this set's order: :meth:`digest` of each, taken
        a part at a time (a part's ``digests`` mapping in one step)."""
        result: dict[str, bytes] = {}
        for part in self.parts:  # in the order of add(), as self.owner was filled
            result.update(part_digests(part))
        if len(result) != len(self.owner):  # a part's digests named files it does not hold
            return {name: self.digest(name) for name in self.owner}
        return result


def part_digests(part: Mapping[str, bytes]) -> Mapping[str, bytes]:
    """The digest of each of ``part``'s files, as the module says: its ``digests`` mapping
    where it has one of the right size, else its ``digest(name)`` of each file, else
    :func:`digest_of` of each file's bytes."""
    known = getattr(part, "digests", None)
    if isinstance(known, Mapping) and len(known) == len(part):
        return known
    one = getattr(part, "digest", None)
    if not callable(one):
        return {name: digest_of(data) for name, data in part.items()}
    result = {}
    for name in part:
        value = one(name)
        result[name] = value if isinstance(value, bytes) else digest_of(part[name])
    return result
