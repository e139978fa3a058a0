"""A real browser for the tests: Debian's Chromium driven by Playwright for Python (no
browser download), with JavaScript evaluation for measurements and axe-core.

Tests import these from here, like support.py's helpers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Route, sync_playwright

from support import REPO

AXE = REPO / "tests" / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core from npm (tests/package.json; `npm ci` in tests/ installs it)."""
ARTIFACTS = REPO / "tests" / "artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """Headless Debian Chromium (a fresh profile of Playwright's own making each launch)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed for the browser tests (.ci/run installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=found, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def offline(page: Page, files: dict[str, tuple[str, bytes]] | None = None) -> None:
    """Let ``page`` load only file: and loopback URLs, plus ``files`` (URL: media type and
    body) answered from memory; any other request fails, as no test may use the network."""
    served = files or {}

    def answer(route: Route) -> None:
        url = route.request.url
        if url in served:
            kind, body = served[url]
            route.fulfill(status=200, content_type=kind, body=body)
        elif url.startswith(("file:", "http://127.0.0.1", "data:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", answer)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as loaded now (every rule axe runs by default)."""
    assert AXE.is_file(), "axe-core is missing: run `npm ci` in tests/"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def serious(violations: list[dict[str, Any]]) -> list[str]:
    """The serious and critical ones, one readable line each (rule, help, elements)."""
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def file_url(path: Path) -> str:
    """A file: URL of a built file."""
    return path.resolve().as_uri()
