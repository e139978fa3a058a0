"""A build's files as one mapping that leaves each part's bytes where they are.

Renderers return files by name. Some parts make their bytes only when asked (files the
build remembered, stored newsletter issues); merging them into a dict would make or read
every one. A :class:`FileSet` only remembers which mapping holds which name, so the writer
asks a part for a file's bytes only when it needs them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping


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
