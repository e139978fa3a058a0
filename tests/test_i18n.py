"""Every output in the show's language: CLDR formats per locale, complete catalogues, no
English left behind, and bytes that do not depend on the machine's locale or zone."""

from __future__ import annotations

import gettext
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import lxml.html
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result
from jinja2 import Environment, nodes

from famfeeds.build.load import plan
from famfeeds.build.translations import SHIPPED_LOCALE, compile_catalogue, load_messages
from famfeeds.cli import cli
from famfeeds.render.i18n import Localiser
from support import REPO, Project, build_args

LANGUAGES = ("en", "de", "fr")
TEMPLATES = REPO / "templates"
OWN_TEMPLATES = sorted(TEMPLATES.rglob("*.j2"))
"""The templates this test holds to "no untranslated text": all of them, the subscriptions
service's pages and confirmation mail (templates/service/) included."""


def catalogue(language: str) -> Catalog:
    path = SHIPPED_LOCALE / language / "LC_MESSAGES" / "famfeeds.po"
    with path.open("rb") as f:
        return read_po(f, locale=language)


def extracted() -> dict[str, tuple[str, ...]]:
    """Every message the sources use, as pybabel extract finds it with babel.cfg."""
    method_map = [
        ("src/famfeeds/render/**.py", "python"),
        ("src/famfeeds/delivery/service.py", "python"),
        ("src/famfeeds/build/scaffold.py", "python"),
        ("templates/**.j2", "jinja2"),
    ]
    options = {"templates/**.j2": {"trimmed": "true"}}
    found: dict[str, tuple[str, ...]] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO),
        method_map,
        options,
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
    ):
        ids = (message,) if isinstance(message, str) else tuple(message)
        found[ids[0]] = ids
    return found


def localiser(language: str) -> Localiser:
    return Localiser(load_messages(language))


def timed_project(project: Project, language: str, zone: str, day: str = "2026-11-04") -> Project:
    project.show(timezone=zone, **{'language = "en"': f'language = "{language}"'})
    project.season(premiere=day, extra='release_time = "21:00"', episodes=2)
    return project


# CLDR formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "zone", "day", "expected"),
    [
        # CLDR puts a narrow no-break space before AM and PM.
        (
            "en-US",
            "America/New_York",
            "2026-11-04",
            "Wednesday, November 4, 2026 at 9:00\u202fPM EST",
        ),
        ("en-US", "America/New_York", "2026-07-01", "Wednesday, July 1, 2026 at 9:00\u202fPM EDT"),
        ("en-GB", "Europe/London", "2026-11-04", "Wednesday, 4 November 2026 at 21:00 GMT"),
        ("en-GB", "Europe/London", "2026-07-01", "Wednesday, 1 July 2026 at 21:00 BST"),
        ("de", "Europe/Berlin", "2026-11-04", "Mittwoch, 4. November 2026 um 21:00 MEZ"),
        ("de-AT", "Europe/Vienna", "2026-07-01", "Mittwoch, 1. Juli 2026 um 21:00 MESZ"),
        # CLDR has no short French zone names: the offset, in French's own GMT format.
        ("fr", "Europe/Paris", "2026-11-04", "mercredi 4 novembre 2026 à 21:00 UTC+1"),
        # No abbreviation a German reader would know for Los Angeles: the offset.
        ("de", "America/Los_Angeles", "2026-11-04", "Mittwoch, 4. November 2026 um 21:00 GMT-8"),
        (
            "en",
            "Asia/Kolkata",
            "2026-11-04",
            "Wednesday, November 4, 2026 at 9:00\u202fPM GMT+5:30",
        ),
    ],
)
def test_a_timed_release_reads_as_the_locale_writes_it(
    project: Project, language: str, zone: str, day: str, expected: str
) -> None:
    timed_project(project, language, zone, day)
    release = plan(project.content).schedule.releases[0]
    assert localiser(language).when(release) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Fri, Nov 10, 2023"),
        ("en-GB", "Fri, 10 Nov 2023"),
        ("de", "Fr., 10. Nov. 2023"),
        ("fr", "ven. 10 nov. 2023"),
    ],
)
def test_table_dates_and_runtimes(shipped: Project, language: str, expected: str) -> None:
    l10n = localiser(language)
    release = plan(shipped.content).schedule.releases[0]
    assert l10n.when_short(release) == expected  # an all-day release: the day only
    assert (
        l10n.runtime(58)
        == {"en": "58 minutes", "de": "58 Minuten", "fr": "58 minutes"}[language[:2]]
    )
    assert l10n.runtime(1).startswith("1 ")


def test_plurals_follow_each_language_rules() -> None:
    def count(language: str, n: int) -> str:
        return localiser(language).episode_count(n)

    assert [count("en", n) for n in (0, 1, 2)] == ["0 episodes", "1 episode", "2 episodes"]
    assert [count("de", n) for n in (0, 1, 2)] == ["0 Folgen", "1 Folge", "2 Folgen"]
    # French counts 0 as singular, and a million of something takes "de".
    assert [count("fr", n) for n in (0, 1, 2, 1_000_000)] == [
        "0 épisode",
        "1 épisode",
        "2 épisodes",
        "1000000 d\u2019épisodes",
    ]


