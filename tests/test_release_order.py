"""What the newsletter says about finales, complete seasons and what comes next, when a
season comes out of order, all at once, or with several episodes on its first day.

Each issue is read back as a subscriber gets it: the .eml parsed with the email package."""

from __future__ import annotations

import email
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
