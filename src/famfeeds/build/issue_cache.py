"""A content-addressed cache of rendered newsletter issues, beside the content folder.

Rendering an issue (templates, CSS inlining, the MIME message) costs milliseconds, and an
issue whose inputs did not change renders to the same bytes, so rebuilds reuse earlier
results. The key (famfeeds.build.pipeline.render_letters) covers everything the bytes can
depend on: the code and library versions (famfeeds.build.keys), every template and message
catalogue the environment can load, and the issue's fingerprint (famfeeds.build.evaluate:
the show, and each record the issue holds, by the digests the loader took, source paths
left out, so building from another working folder hits the same entries).

The cache is disposable: delete .famfeeds-cache/ at any time. An unreadable or corrupt
entry is a miss (with one warning for the build to print), never an error; a cache folder
that cannot be written only makes the next build slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from famfeeds.build.evaluate import DIGEST_SIZE, digest_of
from famfeeds.plan.issues import Issue
from famfeeds.render.personal import Markers, RenderedIssue

if TYPE_CHECKING:
    from jinja2 import BaseLoader, Environment

    from famfeeds.render.personal import Letter

SUFFIX = ".json"
KEEP_UNUSED_SECONDS = 14 * 86400
PRUNE_EVERY_SECONDS = 86400
"""Builds look for unused entries to forget at most this often (a look lists every entry)."""
"""Entries no build used are kept this long (a preview at another address uses others)."""


def templates_digest(env: Environment) -> str:
    """A digest of every template the environment can load (the project's first),
    including those in folders reached through a link (Jinja loads them, though its own
    listing skips them)."""
    from jinja2 import TemplateNotFound

    assert env.loader is not None
    digest = hashlib.sha256()
    for name in sorted(template_names(env.loader)):
        try:
            source = env.loader.get_source(env, name)[0].encode()
        except UnicodeDecodeError:  # not text (a .DS_Store, say): no template uses it
            source = b"\0not text"
        except (TemplateNotFound, OSError):  # a dangling link (an editor's .#lock), say
            source = b"\0unreadable"
        digest.update(name.encode() + b"\0" + source)
    return digest.hexdigest()


def template_names(loader: BaseLoader) -> set[str]:
    """Every template name ``loader`` can load: for folders (FileSystemLoader, also inside
    a ChoiceLoader), every file under them, following links to folders (but not into a
    folder that is one of its own parents, so a link loop ends); other loaders list their
    own."""
    from jinja2 import ChoiceLoader, FileSystemLoader

    if isinstance(loader, ChoiceLoader):
        return set().union(*(template_names(one) for one in loader.loaders))
    if not isinstance(loader, FileSystemLoader):
        return set(loader.list_templates())
    names: set[str] = set()
    for root in loader.searchpath:
        for folder, subfolders, files in os.walk(root, followlinks=True):
            relative = os.path.relpath(folder, root)
            if relative != "." and _loops(root, relative):
                subfolders.clear()
                continue
            for file in files:
                name = file if relative == "." else f"{relative}/{file}"
                names.add(name.replace(os.sep, "/"))
    return names


def _loops(root: str, relative: str) -> bool:
    """Whether ``root``/``relative`` is, once links are followed, the same folder as one
    of the folders leading to it."""
    folder = Path(root, relative)
    real = folder.resolve()
    return any(
        parent.resolve() == real
        for parent in folder.parents
        if len(parent.parts) >= len(Path(root).parts)
    )


@dataclass
class IssueCache:
    """Entries by key, read from files on demand; remembers what a build used.

    An entry is two files in the cache's ``issues/`` folder: ``<key>.json``, a header
    (subject, markers, and the name, size and digest of each part:
    famfeeds.build.evaluate.digest_of), and ``<key>.bin``, the parts' bytes one after another
    (the issue's HTML and text with their markers, then its built files), compressed with
    zlib. A letter from the cache is *stored*: its parts are read only when something asks
    for their bytes, so a rebuild that finds its files unchanged in output/
    (famfeeds.build.inplace compares the digests) never reads them.

    The index (``issues.index``) keeps each entry's header and the stat of its two files,
    and the stat of the ``issues/`` folder as the last save left it. While the folder keeps
    that stat, no entry was added, removed or replaced since (entries are only ever
    replaced whole, by a rename), so a rebuild opens no entry and stats none; otherwise an
    entry whose files changed is read afresh. A body is checked against its header's sizes
    whenever it is read.

    A newly rendered letter is kept compressed in memory (about 6 KB an issue), not as it
    was rendered, and written by :meth:`save`, which a build calls once its output is
    written: a build that fails or is refused leaves the cache folder as it was.
    """

    folder: Path
    """The cache folder (.famfeeds-cache/); entries live in its ``issues/`` folder."""
    used: set[str] = field(default_factory=set)
    """Keys found in the cache by this build."""
    fresh: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    """Keys this build rendered: the header and the compressed body, for :meth:`save`."""
    warnings: list[str] = field(default_factory=list)
    index: dict[str, Packed] | None = None
    trusted: bool = False
    """The entries folder has the stat the index recorded: its entries are as recorded."""
    dirty: bool = False
    pruned: float = 0.0
    """When a build last looked for entries to forget (:meth:`_prune`)."""

    store: Path = field(init=False)
    """The folder of the entries."""

    def __post_init__(self) -> None:
        self.store = self.folder / ENTRIES_DIR

    def _index(self) -> dict[str, Packed]:
        if self.index is None:
            from famfeeds.build.record_cache import load_private_pickle

            data = load_private_pickle(self.folder / INDEX)
            ok = isinstance(data, dict) and data.get("format") == FORMAT
            ok = ok and isinstance(data.get("entries"), dict)
            self.index = data["entries"] if ok else {}
            self.trusted = ok and data.get("store") == _signature(self.store)
            pruned = data.get("pruned") if ok else None
            self.pruned = pruned if isinstance(pruned, float) else 0.0
        return self.index

    def get(self, key: str, issue: Issue) -> Letter | None:
        """The cached letter for ``issue``, or None (a corrupt entry warns once)."""
        packed = self._index().get(key)
        if packed is not None and self.trusted:
            with contextlib.suppress(ValueError, TypeError):  # else: read the entry afresh
                letter = packed_letter(issue, packed, f"{self.store}/{key}{BODY}")
                self.used.add(key)
                return letter
        known = None if packed is None else _unpack(packed)
        head, body = self.store / f"{key}{SUFFIX}", self.store / f"{key}{BODY}"
        signatures = (_signature(head), _signature(body))
        if known is None or known[:2] != signatures:
            try:
                known = _read_header(head, signatures)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                if not self.warnings:
                    self.warnings.append(
                        f"{head}: unreadable issue cache entry ({type(exc).__name__}); "
                        "rendering the issue again"
                    )
                return None
            self._index()[key] = _pack(known)
            self.dirty = True
        self.used.add(key)
        return stored_letter(issue, known, body)

    def put(self, key: str, letter: Letter) -> Letter:
        """Keep a newly rendered letter for :meth:`save`, and give it back as stored: its
        bytes compressed in memory until something reads them."""
        return self.put_encoded(key, letter.item.issue, *encode(letter))

    def put_encoded(self, key: str, issue: Issue, header: bytes, body: bytes) -> Letter:
        """:meth:`put` of a letter :func:`encode` gave (in another process, say)."""
        self.fresh[key] = (header, body)
        known = _entry(json.loads(header), (MISSING, MISSING))
        return stored_letter(issue, known, body)

    def save(self) -> None:
        """Write the new entries and the index; when entries were added (and once a day at
        most), also forget those no build used lately. Best effort: a cache that cannot be
        written only makes the next build slower."""
        from famfeeds.build.project import private_folder
        from famfeeds.build.record_cache import save_private_pickle
        from famfeeds.build.writer import atomic_write

        if self.index is None and not self.fresh:  # this build never looked: nothing to do
            return
        index = self._index()
        with contextlib.suppress(OSError):
            if self.fresh:
                private_folder(self.folder)
                private_folder(self.store)
            for key, (header, body) in self.fresh.items():
                head, stored = self.store / f"{key}{SUFFIX}", self.store / f"{key}{BODY}"
                atomic_write(stored, body, fsync=False)  # the body first: a header means both
                atomic_write(head, header, fsync=False)
                entry = _entry(json.loads(header), (_signature(head), _signature(stored)))
                index[key] = _pack(entry)
                self.dirty = True
            if self.fresh and time.time() - self.pruned > PRUNE_EVERY_SECONDS:
                self._prune(index)
                self.pruned, self.dirty = time.time(), True
            store = _signature(self.store)
            if (self.dirty or not self.trusted) and self.store.is_dir():
                data = {"format": FORMAT, "store": store, "entries": index, "pruned": self.pruned}
                if save_private_pickle(self.folder / INDEX, data):
                    self.dirty, self.trusted = False, True
        self.fresh.clear()

    def _prune(self, index: dict[str, Packed]) -> None:
        """Delete entries no build used for KEEP_UNUSED_SECONDS, a killed build's
        temporary files, and entries of the layout before ``issues/``."""
        keep = self.used | set(self.fresh)
        now = time.time()
        with os.scandir(self.store) as listing:
            names = [entry.name for entry in listing]
        for name in names:
            path = self.store / name
            if name.endswith(SUFFIX):
                key = name.removesuffix(SUFFIX)
                if key not in keep and path.stat().st_mtime < now - KEEP_UNUSED_SECONDS:
                    path.unlink(missing_ok=True)
                    (self.store / f"{key}{BODY}").unlink(missing_ok=True)
                    index.pop(key, None)
            elif (
                name.startswith(".") and name.endswith(".tmp") and path.stat().st_mtime < now - 3600
            ):
                path.unlink(missing_ok=True)
        for old in self.folder.iterdir():  # the layout before issues/: entries beside it
            if old.suffix in (SUFFIX, BODY) and len(old.stem) == 64:
                old.unlink(missing_ok=True)
        for key in [k for k in index if not (self.store / f"{k}{SUFFIX}").exists()]:
            del index[key]


HTML_PART = ":html"
TEXT_PART = ":text"
BODY = ".bin"
INDEX = "issues.index"
ENTRIES_DIR = "issues"
FORMAT = 4
Signature = tuple[int, int, int, int]
"""size, inode, mtime_ns, ctime_ns of a file ((-1, ...) if missing)."""
MISSING: Signature = (-1, -1, -1, -1)
IndexEntry = tuple[Signature, Signature, str, tuple[str, str], tuple[tuple[str, int, str], ...]]
"""The stat of an entry's header and body, its subject, markers and parts."""
Packed = tuple[str, str, str, str]
"""An IndexEntry as the index keeps it: a few strings (quick to load for 10,000 issues)."""


def _signature(path: Path) -> Signature:
    try:
        info = path.stat()
    except OSError:
        return MISSING
    return (info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)


def _read_header(head: Path, signatures: tuple[Signature, Signature]) -> IndexEntry:
    """An entry's header, checked against the size of its body."""
    saved = json.loads(head.read_text(encoding="utf-8"))
    if saved["format"] != FORMAT:
        raise ValueError("another format")
    if signatures[1][0] != int(saved["body"]):
        raise ValueError("the entry's body has another size than its header says")
    return _entry(saved, signatures)


def encode(letter: Letter) -> tuple[bytes, bytes]:
    """A letter as a cache entry: its header (JSON) and its compressed body."""
    item = letter.item
    parts = [
        (HTML_PART, item.html.encode("utf-8")),
        (TEXT_PART, item.text.encode("utf-8")),
        *letter.files.items(),
    ]
    body = zlib.compress(b"".join(data for _, data in parts), 1)
    header = {
        "format": FORMAT,
        "subject": item.subject,
        "markers": [item.markers.name, item.markers.token],
        "body": len(body),
        "parts": [[name, len(data), digest_of(data).hex()] for name, data in parts],
    }
    return json.dumps(header).encode("utf-8"), body


def _pack(entry: IndexEntry) -> Packed:
    head, body, subject, markers, parts = entry
    signatures = ",".join(str(n) for n in (*head, *body))
    return (
        signatures,
        subject,
        "\0".join(markers),
        "\0".join(f"{n}\0{s}\0{d}" for n, s, d in parts),
    )


def _unpack(packed: Packed) -> IndexEntry | None:
    """The entry, or None if ``packed`` is not one (an index of another making)."""
    try:
        signatures, subject, markers, parts = packed
        numbers = tuple(int(n) for n in signatures.split(","))
        fields = parts.split("\0")
        name, token = markers.split("\0")
        triples = tuple(
            (fields[i], int(fields[i + 1]), fields[i + 2]) for i in range(0, len(fields), 3)
        )
        return numbers[:4], numbers[4:8], subject, (name, token), triples  # type: ignore[return-value]
    except (ValueError, TypeError, IndexError):
        return None


def _entry(saved: dict[str, Any], signatures: tuple[Signature, Signature]) -> IndexEntry:
    parts = tuple((str(n), int(size), str(digest)) for n, size, digest in saved["parts"])
    if not all(len(bytes.fromhex(digest)) == DIGEST_SIZE for _, _, digest in parts):
        raise ValueError("a part's digest is not one")  # damaged: rendered again
    markers = (str(saved["markers"][0]), str(saved["markers"][1]))
    return (*signatures, str(saved["subject"]), markers, parts)


class DamagedEntry(OSError):
    """A cache entry whose body cannot be read as its header says. The build deletes the
    entry and builds again, rendering that issue afresh."""

    def __init__(self, body: str, reason: str) -> None:
        super().__init__(f"{body}: {reason}")
        self.body = body

    def forget(self) -> None:
        """Delete the entry (its body and its header), so that the next lookup misses."""
        body = Path(self.body)
        for path in (body, body.with_suffix(SUFFIX)):
            with contextlib.suppress(OSError):
                path.unlink()


class StoredParts:
    """An entry's body, decompressed when a part is asked for (the last one kept, since a
    build reads an issue's files one after another). The parts' list is read from the
    index's packed form only when a part, or a part's digest, is asked for."""

    last: tuple[StoredParts | None, bytes] = (None, b"")
    size: int = 0

    def __init__(
        self, parts: tuple[tuple[str, int, str], ...] | str, body: Path | str | bytes
    ) -> None:
        self.parts = parts
        self.body = body

    @cached_property
    def where(self) -> dict[str, tuple[int, int, str]]:
        """Each part's offset, size and digest (hex) by name."""
        parts = self.parts
        if isinstance(parts, str):
            fields = parts.split("\0")
            parts = tuple(
                (fields[i], int(fields[i + 1]), fields[i + 2]) for i in range(0, len(fields), 3)
            )
        where, offset = {}, 0
        for name, size, digest in parts:
            where[name] = (offset, size, digest)
            offset += size
        self.size = offset
        return where

    @cached_property
    def names(self) -> list[str]:
        """The built files' names (the parts but the HTML and text kept for sending)."""
        if isinstance(self.parts, str):
            names = self.parts.split("\0")[::3]
        else:
            names = [name for name, _, _ in self.parts]
        return [n for n in names if n not in (HTML_PART, TEXT_PART)]

    def read(self, name: str) -> bytes:
        """One part's bytes; :class:`DamagedEntry` if the body is gone or not what its
        header says."""
        offset, size, _ = self.where[name]
        last = StoredParts.last  # read once: another thread may replace it
        if last[0] is not self:
            where = "a new issue" if isinstance(self.body, bytes) else str(self.body)
            try:
                raw = self.body if isinstance(self.body, bytes) else Path(self.body).read_bytes()
                data = zlib.decompress(raw)
            except (OSError, zlib.error) as exc:
                raise DamagedEntry(where, f"a damaged issue cache entry ({exc})") from None
            if len(data) != self.size:
                raise DamagedEntry(where, "the issue cache entry is not what its header says")
            last = StoredParts.last = (self, data)
        return last[1][offset : offset + size]


class StoredFiles(Mapping[str, bytes]):
    """A letter's built files, read from its cache entry on first use; their digests are
    known without reading them (famfeeds.build.evaluate.file_digests asks for them)."""

    def __init__(self, parts: StoredParts) -> None:
        self.parts = parts

    @property
    def names(self) -> list[str]:
        """The files' names."""
        return self.parts.names

    def __getitem__(self, name: str) -> bytes:
        if name not in self.names:
            raise KeyError(name)
        return self.parts.read(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def digests(self) -> dict[str, bytes]:
        """Every file's digest (digest_of), from the entry's header."""
        where = self.parts.where
        return {name: bytes.fromhex(where[name][2]) for name in self.names}

    def digest(self, name: str) -> bytes:
        """The digest of the file's bytes (digest_of), from the entry's header."""
        return bytes.fromhex(self.parts.where[name][2])


class StoredIssue(RenderedIssue):
    """A rendered issue whose HTML and text stay on disk until asked for."""

    def __init__(self, issue: Issue, subject: str, markers: Markers, parts: StoredParts) -> None:
        # RenderedIssue is a frozen dataclass: set its other fields as its own __init__ would.
        object.__setattr__(self, "issue", issue)
        object.__setattr__(self, "subject", subject)
        object.__setattr__(self, "markers", markers)
        object.__setattr__(self, "parts", parts)

    @property
    def html(self) -> str:
        """The inlined HTML, markers kept."""
        parts: StoredParts = self.__dict__["parts"]
        return parts.read(HTML_PART).decode("utf-8")

    @property
    def text(self) -> str:
        """The text part, markers kept."""
        parts: StoredParts = self.__dict__["parts"]
        return parts.read(TEXT_PART).decode("utf-8")


def stored_letter(issue: Issue, known: IndexEntry, body: Path | str | bytes) -> Letter:
    """The letter of a cache entry, its bytes left where they are (on disk, or compressed in
    memory) until used."""
    from famfeeds.render.personal import Letter

    parts = StoredParts(known[4], body)
    markers = Markers(*known[3])
    return Letter(StoredIssue(issue, known[2], markers, parts), StoredFiles(parts))


def packed_letter(issue: Issue, packed: Packed, body: str) -> Letter:
    """:func:`stored_letter` from the index's packed form, read no further than needed."""
    from famfeeds.render.personal import Letter

    _, subject, markers, parts = packed
    stored = StoredParts(parts, body)
    name, token = markers.split("\0")
    return Letter(StoredIssue(issue, subject, Markers(name, token), stored), StoredFiles(stored))


def writable(folder: Path) -> bool:
    """True when ``folder`` (or where it would be created) can be written."""
    probe = folder if folder.exists() else folder.parent
    return os.access(probe, os.W_OK)
