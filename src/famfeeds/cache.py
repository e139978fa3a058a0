"""A content-addressed cache of rendered newsletter issues, beside the content folder.

Rendering an issue (templates, CSS inlining, the MIME message) costs milliseconds,
and an issue whose inputs did not change renders to the same result, so rebuilds
reuse earlier results. The cache is disposable: delete .famfeeds-cache/ at any time,
and the next build fills it again.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

CACHE_DIR = ".famfeeds-cache"
SUFFIX = ".json"
KEEP_UNUSED_SECONDS = 14 * 86400
"""Entries no build used are kept this long (a preview at another address uses others)."""


class IssueCache(Mapping[str, str]):
    """Cache entries by key, read from files on demand; remembers what a build used."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> str:
        try:
            text = (self.folder / f"{key}{SUFFIX}").read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            raise KeyError(key) from None
        self.used.add(key)
        return text

    def __iter__(self) -> Iterator[str]:
        if not self.folder.is_dir():
            return iter(())
        return (p.name.removesuffix(SUFFIX) for p in self.folder.glob(f"*{SUFFIX}"))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def update(self, fresh: Mapping[str, str]) -> None:
        """Store new results and forget old ones this build did not use. Best effort: a
        cache that cannot be written only makes the next build slower."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for key, entry in fresh.items():
                fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(entry)
                Path(tmp).replace(self.folder / f"{key}{SUFFIX}")
            keep = self.used | set(fresh)
            stale = time.time() - KEEP_UNUSED_SECONDS
            for key in list(self):
                path = self.folder / f"{key}{SUFFIX}"
                if key not in keep and path.stat().st_mtime < stale:
                    path.unlink(missing_ok=True)
        except OSError:
            pass
