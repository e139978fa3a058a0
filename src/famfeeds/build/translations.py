"""Load the gettext catalogue of a show's language, for the render side to use.

A translation is a file:

- the shipped catalogues, ``famfeeds/locale/<lang>/LC_MESSAGES/famfeeds.po`` (en, de, fr),
  come compiled beside them (``famfeeds.mo``, read in well under a millisecond; a test keeps
  each in step with its ``.po``);
- a project's own, searched first: ``locale/<lang>/LC_MESSAGES/famfeeds.po`` beside
  ``content/``, compiled in memory when a build starts; a message it lacks comes from the
  shipped catalogue of that language.

A tag with a territory (``de-AT``) uses ``de_AT`` where it exists, then ``de``. A language
without any catalogue is an error naming show.toml's ``language``: famfeeds never mixes
English sentences into a page that says ``lang="es"``.
"""

from __future__ import annotations

import copy
import hashlib
import io
from pathlib import Path
from typing import TYPE_CHECKING

from famfeeds.errors import ContentError, Problem, display_path
from famfeeds.render.i18n import DOMAIN, Messages, parse_language

if TYPE_CHECKING:
    from babel.support import Translations

SHIPPED_LOCALE = Path(__file__).parents[1] / "locale"
TEMPLATE_NAME = f"{DOMAIN}.pot"
_COMPILED: dict[tuple[str, str], Translations] = {}
"""Project catalogues compiled so far, by locale and file digest: once per process."""


def catalogue_path(folder: Path, name: str) -> Path:
    """Where the catalogue of locale ``name`` (``de``, ``de_AT``) lives under ``folder``."""
    return folder / name / "LC_MESSAGES" / f"{DOMAIN}.po"


def shipped_languages() -> list[str]:
    """The locale names famfeeds ships a catalogue for."""
    return sorted(p.parent.parent.name for p in SHIPPED_LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def load_messages(
    language: str, project_locale: Path | None = None, show_file: str = "show.toml"
) -> Messages:
    """The catalogue for the language tag ``language``: the project's, then the shipped one.

    Raises ContentError (naming ``show_file``'s ``language``) for a tag CLDR does not know or
    a language with no catalogue.
    """
    from babel.support import Translations

    try:
        locale = parse_language(language)
    except ValueError as exc:
        raise ContentError([_problem(show_file, str(exc), "")]) from None
    names = [str(locale)]
    if locale.language not in names:
        names.append(locale.language)
    found: list[tuple[bytes, Translations]] = []
    for name in names:
        path = catalogue_path(project_locale, name) if project_locale else None
        if path is not None and path.is_file():
            found.append(_project_catalogue(path, str(locale)))
    for name in names:
        path = catalogue_path(SHIPPED_LOCALE, name).with_suffix(".mo")
        if path.is_file():
            data = path.read_bytes()
            found.append((data, Translations(io.BytesIO(data), domain=DOMAIN)))
    if not found:
        where = project_locale if project_locale is not None else Path("locale")
        raise ContentError(
            [
                _problem(
                    show_file,
                    f"famfeeds has no messages in {locale.get_display_name('en')} "
                    f"({language!r}); it ships {', '.join(shipped_languages())}",
                    f"choose one of those, or translate {SHIPPED_LOCALE / TEMPLATE_NAME} into "
                    f"{catalogue_path(where, locale.language)}",
                )
            ]
        )
    digest = hashlib.sha256(language.encode())
    for data, _ in found:
        digest.update(b"\0" + hashlib.sha256(data).digest())
    first = found[0][1]
    for _, fallback in found[1:]:
        first.add_fallback(fallback)
    return Messages(language, first, digest.hexdigest())


def _project_catalogue(path: Path, locale: str) -> tuple[bytes, Translations]:
    """A project's .po, compiled (fuzzy messages left out); a copy, so fallbacks added to it
    do not stick to the compiled original."""
    data = path.read_bytes()
    key = (locale, hashlib.sha256(data).hexdigest())
    if key not in _COMPILED:
        _COMPILED[key] = compile_catalogue(data, path, locale)
    return data, copy.copy(_COMPILED[key])


def compile_catalogue(data: bytes, path: Path, locale: str) -> Translations:
    """The bytes of a .po file compiled to gettext's in-memory form, fuzzy messages left out
    (what ``pybabel compile`` writes to a .mo). A translation whose placeholders do not fit
    its message (``%(nom)s`` for ``%(name)s``) is a ContentError naming its line."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import PoFileError, read_po
    from babel.support import Translations

    try:
        catalog = read_po(io.BytesIO(data), locale=locale, domain=DOMAIN, abort_invalid=True)
    except (PoFileError, ValueError) as exc:
        raise ContentError(
            [Problem(display_path(path), None, "catalogue", None, f"not a valid .po file: {exc}")]
        ) from None
    problems = [
        Problem(
            display_path(path),
            message.lineno,
            f"message {message.id if isinstance(message.id, str) else message.id[0]!r}",
            None,
            str(error),
            "keep the placeholders of the message as they are",
        )
        for message, errors in catalog.check()
        for error in errors
    ]
    if problems:
        raise ContentError(problems)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def _problem(show_file: str, message: str, hint: str) -> Problem:
    return Problem(show_file, None, "show", "language", message, hint)