def test_open_graph_locales() -> None:
    assert localiser("en").og_locale == "en_US"
    assert localiser("en-GB").og_locale == "en_GB"
    assert localiser("de").og_locale == "de_DE"
    assert localiser("fr").og_locale == "fr_FR"


# Catalogues ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogue_translates_every_message_the_code_uses(language: str) -> None:
    wanted = extracted()
    cat = catalogue(language)
    have = {m.id if isinstance(m.id, str) else m.id[0]: m for m in cat if m.id}
    assert sorted(set(wanted) - set(have)) == [], "messages the catalogue lacks"
    assert sorted(set(have) - set(wanted)) == [], "messages no code uses any more"
    expected_plurals = get_plural(language)
    assert cat.num_plurals == expected_plurals.num_plurals
    for key, message in have.items():
        assert not message.fuzzy, f"fuzzy: {key!r}"
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert len(strings) == (1 if isinstance(message.id, str) else cat.num_plurals), key
        assert all(strings), f"untranslated: {key!r}"
    problems = [(m.id, [str(e) for e in errors]) for m, errors in cat.check() if errors]
    assert problems == []  # Babel's checkers: placeholders and plural forms match


@pytest.mark.parametrize("language", LANGUAGES)
def test_msgfmt_accepts_each_catalogue(language: str, tmp_path: Path) -> None:
    path = SHIPPED_LOCALE / language / "LC_MESSAGES" / "famfeeds.po"
    done = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "out.mo"), str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "fuzzy" not in done.stderr and "untranslated" not in done.stderr, done.stderr


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_shipped_mo_is_its_po_compiled(language: str) -> None:
    """Run `pybabel compile -d src/famfeeds/locale -D famfeeds` after editing a .po."""
    po = SHIPPED_LOCALE / language / "LC_MESSAGES" / "famfeeds.po"
    fresh = compile_catalogue(po.read_bytes(), po, language)
    with po.with_suffix(".mo").open("rb") as f:
        shipped = gettext.GNUTranslations(f)
    assert shipped._catalog == fresh._catalog  # type: ignore[attr-defined]
    assert shipped.plural(2) == fresh.plural(2)  # type: ignore[attr-defined]


def test_the_template_catalogue_lists_what_the_code_uses() -> None:
    with (SHIPPED_LOCALE / "famfeeds.pot").open("rb") as f:
        pot = read_po(f)
    assert {m.id if isinstance(m.id, str) else m.id[0] for m in pot if m.id} == set(extracted())


def visible_literals(source: str) -> list[str]:
    """Words a reader would see that a template writes as literal text, outside
    {{ _(...) }} and {% trans %}: its text nodes and its readable attributes."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    pieces: list[str] = []
    for node in env.parse(source).find_all(nodes.TemplateData):
        pieces.append(node.data)
    # Jinja keeps attribute text and element text alike as template data: read it as HTML.
    markup = "\x00".join(pieces)
    markup = re.sub(r"<style[^>]*>.*?</style>", "", markup, flags=re.S | re.I)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", markup, flags=re.S | re.I)
    markup = re.sub(r"<xsl:[^>]*>|</xsl:[^>]*>|<\?xml[^>]*\?>", "", markup)
    attributes = re.findall(r'\b(?:alt|title|aria-label|placeholder|content)="([^"\x00]*)"', markup)
    found = [word for value in attributes for word in value.split()]
    text = re.sub(r"<!--.*?-->", "", markup, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    found += text.split()
    allowed = {"Google", ".ics", "(.ics)", "\u00b7", "\u203a", "==", "--", "&nbsp;"}
    return [w for w in found if re.search(r"[^\W\d_]", w) and w not in allowed]


@pytest.mark.parametrize("path", OWN_TEMPLATES, ids=lambda p: p.name)
def test_templates_hold_no_untranslated_text(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    # content="..." attributes of meta tags hold values, not prose, unless they are filled in.
    source = re.sub(r'<meta (?:property|name)="[^"]*" content="[^"]*"', "<meta>", source)
    assert visible_literals(source) == []


def test_the_literal_check_catches_a_literal() -> None:
    assert visible_literals('<p>Hello {{ name }}</p><img alt="A still">') == ["A", "still", "Hello"]
    assert visible_literals('<p>{{ _("Hello %(n)s", n=name) }}</p>') == []


# Whole builds -------------------------------------------------------------------------------


def english_sentences() -> list[str]:
    """The English catalogue's fixed texts of a few words that German changes."""
    german = {m.id: m.string for m in catalogue("de") if m.id and isinstance(m.id, str)}
    return [
        m.id
        for m in catalogue("en")
        if isinstance(m.id, str)
        and m.id
        and "%" not in m.id
        and " " in m.id
        and german.get(m.id) != m.id
    ]


