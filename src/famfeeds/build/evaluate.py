"""The build's evaluator: a renderer's pure step, remembered by what it is given.

Renderers know nothing of caching. Where a step is worth remembering they call it through
the evaluator the build hands them (``RenderContext.call``: ``call(step, *args)``, whose
contract is ``step(*args)``). The build's :class:`Evaluator` keys each call by the step's
name and a :class:`Fingerprints` of each argument, so nobody lists a step's inputs: an
input that is not an argument cannot be used (the step is a module-level function; its
code and the libraries that shape its bytes key the whole memo: famfeeds.build.keys).

What a step gives decides what is kept:

- bytes: kept whole;
- files (a mapping of names to bytes): their names and digests only; a later hit gives
  :class:`LazyFiles`, which calls the step again only if the writer asks for bytes (a file
  changed or gone on disk), and checks that they came out as remembered (:class:`StaleMemo`);
- anything else (calendar states): pickled.

A call made while another runs is that one's part: a hit on the outer call keeps the inner
entries for a later build that needs them (the memo keeps what a build used).
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from famfeeds.render.context import direct
from famfeeds.render.files import FileSet

R = TypeVar("R")

_REPR = frozenset((type(None), bool, int, float, timedelta, timezone, date))
"""Types whose ``repr`` shows all they hold (exactly these: a ``datetime`` is a ``date``)."""
_MOMENTS = (date, datetime, time)


def digest_of(data: bytes) -> bytes:
    """The digest that identifies a built file's bytes: SHA-256, its first 16 bytes (twice
    as fast as BLAKE2b where the CPU has SHA instructions)."""
    return hashlib.sha256(data).digest()[:16]


DIGEST_SIZE = len(digest_of(b""))
"""How many bytes :func:`digest_of` gives."""


def _hex(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class Unkeyable(TypeError):
    """An argument the evaluator cannot key: a step may only be given values that show
    all they hold (see :class:`Fingerprints`)."""


class Fingerprints:
    """What stands for a value in a key, worked out once per value for one build.

    - None, booleans, numbers, strings, durations, fixed offsets: their ``repr``; bytes:
      their digest;
    - dates and times: ISO form with their offset, and their zone's rules;
    - tuples and lists: their items'; dicts: their items' in order;
    - frozen dataclasses: their fields' (a field hidden from both ``repr`` and ``compare``
      is scratch, not data), so a derived value keys by what it holds;
    - records (pydantic models): their JSON;
    - zones: their name and the digest of their rules;
    - values the build registered (:meth:`register`): what it said they were made from (a
      season by the digest its loader took, the template environment by every template
      and catalogue it can load, a step's result by that step's key);
    - anything else raises :class:`Unkeyable`."""

    def __init__(self) -> None:
        self.known: dict[int, tuple[object, str]] = {}

    def register(self, value: object, fingerprint: str) -> None:
        """Have ``value`` (this very object) stand for ``fingerprint``."""
        self.known[id(value)] = (value, fingerprint)

    def of(self, value: object) -> str:
        """The fingerprint of ``value`` (see the class), worked out once for a value that
        cannot change (a list's, each time)."""
        kind = type(value)
        if kind is str:
            return repr(value) if len(value) < 200 else "s" + _hex(value)  # type: ignore[arg-type]
        if kind in _REPR:
            return repr(value)
        if kind is datetime and isinstance(value, datetime):  # no need to keep a moment
            zone = value.tzinfo
            text = "datetime:" + value.isoformat()
            if zone is None:
                return text
            return text + "@" + (repr(zone) if type(zone) is timezone else self.of(zone))
        if kind is list:
            text = ",".join(map(self.of, value))  # type: ignore[call-overload]
            return "[" + (text if len(text) < 200 else _hex(text)) + "]"
        known = self.known.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if kind is tuple:
            text = ",".join(map(self.of, value))  # type: ignore[call-overload]
            found = "(" + (text if len(text) < 200 else _hex(text)) + ")"
        else:
            found = self._compute(value)
        self.known[id(value)] = (value, found)  # kept, so its id is no other's this build
        return found

    def _compute(self, value: object) -> str:
        of = self.of
        if is_dataclass(value) and not isinstance(value, type):
            parts = []
            for name in _field_names(type(value)):  # scalars inline: ten thousand releases
                item = getattr(value, name)
                plain = type(item) in _REPR or (type(item) is str and len(item) < 200)
                parts.append(repr(item) if plain else of(item))
            text = ";".join(parts)
            return f"{type(value).__qualname__}:" + (text if len(text) < 200 else _hex(text))
        if isinstance(value, bytes):
            return "b" + digest_of(value).hex()
        if isinstance(value, _MOMENTS):
            zone = getattr(value, "tzinfo", None)
            return f"{type(value).__name__}:{value.isoformat()}" + (
                "@" + of(zone) if zone is not None else ""
            )
        if isinstance(value, ZoneInfo):
            from famfeeds.records.zones import zone_rules_digest

            return f"zone:{value.key}:{zone_rules_digest(str(value.key))}"
        if isinstance(value, tuple | list):  # a subclass (a named tuple, say)
            return f"{type(value).__qualname__}(" + _hex(",".join(map(of, value))) + ")"
        if isinstance(value, dict):
            return "{" + _hex(";".join(f"{of(k)}={of(v)}" for k, v in value.items())) + "}"
        dump = getattr(value, "model_dump_json", None)
        if callable(dump):
            return f"{type(value).__qualname__}:" + _hex(dump())
        if value is direct or isinstance(value, Evaluator):
            return "call"  # gives what the step would: not an input
        raise Unkeyable(f"a {type(value).__qualname__} cannot be part of a key")


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    """The fields of a frozen dataclass that are data (not hidden from both ``repr`` and
    ``compare``); a dataclass that can change is refused."""
    if not kind.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise Unkeyable(f"{kind.__qualname__} can change: not a key")
    return tuple(f.name for f in fields(kind) if f.repr or f.compare)


Entry = tuple[str, Any, tuple[bytes, ...]]
"""What a memo holds for a call: the kind of result (``b`` bytes, ``f`` files as names and
digests, ``p`` a pickled value), the result so, and the keys of the calls made within."""


class Memo(Protocol):
    """Entries by key; a memo may forget anything at any time, and keep them as it likes
    (famfeeds.build.record_cache.RenderMemo pickles them)."""

    def get(self, key: bytes) -> object | None:
        """What is remembered under ``key`` (an :data:`Entry`, unless damaged), or None."""
        ...

    def put(self, key: bytes, value: Entry) -> None:
        """Remember ``value`` under ``key``."""
        ...


class Evaluator:
    """``call(step, *args)`` for renderers: ``step(*args)``, or what it gave before for
    the same step and arguments (see the module)."""

    def __init__(self, memo: Memo, prints: Fingerprints | None = None) -> None:
        self.memo = memo
        self.prints = prints or Fingerprints()
        self._parts: list[list[bytes]] = []
        self._kept: set[bytes] = set()

    def key(self, step: Callable[..., object], args: tuple[object, ...]) -> bytes:
        """The key of ``step(*args)``."""
        name = f"{step.__module__}.{step.__qualname__}"
        if "<" in name or not callable(step):
            raise Unkeyable(f"{name}: only a module's own functions are steps")
        text = name + "(" + "|".join(self.prints.of(arg) for arg in args) + ")"
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def __call__(self, step: Callable[..., R], /, *args: object) -> R:
        key = self.key(step, args)
        if self._parts:
            self._parts[-1].append(key)
        found = self._recall(key, step, args)
        if found is not None:
            return found  # type: ignore[no-any-return]
        self._parts.append([])
        try:
            value: Any = step(*args)
        finally:
            parts = self._parts.pop()
        result = value
        payload: object
        if isinstance(value, bytes):
            kind, payload = "b", value  # the same object: no copy
        elif isinstance(value, Mapping):
            result = Digested(value)
            kind, payload = "f", result.digests
        else:
            kind, payload = "p", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.memo.put(key, (kind, payload, tuple(parts)))
        self._known(value, key)
        return result  # type: ignore[no-any-return]

    def _known(self, value: object, key: bytes) -> None:
        """Have bytes a step gave stand for its key when given to another step (short ones
        are quicker to hash, and may be one shared object)."""
        if isinstance(value, bytes) and len(value) > 256:
            self.prints.register(value, "=" + key.hex())

    def _recall(self, key: bytes, step: Callable[..., Any], args: tuple[object, ...]) -> Any:
        """What ``key`` holds, its parts kept too; None if nothing usable."""
        entry = self._entry(key)
        if entry is None:
            return None
        kind, payload, parts = entry
        self._keep(parts)
        if kind == "b":
            self._known(payload, key)
            return payload
        if kind == "f":
            return LazyFiles(payload, functools.partial(step, *args))
        return pickle.loads(payload)

    def _entry(self, key: bytes) -> Entry | None:
        """The entry under ``key``; None if missing or not an entry (damaged)."""
        found = self.memo.get(key)
        if not (isinstance(found, tuple) and len(found) == 3):
            return None
        kind, payload, parts = found
        if not isinstance(parts, tuple) or not all(isinstance(p, bytes) for p in parts):
            return None
        if kind == "b" or kind == "p":
            return found if isinstance(payload, bytes) else None
        if kind == "f" and isinstance(payload, dict):
            good = all(isinstance(n, str) and isinstance(d, bytes) for n, d in payload.items())
            return found if good else None
        return None

    def _keep(self, parts: tuple[bytes, ...]) -> None:
        for part in parts:
            if part in self._kept:
                continue
            self._kept.add(part)
            entry = self._entry(part)  # getting it is what keeps it
            if entry is not None:
                self._keep(entry[2])


def file_digests(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The digest of every file, by name in the mapping's order, from the mapping where it
    knows them without reading the bytes (:func:`known_digests`), part by part for a
    :class:`FileSet`."""
    if not isinstance(files, FileSet):
        return dict(known_digests(files))
    result: dict[str, bytes] = {}
    for part in files.parts:  # in the order the set was filled; a later name wins
        result.update(known_digests(part))
    if len(result) != len(files):  # a part's digests named files it does not hold
        return {name: file_digest(files, name) for name in files}
    return result


def known_digests(part: Mapping[str, bytes]) -> Mapping[str, bytes]:
    """Each file's digest: a ``digests`` mapping of the right size where the part has one
    (remembered files), else its ``digest(name)`` (a stored newsletter issue's header),
    else :func:`digest_of` its bytes."""
    if isinstance(part, FileSet):
        return file_digests(part)
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


def file_digest(files: Mapping[str, bytes], name: str) -> bytes:
    """One file's digest, from the mapping that holds it where that one knows it."""
    part = files.owner[name] if isinstance(files, FileSet) else files
    if isinstance(part, FileSet):
        return file_digest(part, name)
    known = getattr(part, "digests", None)
    if isinstance(known, Mapping) and name in known:
        return bytes(known[name])
    one = getattr(part, "digest", None)
    if callable(one):
        value = one(name)
        if isinstance(value, bytes):
            return value
    return digest_of(part[name])


class Digested(Mapping[str, bytes]):
    """Files with their digests worked out once."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = files
        self.digests = file_digests(files)

    def __getitem__(self, name: str) -> bytes:
        return self.files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


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


class StaleMemo(Exception):
    """A remembered file made again came out other than remembered: something its key
    does not hold changed (a template saved during the build, say). The build forgets the
    memo and builds again (famfeeds.build.pipeline.build)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} came out other than an earlier build made it from the same inputs"
        )
        self.name = name
