"""A new project in the show's language: what ``famfeeds init`` and ``famfeeds new`` write,
and the pages built from it, hold no English the user did not write; the page does not say
twice where the show streams; ``--service-url`` gives the sign-up form; the subscriptions
service's default port is one no common tool takes."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import lxml.html
import pytest
from babel import Locale
from babel.messages.pofile import read_po
from click.testing import Result

from famfeeds.build.translations import SHIPPED_LOCALE

EPOCH = "1795834800"  # 2026-11-28 03:00 UTC
SHOWS = {
    "de": ("Die Laternen von Ålesund", "ARD Mediathek", "Europe/Berlin"),
    "fr": ("Les Lanternes d\u2019Ålesund", "France.tv", "Europe/Paris"),
    "en": ("Lanterns of Ålesund", "Apple TV+", "America/New_York"),
}
BASE_URL = "https://example.org/laternen/"
SERVICE_URL = "https://listen.example.net/laternen/"
URL = re.compile(r"\b(?:https?|webcal)://\S+")
WORD = re.compile(r"[^\W\d_]{2,}")
"""A word: two letters or more (a lone letter is an initial, an elision or a date's T)."""
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%|\{\w+\}")


NAME = re.compile(r"\S*\d\S*")
"""A token with a digit in it is a number, a date or a name (season-01, s01e01.jpg)."""


def words(text: str) -> set[str]:
    """The words of ``text``, lower-cased, without web addresses, names and numbers."""
    return {w.lower() for w in WORD.findall(NAME.sub(" ", URL.sub(" ", text)))}


def without_code(text: str) -> str:
    """``text`` without its `code` and its "quoted" TOML values: the words of a command
    or a setting are the same in every language."""
    return re.sub(r'"[^"]*"', " ", re.sub(r"`[^`]*`", " ", text))


def catalogue_words(language: str) -> set[str]:
    """Every word of the shipped catalogue's translations into ``language`` (not those of
    the commands and settings they quote)."""
    with (SHIPPED_LOCALE / language / "LC_MESSAGES" / "famfeeds.po").open("rb") as f:
        catalogue = read_po(f, locale=language)
    found: set[str] = set()
    for message in catalogue:
        if not message.id:
            continue
        strings = [message.string] if isinstance(message.string, str) else message.string
        for string in strings:
            found |= words(without_code(PLACEHOLDER.sub(" ", string)))
    return found


def calendar_words(language: str) -> set[str]:
    """The names CLDR gives months, weekdays and day periods in ``language``."""
    locale = Locale.parse(language)
    found: set[str] = set()
    for table in (locale.months, locale.days, locale.day_periods):
        for contexts in table.values():
            for names in contexts.values():
                found |= words(" ".join(str(v) for v in names.values()))
    return found


def init_args(language: str, *extra: str) -> list[str]:
    title, service, zone = SHOWS[language]
    return [
        "--no-input",
        "--language",
        language,
        "--title",
        title,
        "--service",
        service,
        "--timezone",
        zone,
        "--premiere",
        "2026-11-04",
        "--time",
        "21:00",
        "--episodes",
        "3",
        "--base-url",
        BASE_URL,
        *extra,
    ]


def scaffold(
    root: Path,
    language: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
) -> Path:
    """A project made the way a new user makes one: init, a second season, one more
    episode, then a build. Returns its root."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    made = run("init", root, *init_args(language, *extra))
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert made.exit_code == 0, made.output
    content = root / "content"
    steps = [
        ("new", "season", "--content", content, "--premiere", "2027-03-03", "--episodes", "2"),
        ("new", "episode", "--content", content),
        ("check", "--content", content, "--strict"),
        ("build", "--content", content, "--output", root / "output", "--as-of", "2026-11-20"),
    ]
    for step in steps:
        result = run(*step)
        assert result.exit_code == 0, result.output
    return root


def user_words(language: str, *extra: str) -> set[str]:
    """The words the user typed: every value given to init."""
    return words(" ".join(init_args(language, *extra)))


def visible_text(page: Path) -> str:
    """What a reader of ``page`` sees or hears: the title, the body's text, and the alt,
    title, aria-label and placeholder attributes."""
    doc = lxml.html.parse(str(page)).getroot()
    for hidden in doc.xpath("//script | //style"):
        hidden.drop_tree()
    attributes = doc.xpath("//body//@alt | //body//@title | //@aria-label | //@placeholder")
    return " ".join([*doc.xpath("//title/text()"), doc.body.text_content(), *map(str, attributes)])


def pages(output: Path) -> list[Path]:
    """The front page, every season page and every episode page."""
    found = [output / "index.html", *sorted(output.glob("s*/index.html"))]
    found += sorted(output.glob("s*/e*/index.html"))
    return found


def scaffold_files(root: Path) -> dict[str, str]:
    """The files init and new wrote, by a name that is the same in every language (the
    episode files' names come from their titles)."""
    content = root / "content"
    named = {"README.md": root / "README.md", "show.toml": content / "show.toml"}
    for season in sorted(content.glob("season-*")):
        named[f"{season.name}/season.toml"] = season / "season.toml"
        for n, episode in enumerate(sorted(season.glob("*.md")), start=1):
            named[f"{season.name}/episode-{n}"] = episode
    return {name: path.read_text(encoding="utf-8") for name, path in named.items()}


ASSIGNMENT = re.compile(r"^(?:# ?)?\[?[a-z_]+\]?(?: = .*)?$")
"""A TOML line that sets a key or opens a table, on or commented out: syntax, not prose."""


def prose(text: str) -> str:
    """The parts of a written file that are meant to be read: comments and text, without
    TOML keys and values, `code` and {placeholders} a user types as they are."""
    kept = []
    for line in text.splitlines():
        if " # " in line and "=" in line.split(" # ", 1)[0]:
            line = line.split(" # ", 1)[1]  # the note after a value
        elif ASSIGNMENT.match(line.strip()) or line.startswith("    famfeeds "):
            line = line.split(" # ", 1)[1] if " # " in line else ""
        kept.append(line)
    return PLACEHOLDER.sub(" ", without_code("\n".join(kept)))


def english_leaks(text: str, language: str, english: set[str], allowed: set[str]) -> set[str]:
    """Words of ``text`` that are English famfeeds words and not ``language``'s."""
    return (words(text) & english) - allowed


@pytest.fixture(scope="module")
def english_scaffold(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[set[str], set[str]]:
    """The English words famfeeds can write: its English catalogue's, and those of an
    English scaffold's files (comments, titles, texts) apart from the user's own."""
    from click.testing import CliRunner

    from famfeeds.cli import cli

    root = tmp_path_factory.mktemp("english") / "show"
    runner = CliRunner()
    made = runner.invoke(cli, ["init", str(root), *init_args("en")], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    more = runner.invoke(
        cli,
        ["new", "season", "--content", str(root / "content"), "--premiere", "2027-03-03"],
        catch_exceptions=False,
    )
    assert more.exit_code == 0, more.output
    files = scaffold_files(root)
    scaffold_words = set().union(*(words(text) for text in files.values())) - user_words("en")
    prose_words = set().union(*(words(prose(text)) for text in files.values()))
    return catalogue_words("en") | scaffold_words, prose_words - user_words("en")


@pytest.mark.parametrize("language", ["de", "fr"])
def test_a_scaffold_in_the_shows_language_builds_pages_without_english(
    tmp_path: Path,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    english_scaffold: tuple[set[str], set[str]],
    language: str,
) -> None:
    english, _ = english_scaffold
    root = scaffold(tmp_path / "show", language, run, monkeypatch, "--service-url", SERVICE_URL)
    allowed = (
        catalogue_words(language)
        | calendar_words(language)
        | user_words(language, "--service-url", SERVICE_URL)
    )
    built = pages(root / "output")
    assert len(built) == 1 + 2 + 6  # the front page, two seasons, six episodes
    leaks = {
        page.relative_to(root / "output").as_posix(): english_leaks(
            visible_text(page), language, english, allowed
        )
        for page in built
    }
    assert {page: found for page, found in leaks.items() if found} == {}
    # What the user sees instead: the scaffold's titles and texts, in the show's language.
    season, episode = {"de": ("Staffel", "Folge"), "fr": ("Saison", "Épisode")}[language]
    front = visible_text(root / "output/index.html")
    assert f"{season} 1" in front and f"{season} 2" in front
    assert all(f"{episode} {n}" in front for n in (1, 2, 3))
    seasons = tomllib.loads((root / "content/season-02/season.toml").read_text("utf-8"))
    assert seasons["title"] == f"{season} 2"


@pytest.mark.parametrize("language", ["de", "fr"])
def test_the_written_files_comments_are_in_the_shows_language(
    tmp_path: Path,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    english_scaffold: tuple[set[str], set[str]],
    language: str,
) -> None:
    _, english_prose = english_scaffold
    root = scaffold(tmp_path / "show", language, run, monkeypatch)
    allowed = catalogue_words(language) | user_words(language)
    files = scaffold_files(root)
    assert len(files) == 2 + 2 + 6  # README, show.toml, two season.toml, six episodes
    leaks = {
        name: english_leaks(prose(text), language, english_prose, allowed)
        for name, text in files.items()
    }
    assert {name: found for name, found in leaks.items() if found} == {}
    assert all(len(line) <= 88 for text in files.values() for line in text.splitlines())


def test_the_leak_check_finds_english() -> None:
    english = {"season", "episode", "streams", "synopsis"}
    allowed = catalogue_words("de")
    assert english_leaks("Staffel 1 · Season 2: Episode 3", "de", english, allowed) == {
        "season",
        "episode",
    }
    assert english_leaks("Folge 3 (https://x.example/season/)", "de", english, allowed) == set()
    assert prose('title = "Season 1"\n# release = 2026-11-04  # a day') == "\na day"


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_the_front_page_says_once_where_the_show_streams(
    tmp_path: Path,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    language: str,
) -> None:
    root = scaffold(tmp_path / "show", language, run, monkeypatch)
    _, service, _ = SHOWS[language]
    doc = lxml.html.parse(str(root / "output/index.html")).getroot()
    header = " ".join(doc.xpath("//header")[0].text_content().split())
    assert header.count(service) == 1, header
    paragraphs = [" ".join(p.text_content().split()) for p in doc.xpath("//header/p")]
    assert len(paragraphs) == 2  # the description, then where it streams
    assert service not in paragraphs[0] and paragraphs[0]  # a description all the same


def signup_forms(page: Path) -> list[lxml.html.FormElement]:
    doc = lxml.html.parse(str(page)).getroot()
    return list(doc.xpath("//form[.//input[@name='email']]"))


@pytest.mark.parametrize("language", ["en", "de"])
def test_init_with_the_service_url_gives_the_page_its_signup_form(
    tmp_path: Path,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    language: str,
) -> None:
    root = scaffold(tmp_path / "show", language, run, monkeypatch, "--service-url", SERVICE_URL)
    show = tomllib.loads((root / "content/show.toml").read_text(encoding="utf-8"))
    assert show["newsletter"]["service_url"] == SERVICE_URL
    (form,) = signup_forms(root / "output/index.html")
    assert form.get("method") == "post"
    assert form.get("action") == SERVICE_URL + "subscribe"
    assert [i.get("type") for i in form.xpath(".//input[@name='email']")] == ["email"]
    assert (root / "output/newsletter").is_dir()


def test_init_without_a_service_url_has_no_form_and_a_block_ready_to_switch_on(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = scaffold(tmp_path / "show", "en", run, monkeypatch)
    assert signup_forms(root / "output/index.html") == []
    show_file = root / "content/show.toml"
    text = show_file.read_text(encoding="utf-8")
    assert "newsletter" not in tomllib.loads(text)
    block = text[text.index("# [newsletter]") :].splitlines()
    keys = [line for line in block if re.match(r"# [a-z_]+ = ", line)]
    assert [k.split()[1] for k in keys] == [
        "sender_name",
        "sender_address",
        "service_url",
        "unsubscribe_url",
        "signup_url",
        "smtp_url",
    ]
    # Each key comes after a sentence that says what it turns on (the sender's address
    # shares its sentence with the sender's name).
    for key in keys[:1] + keys[2:]:
        at = block.index(key)
        said = []
        while at > 0 and block[at - 1].startswith("# ") and " = " not in block[at - 1]:
            at -= 1
            said.append(block[at])
        assert len(" ".join(said).split()) > 6, key
    assert block[block.index(keys[1]) - 1] == keys[0]
    # Removing the # in front of the table and the keys the comment names switches it on.
    switched = text.replace("# [newsletter]", "[newsletter]")
    for key in ("sender_name", "sender_address", "service_url"):
        switched = switched.replace(f"\n# {key} = ", f"\n{key} = ")
    show_file.write_text(switched, encoding="utf-8")
    content = root / "content"
    assert run("check", "--content", content, "--strict").exit_code == 0
    built = run("build", "--content", content, "--output", root / "output")
    assert built.exit_code == 0, built.output
    (form,) = signup_forms(root / "output/index.html")
    assert form.get("action") == BASE_URL + "subscriptions/subscribe"


def test_init_asks_for_the_service_url_and_refuses_a_bad_one(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    bad = run("init", tmp_path / "a", *init_args("en", "--service-url", "lists.example.org"))
    assert bad.exit_code == 2
    assert "'--service-url'" in bad.output and "absolute http(s) URL" in bad.output
    assert not (tmp_path / "a").exists()
    from click.testing import CliRunner

    from famfeeds.cli import cli

    answers = ["Lanterns", "Apple TV+", "Europe/Berlin", "2026-11-04", "", "1", ""]
    asked = CliRunner().invoke(
        cli,
        ["init", str(tmp_path / "b")],
        input="\n".join([*answers, "ftp://x", SERVICE_URL]) + "\n",
    )
    assert asked.exit_code == 0, asked.output
    assert asked.output.count("Public URL of the subscriptions service") == 2
    assert f"the page's sign-up form posts to {SERVICE_URL}subscribe" in asked.output
    show = tomllib.loads((tmp_path / "b/content/show.toml").read_text(encoding="utf-8"))
    assert show["newsletter"]["service_url"] == SERVICE_URL


def test_init_refuses_a_language_without_messages_before_asking_anything(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    result = run("init", tmp_path / "es", *init_args("en")[:-2], "--language", "es")
    assert result.exit_code == 2
    assert "'--language'" in result.output and "Spanish" in result.output
    assert not (tmp_path / "es").exists()


# The subscriptions service's port ---------------------------------------------------------


def common_default_ports() -> dict[str, int]:
    """Ports that tools a famfeeds user runs beside the service take by default, read from
    the tools themselves where they are installed, plus the well-known development ones."""
    import uvicorn
    from aiosmtpd.controller import Controller

    from famfeeds.cli import cli

    serve = cli.commands["serve"]
    (serve_port,) = [p.default for p in serve.params if p.name == "port"]
    found = {
        "aiosmtpd": inspect.signature(Controller.__init__).parameters["port"].default,
        "uvicorn": inspect.signature(uvicorn.Config.__init__).parameters["port"].default,
        "famfeeds serve": serve_port,
    }
    known = {
        "Mailpit/MailHog SMTP": 1025,
        "Mailpit/MailHog web": 8025,
        "SMTP submission alternative": 2525,
        "Node/React dev": 3000,
        "Jekyll": 4000,
        "Flask": 5000,
        "Vite": 5173,
        "Django/http.server/mkdocs": 8000,
        "HTTP alternative": 8080,
        "HTTPS alternative": 8443,
        "Jupyter": 8888,
    }
    return {**found, **known}


def test_the_service_port_collides_with_no_common_default_and_help_says_it() -> None:
    import click

    from famfeeds.cli import cli
    from famfeeds.delivery.service import DEFAULT_PORT, run

    assert inspect.signature(run).parameters["port"].default == DEFAULT_PORT
    taken = {name: port for name, port in common_default_ports().items() if port == DEFAULT_PORT}
    assert taken == {}
    command = cli.get_command(click.Context(cli), "subscriptions")
    assert command is not None
    with click.Context(command) as ctx:
        help_text = " ".join(command.get_help(ctx).split())
    assert f"[default: {DEFAULT_PORT};" in help_text
    (option,) = [p for p in command.params if p.name == "port"]
    assert option.default == DEFAULT_PORT
