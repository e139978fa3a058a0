"""What the newsletter says about finales, complete seasons and what comes next, when a
season comes out of order, all at once, or with several episodes on its first day.

Each issue is read back as a subscriber gets it: the .eml parsed with the email package."""

from __future__ import annotations

import email
import email.utils
import re
from collections.abc import Callable
from email import policy
from email.message import EmailMessage

import pytest
from click.testing import Result

from support import Project, build_args

NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@shows.example.net"
unsubscribe_url = "https://shows.example.net/unsubscribe?t={token}"
"""


def newsletter_project(project: Project, **season: object) -> None:
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(**season)  # type: ignore[arg-type]


def issue(project: Project, day: str) -> tuple[str, str]:
    """The subject and the plain-text body of the issue of ``day``."""
    msg = email.message_from_bytes(
        (project.output / f"newsletter/{day}.eml").read_bytes(), policy=policy.default
    )
    assert isinstance(msg, EmailMessage)
    plain = next(part for part in msg.walk() if part.get_content_type() == "text/plain")
    assert isinstance(plain, EmailMessage)
    return str(msg["Subject"]), " ".join(plain.get_content().split())


def issue_days(project: Project) -> list[str]:
    return sorted(p.stem for p in (project.output / "newsletter").glob("*.eml"))


def test_a_finale_released_first_is_not_the_end_of_the_season(
    project: Project, run: Callable[..., Result]
) -> None:
    """E3, the last by number, comes out a week before E1 (checked, so --strict accepts it):
    its issue is no finale and says E1 comes next; E2's issue, the last, completes the
    season without calling E2 the finale."""
    newsletter_project(
        project,
        premiere="2024-01-05",
        episodes={
            1: {},
            2: {"release": "2024-01-12"},
            3: {"release": "2023-12-30", "date_checked": "true"},
        },
    )
    assert run("check", "--content", project.content, "--strict").exit_code == 0
    assert run(*build_args(project, "--as-of", "2024-01-12")).exit_code == 0
    assert issue_days(project) == ["2023-12-29", "2023-12-30", "2024-01-05", "2024-01-12"]

    subject, body = issue(project, "2023-12-29")  # the preview: E3 comes first
    assert "finale" not in subject + body
    subject, body = issue(project, "2023-12-30")
    assert subject == "Test Show S1 E3: Episode 3"
    assert "What comes next: S1 E1 “Episode 1” on Friday, January 5, 2024." in body
    assert "complete" not in body
    assert "Episode 3 of 3" in body
    assert "finale" not in body  # not "Episode 3 of 3, the season finale" with E1 to come
    page = (project.output / "s01/e03/index.html").read_text()
    assert "Episode 3 of 3" in page
    assert "finale" not in page

    subject, body = issue(project, "2024-01-05")
    assert "finale" not in subject
    assert "What comes next: S1 E2 “Episode 2” on Friday, January 12, 2024." in body
    assert "complete" not in body

    subject, body = issue(project, "2024-01-12")
    assert subject == "Test Show S1 E2: Episode 2"
    assert (
        "What comes next: With this, every episode of Season 1 is out: the season is complete."
        in body
    )
    assert "finale" not in body


def test_a_whole_season_at_once_is_one_finale_issue(
    project: Project, run: Callable[..., Result]
) -> None:
    newsletter_project(project, premiere="2024-01-05", cadence="all-at-once", episodes=3)
    assert run(*build_args(project, "--as-of", "2024-01-05")).exit_code == 0
    assert issue_days(project) == ["2023-12-29", "2024-01-05"]

    _, preview = issue(project, "2023-12-29")
    assert (
        "What comes next: S1 E1\u2013E3 on Friday, January 5, 2024, up to the season finale: "
        "“Episode 1”, “Episode 2”, “Episode 3”." in preview
    )
    subject, body = issue(project, "2024-01-05")
    assert subject == "Test Show S1 E1\u2013E3: Episode 1, Episode 2, Episode 3 (season finale)"
    assert "What comes next: That was the Season 1 finale: the season is complete." in body


def test_a_triple_premiere_is_named_whole_as_what_comes_next(
    project: Project, run: Callable[..., Result]
) -> None:
    newsletter_project(
        project,
        premiere="2024-01-05",
        episodes={
            1: {},
            2: {"release": "2024-01-05"},
            3: {"release": "2024-01-05"},
            4: {"release": "2024-01-12"},
            5: {"release": "2024-01-19"},
        },
    )
    assert run(*build_args(project, "--as-of", "2024-01-19")).exit_code == 0
    assert issue_days(project) == ["2023-12-29", "2024-01-05", "2024-01-12", "2024-01-19"]

    _, preview = issue(project, "2023-12-29")
    assert (
        "What comes next: S1 E1\u2013E3 on Friday, January 5, 2024: "
        "“Episode 1”, “Episode 2”, “Episode 3”." in preview
    )
    assert "finale" not in preview
    subject, body = issue(project, "2024-01-05")
    assert subject == "Test Show S1 E1\u2013E3: Episode 1, Episode 2, Episode 3"
    assert "What comes next: S1 E4 “Episode 4” on Friday, January 12, 2024." in body
    _, body = issue(project, "2024-01-12")
    assert "What comes next: S1 E5 “Episode 5” (the season finale) on Friday, January 19" in body
    subject, body = issue(project, "2024-01-19")
    assert subject == "Test Show S1 E5: Episode 5 (season finale)"
    assert "What comes next: That was the Season 1 finale: the season is complete." in body


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("de", "Damit sind alle Folgen von Staffel 1 erschienen: Die Staffel ist komplett."),
        ("fr", "tous les épisodes de Saison 1 sont sortis"),
    ],
)
def test_a_season_completed_out_of_order_says_so_in_the_shows_language(
    project: Project, run: Callable[..., Result], language: str, expected: str
) -> None:
    project.show(
        **{"[author]": NEWSLETTER + "\n[author]", 'language = "en"': f'language = "{language}"'}
    )
    project.season(
        premiere="2024-01-05",
        episodes={1: {}, 2: {"release": "2023-12-30", "date_checked": "true"}},
    )
    project.write(
        "season-01/season.toml",
        (project.content / "season-01/season.toml")
        .read_text()
        .replace('"Season 1"', {"de": '"Staffel 1"', "fr": '"Saison 1"'}[language]),
    )
    assert run(*build_args(project, "--as-of", "2024-01-05")).exit_code == 0
    _, body = issue(project, "2024-01-05")
    assert expected in body


def test_a_subject_names_each_seasons_episodes_in_number_order(
    project: Project, run: Callable[..., Result]
) -> None:
    """Two seasons out on one day: the subject gives each season's own range; on a day
    whose E2 comes out an hour before E1 and E3, the range is still E1-E3."""
    newsletter_project(project, number=0, premiere="2024-01-05", cadence="all-at-once")
    project.season(number=99, premiere="2024-01-05", episodes=1)
    project.season(
        number=10,
        premiere="2024-02-02",
        extra="release_time = 21:00:00",
        episodes={1: {}, 2: {"release": "2024-02-02T20:00:00"}, 3: {"release": "2024-02-02"}},
    )
    assert run(*build_args(project, "--as-of", "2024-02-02")).exit_code == 0
    subject, _ = issue(project, "2024-01-05")
    assert subject.startswith("Test Show S0 E1\u2013E3, S99 E1: Episode 1, Episode 2, Episode 3, ")
    subject, _ = issue(project, "2024-02-02")
    assert subject == "Test Show S10 E1\u2013E3: Episode 1, Episode 2, Episode 3 (season finale)"
    subject, _ = issue(project, "2023-12-29")  # the preview of both seasons, folded
    assert subject.count("starts Friday, January 5, 2024") == 2
    for eml in (project.output / "newsletter").glob("*.eml"):  # RFC 2047: no empty word
        head = eml.read_bytes().split(b"\r\n\r\n")[0]
        assert not re.search(rb"=\?[^?]*\?[qb]\?\?=", head, re.IGNORECASE), head


def test_a_subject_counts_the_titles_of_a_large_drop(
    project: Project, run: Callable[..., Result]
) -> None:
    """A whole season of 12 at once: the subject counts them instead of listing 12 titles."""
    newsletter_project(project, premiere="2024-01-05", cadence="all-at-once", episodes=12)
    assert run(*build_args(project, "--as-of", "2024-01-05")).exit_code == 0
    subject, body = issue(project, "2024-01-05")
    assert subject == "Test Show S1 E1\u2013E12: 12 new episodes are out (season finale)"
    assert all(f"Episode {n}" in body for n in range(1, 13))  # the body still has each


@pytest.mark.parametrize(
    "name", ["Smith, John (news) <x@y>", 'The "Weekly" \\ Digest', "Plain Weekly"]
)
def test_list_id_reads_back_as_the_name_and_the_id(
    project: Project, run: Callable[..., Result], name: str
) -> None:
    """A sender name with commas, parentheses, angle brackets, quotes or a backslash goes
    into List-Id as a quoted phrase (RFC 2919), so a parser finds the list id, not ``x@y``."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    newsletter_project(project, premiere="2024-01-05", episodes=1)
    show = project.content / "show.toml"
    show.write_text(
        show.read_text().replace('sender_name = "Test weekly"', f'sender_name = "{quoted}"')
    )
    assert run(*build_args(project, "--as-of", "2024-01-05")).exit_code == 0
    msg = email.message_from_bytes(
        (project.output / "newsletter/2024-01-05.eml").read_bytes(), policy=policy.default
    )
    assert email.utils.parseaddr(str(msg["List-Id"])) == (name, "test-show.shows.example.net")
    assert email.utils.parseaddr(str(msg["From"])) == (name, "news@shows.example.net")