def readable_texts(output: Path) -> dict[str, str]:
    """What a person reads in each built file: HTML text and attributes, text parts, calendar
    and feed files as they are."""
    out = {}
    for path in sorted(output.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        data = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".ics":  # unfolded, unescaped
            data = data.replace("\r\n ", "").replace("\\n", "\n").replace("\\", "")
        if path.suffix == ".html":
            doc = lxml.html.document_fromstring(data)
            attributes = doc.xpath("//@alt | //@title | //@aria-label | //meta/@content")
            data = " ".join([doc.text_content(), *map(str, attributes)])
        out[path.relative_to(output).as_posix()] = " ".join(data.split())
    return out


@pytest.fixture
def german(shipped: Project, run: Callable[..., Result]) -> Project:
    show = shipped.content / "show.toml"
    show.write_text(show.read_text().replace('language = "en"', 'language = "de"'))
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    return shipped


def test_a_german_show_gets_every_output_in_german(german: Project) -> None:
    texts = readable_texts(german.output)
    leaks = {
        (name, sentence)
        for name, text in texts.items()
        for sentence in english_sentences()
        if sentence in text
    }
    assert leaks == set()
    index = lxml.html.parse(str(german.output / "index.html")).getroot()
    assert index.get("lang") == "de"
    assert [th.text for th in index.xpath("//thead//th")] == [
        "Termin",
        "Folge",
        "Status",
        "In den Kalender eintragen",
    ]
    assert "Fr., 24. Nov. 2023" in texts["index.html"]
    assert "Erschienen" in texts["index.html"] and "Als Nächstes" in texts["index.html"]
    issue = texts["newsletter/2023-11-24.txt"]
    assert "Hallo," in issue and "Folge 3 von 10 · Freitag, 24. November 2023" in issue
    assert "Als Nächstes: S4 F4 „House Divided“ am Freitag, 1. Dezember 2023." in issue
    assert "Zu sehen bei Apple TV+." in issue
    assert "S4 F3 · The Bear Hug" in texts["feed.xml"]
    assert "Zu sehen bei Apple TV+." in texts["episodes/s04e03.ics"]
    assert (
        "Erscheinungstermine der Folgen von For All Mankind bei Apple TV+." in texts["calendar.ics"]
    )
    # The records' own words stay the editor's.
    assert "Negotiations between the partners" in texts["s04/e03/index.html"]


# Errors and overrides -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "says"),
    [
        ("xx-YY", "not a language famfeeds can format dates for"),
        ("es", "no messages in Spanish ('es'); it ships de, en, fr"),
    ],
)
def test_a_language_without_formats_or_messages_is_a_content_error(
    project: Project, run: Callable[..., Result], language: str, says: str
) -> None:
    project.show(**{'language = "en"': f'language = "{language}"'})
    project.season()
    for command in (["check", "--content", project.content], build_args(project)):
        result = run(*command)
        assert result.exit_code == 1
        assert "show.toml" in result.output and "field 'language'" in result.output
        assert says in result.output and "Traceback" not in result.output
    assert not project.output.exists()


PO_HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
NEWSLETTER = """[newsletter]
sender_name = "T"
sender_address = "t@example.org"
unsubscribe_url = "https://example.org/u?t={token}"

[author]"""


def own_catalogue(
    project: Project, language: str, messages: str, newsletter: bool = False
) -> Callable[[], Result]:
    """A project in ``language`` with its own catalogue holding ``messages`` (.po entries);
    returns a function that builds it."""
    replace = {'language = "en"': f'language = "{language}"'}
    if newsletter:
        replace["[author]"] = NEWSLETTER
    project.show(**replace)
    project.season()
    own = project.root / f"locale/{language}/LC_MESSAGES/famfeeds.po"
    own.parent.mkdir(parents=True)
    own.write_text(PO_HEADER + messages, encoding="utf-8")
    return lambda: CliRunner().invoke(
        cli, [str(a) for a in build_args(project, "--as-of", "2024-01-12")]
    )


def test_a_project_catalogue_changes_a_message(project: Project) -> None:
    build = own_catalogue(project, "de", 'msgid "Released"\nmsgstr "Schon da"\n')
    assert build().exit_code == 0
    index = (project.output / "index.html").read_text()
    assert "Schon da" in index and "Erschienen" not in index
    assert "Als Nächstes" in index  # the rest from the shipped German catalogue


def test_a_translation_with_other_placeholders_is_a_content_error(project: Project) -> None:
    build = own_catalogue(
        project,
        "de",
        '#, python-format\nmsgid "Streaming on %(service)s."\nmsgstr "Bei %(dienst)s."\n',
    )
    result = build()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "famfeeds.po:6" in result.output and "'Streaming on %(service)s.'" in result.output
    assert not project.output.exists()


def test_a_greeting_that_loses_its_space_is_refused(project: Project) -> None:
    build = own_catalogue(
        project,
        "en",
        '#, python-format\nmsgid "Hi %(name)s,"\nmsgstr "Hi%(name)s,"\n',
        newsletter=True,
    )
    result = build()
    assert result.exit_code == 1
    assert "must keep a space in front of %(name)s" in result.output
