"""The documentation site (mkdocs.yml, docs/) builds with ``mkdocs build --strict``, every
internal link and anchor of the built site resolves, the site loads nothing from another
host, and the README stays a short first page that points at the docs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from lxml import html

from support import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
CONFIG = REPO / "mkdocs.yml"

# The attributes through which a page links to, or loads, another resource.
LINKS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src"}


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site``, as a separate process."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [
            *(sys.executable, "-m", "mkdocs", "build", "--strict", "--clean"),
            *("--config-file", str(config), "--site-dir", str(site)),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation, built once for this module."""
    folder = tmp_path_factory.mktemp("site")
    built = mkdocs_build(CONFIG, folder)
    assert built.returncode == 0, built.stdout + built.stderr
    return folder


def pages(site: Path) -> Iterator[Path]:
    """Every HTML page of a built site (the theme's own assets left out)."""
    for page in sorted(site.rglob("*.html")):
        if "assets" not in page.relative_to(site).parts:
            yield page


def ids(page: Path) -> set[str]:
    """Every id and every ``<a name>`` on a page: what a fragment may point at."""
    tree = html.parse(str(page))
    return {str(v) for v in tree.xpath("//@id")} | {str(v) for v in tree.xpath("//a/@name")}


def target(site: Path, page: Path, path: str) -> Path:
    """The file a link's path leads to: relative to the page, or to the site's root when
    it starts with / (as on the 404 page, which any address may show); a folder means its
    index.html."""
    if not path:
        resolved = page
    elif path.startswith("/"):
        resolved = (site / unquote(path).lstrip("/")).resolve()
    else:
        resolved = (page.parent / unquote(path)).resolve()
    if resolved.is_dir():
        resolved = resolved / "index.html"
    return resolved


def broken_links(site: Path) -> list[str]:
    """Every internal link of a built site that leads to no file, or to an anchor its
    target does not have, as ``page: link (why)``."""
    site = site.resolve()
    anchors: dict[Path, set[str]] = {}
    found: list[str] = []
    for page in pages(site):
        tree = html.parse(str(page))
        for tag, attribute in LINKS.items():
            for element in tree.iter(tag):
                link = element.get(attribute)
                if not link:
                    continue
                parts = urlsplit(link)
                if parts.scheme or parts.netloc:
                    continue  # another site: not checked (no network in tests)
                where = f"{page.relative_to(site)}: {link}"
                dest = target(site, page, parts.path)
                if site not in dest.parents and dest != site:
                    found.append(f"{where} (leaves the site)")
                elif not dest.is_file():
                    found.append(f"{where} (no such file)")
                elif parts.fragment and dest.suffix == ".html":
                    if dest not in anchors:
                        anchors[dest] = ids(dest)
                    if unquote(parts.fragment) not in anchors[dest]:
                        found.append(f"{where} (no #{parts.fragment} there)")
    return found


def test_the_docs_build_strictly(site: Path) -> None:
    built = [p.relative_to(site).as_posix() for p in pages(site)]
    for name in (
        "index.html",
        "start/index.html",
        "content/release-dates/index.html",
        "newsletter/bounces/index.html",
        "reference/commands/index.html",
        "contributing/architecture/index.html",
    ):
        assert name in built, (name, built)
    sources = sorted(p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.md"))
    assert len(built) - 1 == len(sources), (built, sources)  # and the 404 page


def test_every_internal_link_and_anchor_resolves(site: Path) -> None:
    assert broken_links(site) == []


def test_the_link_check_finds_a_missing_page_and_a_missing_anchor(tmp_path: Path) -> None:
    """The checker above is only worth something if it reports what is broken."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a/index.html").write_text(
        '<html><body><h2 id="here">Here</h2><a href="#here">ok</a><a href="#gone">anchor</a>'
        '<a href="../b/">page</a><a href="../index.html#top">ok</a>'
        '<a href="https://example.org/x">outside</a></body></html>',
        encoding="utf-8",
    )
    (tmp_path / "index.html").write_text('<html><body id="top"></body></html>', encoding="utf-8")
    assert broken_links(tmp_path) == [
        "a/index.html: #gone (no #gone there)",
        "a/index.html: ../b/ (no such file)",
    ]


def test_a_broken_link_in_a_page_fails_the_strict_build(tmp_path: Path) -> None:
    """mkdocs.yml's validation settings turn a missing page or anchor into a failed build."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(CONFIG, tmp_path / "mkdocs.yml")
    page = tmp_path / "docs/start.md"
    page.write_text(
        page.read_text(encoding="utf-8") + "\nSee [nowhere](content/index.md#no-such-part).\n",
        encoding="utf-8",
    )
    built = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0
    assert "no-such-part" in built.stdout + built.stderr


def test_the_site_loads_nothing_from_another_host(site: Path) -> None:
    """No web fonts, scripts or styles from a CDN: the pages work offline and tell no one."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["theme"]["font"] is False
    plugins = [p if isinstance(p, str) else next(iter(p)) for p in config.get("plugins", [])]
    assert not {"social", "privacy", "material/social", "material/privacy"} & set(plugins)
    for page in pages(site):
        tree = html.parse(str(page))
        for tag in ("link", "script", "img", "iframe"):
            for element in tree.iter(tag):
                url = element.get("src") or element.get("href") or ""
                if tag == "link" and element.get("rel") == "canonical":
                    continue
                assert not urlsplit(url).netloc, (page.relative_to(site), tag, url)
        assert "fonts.googleapis" not in page.read_text(encoding="utf-8")


def readme_lines() -> list[str]:
    return README.read_text(encoding="utf-8").splitlines()


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = readme_lines()
    assert len(lines) <= 150, len(lines)
    commands = [line.strip() for line in lines[:12] if line.startswith("    ")]
    assert commands[0].startswith("python3 -m venv .venv && .venv/bin/pip install ")
    assert commands[0].endswith("&& .venv/bin/famfeeds build")
    assert commands[1] == "python3 tests/run.py"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in [line.strip() for line in ci], ".ci/run runs the README's command"
    assert len(commands) == 2, commands


def test_the_readme_says_how_to_serve_the_docs_and_where() -> None:
    text = README.read_text(encoding="utf-8")
    assert ".venv/bin/mkdocs serve" in text
    address = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["dev_addr"]
    assert f"http://{address}/" in text


def test_every_link_of_the_readme_to_the_docs_leads_to_a_page_and_heading() -> None:
    """GitHub shows README links to docs/*.md as files: the file must exist, and an
    anchor must be one of its headings (as MkDocs' toc writes heading ids)."""
    from markdown.extensions.toc import slugify

    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if not urlsplit(link).scheme]
    assert any(link.startswith("docs/") for link in local), local
    for link in local:
        path, _, fragment = link.partition("#")
        file = REPO / unquote(path)
        assert file.is_file(), link
        if fragment:
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.MULTILINE)
            slugs = {slugify(h.replace("`", ""), "-") for h in headings}
            assert fragment in slugs, (link, sorted(slugs))