def test_local_mean_time_offsets_are_written_in_utc(
    project: Project, run: Callable[..., Result]
) -> None:
    """Kolkata in 1900 was +05:21:10 (local mean time): RFC 3339 and RFC 5322 cannot write
    seconds in an offset, so the feeds, the JSON-LD and the mail's Date give UTC there."""
    project.show(timezone="Asia/Kolkata", **{"[author]": NEWSLETTER + "\n[author]"})
    project.season(premiere="1900-01-05", extra="release_time = 00:00:00", episodes=2)
    assert run(*build_args(project, "--as-of", "1900-02-01")).exit_code == 0
    atom = (project.output / "feed.xml").read_text()
    stamps = re.findall(r"<(?:published|updated)>([^<]+)<", atom)
    assert stamps and all(re.fullmatch(r"[\d-]+T[\d:]+(Z|[+-]\d\d:\d\d)", s) for s in stamps)
    assert "+00:00" in stamps[0]
    assert "+05:21" not in (project.output / "feed.json").read_text()
    assert "+052110" not in (project.output / "rss.xml").read_text()
    msg = email.message_from_bytes(
        (project.output / "newsletter/1900-01-05.eml").read_bytes(), policy=policy.default
    )
    assert not msg["Date"].defects and msg["Date"].datetime.utcoffset() is not None
    assert "+05:21:10" not in (project.output / "s01/e01/index.html").read_text()
