"""The built pages as people see them in Chromium on a desktop (1280 px) and on phones
(320 and 390 px): the calendar's QR code and the episode still decode from screenshots of
the page, nothing is cut off or scrolls sideways, and the schedule reads as rows of cards
on a phone and as tables with shared column widths on a desktop.

Screenshots go to tests/artifacts/phone/ to look at."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import segno
import zxingcpp
from click.testing import Result
from PIL import Image
from playwright.sync_api import Browser, Page

from browsing import ARTIFACTS, chromium_browser, file_url, offline
from support import REPO, SHIPPED_CONTENT, Project, build_args

SHOTS = ARTIFACTS / "phone"
WIDTHS = (320, 390, 1280)
SHIPPED_BASE = "https://famfeeds.example.org/for-all-mankind/"
NEW_BASE = "https://shows.example.net/test/"
STILL = "https://img.example.net/still-s02e01.png"
STILL_TEXT = "Still of S2 E1"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium_browser() as found:
        yield found


def shipped_show(root: Path, run: Callable[..., Result], language: str) -> Project:
    """The shipped season in ``language``, built as of its third release."""
    shutil.copytree(SHIPPED_CONTENT, root / "content")
    shutil.copy(REPO / "famfeeds.lock", root / "famfeeds.lock")
    project = Project(root)
    show = project.content / "show.toml"
    show.write_text(show.read_text().replace('language = "en"', f'language = "{language}"'))
    assert run(*build_args(project, "--as-of", "2023-11-24")).exit_code == 0
    return project


def small_show(root: Path, run: Callable[..., Result], language: str) -> Project:
    """A new show of two short seasons released at midnight (the longest dates): season 1
    is all out, season 2 has one episode out, one next and one to come; S2 E1 has a still."""
    project = Project(root)
    project.show(**{'language = "en"': f'language = "{language}"'})
    project.season(1, "2022-02-18", extra='release_time = "00:00"', episodes=4)
    project.season(
        2,
        "2022-06-03",
        extra='release_time = "00:00"',
        episodes={
            1: {"image": f'"{STILL}"', "image_alt": '"The crew at the launch pad"'},
            2: {"title": "A rather long title that takes up more than one line on a phone"},
            3: {},
        },
    )
    assert run(*build_args(project, "--as-of", "2022-06-05")).exit_code == 0
    return project


def still_png() -> bytes:
    """A 3:2 still with a QR code in the middle: it decodes only if the page shows the
    whole image, undistorted."""
    code = segno.make(STILL_TEXT, error="m")
    qr = io.BytesIO()
    code.save(qr, kind="png", scale=12, border=4)
    square = Image.open(io.BytesIO(qr.getvalue())).convert("RGB")
    still = Image.new("RGB", (square.width * 3 // 2, square.height), "white")
    still.paste(square, ((still.width - square.width) // 2, 0))
    out = io.BytesIO()
    still.save(out, format="PNG")
    return out.getvalue()


def open_page(browser: Browser, path: Path, width: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    offline(page, {STILL: ("image/png", still_png())})
    page.goto(file_url(path))
    page.wait_for_load_state("load")
    return page


def screenshot(page: Page, name: str) -> Image.Image:
    """The whole page as a person scrolling down it sees it, kept as an artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    png = page.screenshot(full_page=True, path=SHOTS / name)
    return Image.open(io.BytesIO(png)).convert("L")


def decoded(image: Image.Image) -> list[str]:
    return [code.text for code in zxingcpp.read_barcodes(image)]


# The images people scan or look at --------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(("maker", "base"), [(shipped_show, SHIPPED_BASE), (small_show, NEW_BASE)])
def test_the_calendar_qr_code_scans_from_a_screenshot_of_the_front_page(
    browser: Browser,
    run: Callable[..., Result],
    tmp_path: Path,
    maker: Callable[[Path, Callable[..., Result], str], Project],
    base: str,
    language: str,
) -> None:
    project = maker(tmp_path, run, language)
    index = project.output / "index.html"
    # What the page means: its own subscription link, the show's calendar over webcal.
    webcal = "webcal://" + base.removeprefix("https://") + "calendar.ics"
    links = lxml.html.parse(str(index)).getroot().xpath("//a[starts-with(@href, 'webcal:')]/@href")
    assert set(links) == {webcal}
    for width in (1280, 390):
        page = open_page(browser, index, width)
        image = screenshot(page, f"qr-{maker.__name__}-{language}-{width}.png")
        box = page.locator("svg.qr").bounding_box()
        page.close()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["width"] == pytest.approx(box["height"], abs=0.5)
        assert decoded(image) == [webcal], (width, language)


def test_the_episode_still_is_shown_whole(
    browser: Browser, run: Callable[..., Result], tmp_path: Path
) -> None:
    """The still on an episode page decodes from a screenshot at both widths, at its own
    aspect ratio and within the screen."""
    project = small_show(tmp_path, run, "en")
    for width in (1280, 390):
        page = open_page(browser, project.output / "s02/e01/index.html", width)
        image = screenshot(page, f"still-{width}.png")
        box = page.locator(".still img").bounding_box()
        alt = page.locator(".still img").get_attribute("alt")
        page.close()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["width"] / box["height"] == pytest.approx(3 / 2, abs=0.02)
        assert alt == "The crew at the launch pad"
        assert decoded(image) == [STILL_TEXT], width


# Nothing cut off, nothing sideways ---------------------------------------------------------

