"""axe-core (the engine behind browsers' own accessibility audits) in Chromium, in light
and dark mode, over every kind of page a person meets: the front page (with its sign-up
form), a season page, an episode page, a newsletter issue and its archive, and every page
of the subscriptions service, reached the way a person reaches them (the real service on
loopback, the form submitted by the browser, the link from the confirmation mail).
No serious or critical violation is allowed.

Languages and colour schemes are paired (English in light, German in dark, and the other
way round for the service): each page is audited in each language and in each scheme, and
``-m slow`` audits every combination."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import Result
from playwright.sync_api import Browser, BrowserContext

from browsing import axe_violations, chromium_browser, file_url, offline, serious
from famfeeds.delivery.store import SubscriberStore
from support import REPO, SHIPPED_CONTENT, Project, build_args
from test_service import SLUG, Sink, confirm_link, free_port, make_project, start_service

SCHEMES = ("light", "dark")
PAIRS = [
    pytest.param("en", "light", id="light-en"),
    pytest.param("de", "dark", id="dark-de"),
    pytest.param("en", "dark", id="dark-en", marks=pytest.mark.slow),
    pytest.param("de", "light", id="light-de", marks=pytest.mark.slow),
]
"""(language, colour scheme) of the built pages' audits: contrast is the stylesheet's and
the words are the catalogue's, so each scheme once and each language once find what every
combination finds; the other two combinations run under ``-m slow``."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium_browser() as found:
        yield found


def audit(context: BrowserContext, pages: list[str]) -> list[str]:
    """Every serious or critical violation on each URL, prefixed with the URL."""
    found: list[str] = []
    page = context.new_page()  # one tab for every URL, as a person clicking through
    offline(page)
    for url in pages:
        page.goto(url)
        found += [f"{url}: {line}" for line in serious(axe_violations(page))]
    page.close()
    return found


@pytest.mark.parametrize(("language", "scheme"), PAIRS)
def test_the_built_pages(
    browser: Browser, run: Callable[..., Result], tmp_path: Path, scheme: str, language: str
) -> None:
    shutil.copytree(SHIPPED_CONTENT, tmp_path / "content")
    shutil.copy(REPO / "famfeeds.lock", tmp_path / "famfeeds.lock")
    project = Project(tmp_path)
    show = project.content / "show.toml"
    show.write_text(show.read_text().replace('language = "en"', f'language = "{language}"'))
    assert run(*build_args(project, "--as-of", "2023-11-24")).exit_code == 0
    out = project.output
    paths = [
        "index.html",
        "s04/index.html",
        "s04/e04/index.html",
        "s04/e01/index.html",
        "newsletter/2023-11-24.html",
        "newsletter/index.html",
    ]
    context = browser.new_context(color_scheme=scheme)  # type: ignore[arg-type]
    try:
        assert audit(context, [file_url(out / p) for p in paths]) == []
    finally:
        context.close()


@pytest.fixture
def sink() -> Iterator[Controller]:
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.mark.parametrize(
    ("language", "schemes"),
    [
        pytest.param("en", ("dark",), id="en"),
        pytest.param("de", ("light",), id="de"),
        pytest.param("en", SCHEMES, id="en-both", marks=pytest.mark.slow),
        pytest.param("de", SCHEMES, id="de-both", marks=pytest.mark.slow),
    ],
)
def test_every_page_of_the_subscriptions_service(
    browser: Browser,
    run: Callable[..., Result],
    tmp_path: Path,
    sink: Controller,
    language: str,
    schemes: tuple[str, ...],
) -> None:
    port = free_port()
    project = make_project(tmp_path, f"http://127.0.0.1:{port}", language=language)
    assert run(*build_args(project, "--as-of", "2024-01-10")).exit_code == 0
    service = start_service(project.content, sink, "--port", str(port))
    mails: Sink = sink.handler
    base = service.url
    context = browser.new_context(bypass_csp=True)  # axe is a script the service's CSP bans
    page = context.new_page()
    offline(page)
    seen: dict[str, int] = {}
    problems: list[str] = []

    def check(name: str, status: int) -> None:
        """Audit what the page shows now, in each of ``schemes``."""
        for scheme in schemes:
            page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
            problems.extend(f"{name} ({scheme}): {line}" for line in serious(axe_violations(page)))
        seen[name] = status

    def visit(name: str, url: str) -> None:
        response = page.goto(url)
        assert response is not None
        check(name, response.status)

    def press(name: str, button: str) -> None:
        with page.expect_navigation() as navigation:
            page.click(button)
        response = navigation.value
        assert response is not None
        check(name, response.status)

    try:
        # The sign-up form on the built front page, and what submitting it leads to.
        visit("front page with the sign-up form", file_url(project.output / "index.html"))
        page.fill("#signup-email", "reader@example.org")
        page.fill("#signup-name", "Reader")
        press("check your inbox", "#signup button[type=submit]")
        visit("the service's own sign-up form", base + "subscribe")
        (message,) = mails.wait_for("reader@example.org")
        link = confirm_link(message)
        visit("confirm", link)
        press("confirmed", "form button[type=submit]")
        visit("confirmation link used again", link)
        with SubscriberStore.open(service.store) as store:
            (reader,) = [r for r in store.recipients(SLUG) if r.key == "reader@example.org"]
        visit("unsubscribe", f"{base}unsubscribe?token={reader.token}")
        press("unsubscribed", "form button[type=submit]")
        visit("unsubscribe link of an address that left", f"{base}unsubscribe?token={reader.token}")
        visit("a link cut short", base + "confirm?token=short")
        visit("an unknown link", base + "confirm?token=" + "A" * 32)
        visit("no such page", base + "nothing-here")
        page.goto(base + "subscribe")
        page.fill("#email", "not an address")
        page.eval_on_selector("form", "f => f.noValidate = true")  # past the browser's check
        press("not an email address", "form button[type=submit]")
    finally:
        context.close()
        service.stop()
    assert seen == {
        "front page with the sign-up form": 200,
        "check your inbox": 200,
        "the service's own sign-up form": 200,
        "confirm": 200,
        "confirmed": 200,
        "confirmation link used again": 200,
        "unsubscribe": 200,
        "unsubscribed": 200,
        "unsubscribe link of an address that left": 200,
        "a link cut short": 400,
        "an unknown link": 404,
        "no such page": 404,
        "not an email address": 400,
    }
    assert problems == []
    assert not re.search(r"Traceback", "".join(service.lines))