MEASURE = """() => {
  const hidden = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.clip !== 'auto' || s.display === 'none' || s.visibility === 'hidden') return true;
    }
    return false;
  };
  const cut = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= 0 || hidden(el)) continue;
    if (r.left < -0.5 || r.right > innerWidth + 0.5) {
      const name = `${el.tagName.toLowerCase()}.${el.className}`;
      cut.push(`${name} ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  const wraps = [...document.querySelectorAll('.table-wrap')].filter(
    (w) => w.scrollWidth > w.clientWidth).map((w) => `${w.scrollWidth} > ${w.clientWidth}`);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth, cut, wraps};
}"""

ROWS = """() => [...document.querySelectorAll('table.schedule tbody tr')].map((tr) => {
  const cell = (name) => {
    const td = tr.querySelector('td.' + name);
    if (!td) return null;
    const r = td.getBoundingClientRect();
    return {left: r.left, top: r.top, width: r.width, height: r.height};
  };
  const r = tr.getBoundingClientRect();
  const line = parseFloat(getComputedStyle(tr.querySelector('td')).lineHeight);
  return {id: tr.id, width: r.width, line,
          when: cell('when'), title: cell('title'), state: cell('state')};
})"""


def pages_of(project: Project, shipped: bool) -> dict[str, Path]:
    out = project.output
    if shipped:
        return {
            "front": out / "index.html",
            "season": out / "s04/index.html",
            "episode": out / "s04/e04/index.html",
            "issue": out / "newsletter/2023-11-24.html",
        }
    return {
        "front": out / "index.html",
        "season": out / "s02/index.html",
        "episode": out / "s02/e02/index.html",
    }


@pytest.fixture(scope="module", params=["en", "de", "fr"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, dict[str, Path]]]]:
    """The shipped season and the small show, both in one language."""
    from click.testing import CliRunner

    from famfeeds.cli import cli

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    language: str = request.param
    shipped = shipped_show(tmp_path_factory.mktemp(f"shipped-{language}"), run, language)
    small = small_show(tmp_path_factory.mktemp(f"small-{language}"), run, language)
    yield language, {"shipped": pages_of(shipped, True), "small": pages_of(small, False)}


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_is_cut_off_or_scrolls_sideways(
    browser: Browser, built: tuple[str, dict[str, dict[str, Path]]], width: int
) -> None:
    language, sites = built
    page = browser.new_page(viewport={"width": width, "height": 900})
    offline(page, {STILL: ("image/png", still_png())})
    for site, pages in sites.items():
        for name, path in pages.items():
            page.goto(file_url(path))  # one page (one browser context) for them all
            page.wait_for_load_state("load")
            screenshot(page, f"{site}-{name}-{language}-{width}.png")
            found: dict[str, Any] = page.evaluate(MEASURE)
            rows: list[dict[str, Any]] = page.evaluate(ROWS)
            where = (site, name, language, width)
            assert found["scrollWidth"] <= found["innerWidth"] == width, where
            assert found["cut"] == [], where
            assert found["wraps"] == [], where
            if width <= 400:
                assert_stacked(rows, where)
    page.close()


def assert_stacked(rows: list[dict[str, Any]], where: object) -> None:
    """On a phone each episode is a small card: the date and the status side by side on
    one line each at most two lines high, the title across the whole card below them."""
    episodes = [row for row in rows if row["id"]]
    for row in episodes:
        when, title, state = row["when"], row["title"], row["state"]
        assert when["height"] <= 2.2 * row["line"], (where, row["id"], "date lines")
        assert state["left"] >= when["left"] + when["width"] - 0.5, (where, row["id"])
        assert title["top"] >= when["top"] + when["height"] - 0.5, (where, row["id"])
        assert title["width"] >= 0.95 * row["width"], (where, row["id"], "title width")


def test_columns_that_hold_nothing_are_left_out(
    built: tuple[str, dict[str, dict[str, Path]]],
) -> None:
    """Season 1 of the small show is all out: no "Add to calendar" column (and no empty
    cells); season 2 has links for what is to come, so it has the column."""
    _, sites = built
    doc = lxml.html.parse(str(sites["small"]["front"])).getroot()
    first, second = doc.xpath("//table")
    assert len(first.xpath(".//thead//th")) == 3
    assert {len(tr.xpath("./td")) for tr in first.xpath(".//tbody/tr")} == {3}
    assert not first.xpath(".//a[contains(@href, '.ics')]")
    assert len(second.xpath(".//thead//th")) == 4
    cells = [tr.xpath("./td")[3] for tr in second.xpath(".//tbody/tr")]
    assert [bool(td.xpath(".//a[contains(@href, '.ics')]")) for td in cells] == [
        False,
        True,
        True,
    ]


def test_the_seasons_tables_share_column_widths_on_a_desktop(
    browser: Browser, built: tuple[str, dict[str, dict[str, Path]]]
) -> None:
    """Release, Episode and Status start at the same place in both seasons' tables, though
    only the second has an "Add to calendar" column."""
    language, sites = built
    page = open_page(browser, sites["small"]["front"], 1280)
    starts: list[list[float]] = page.evaluate(
        """() => [...document.querySelectorAll('table.schedule')].map((t) =>
             [...t.querySelectorAll('thead th')].map((th) => th.getBoundingClientRect().left))"""
    )
    page.close()
    first, second = starts
    assert len(first) == 3 and len(second) == 4
    assert first == pytest.approx(second[:3], abs=0.5), language
