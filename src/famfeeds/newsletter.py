"""Render newsletter issues: Jinja2 templates, CSS inlined once per issue with premailer.

An issue is rendered with personalisation markers where the subscriber's name and
unsubscribe token go. The markers survive inlining, and :meth:`RenderedIssue.personalise` fills
them afterwards (escaped for HTML in the HTML part), so sending never re-inlines.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from famfeeds.calendar import CALENDAR_FILE, episode_file, google_calendar_link, season_file, webcal
from famfeeds.issues import Issue, last_episode, published
from famfeeds.mail import NAME_MARKER, TOKEN_MARKER, MessageTemplate, one_line
from famfeeds.models import Newsletter, Season
from famfeeds.richtext import html_to_text, markdown_to_html
from famfeeds.templating import long_date
from famfeeds.urls import ATOM_FILE, NEWSLETTER_FOLDER

if TYPE_CHECKING:
    from jinja2 import Environment
    from premailer import Premailer

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class RenderedIssue:
    """An issue's inlined HTML and its text, still holding the personalisation markers."""

    issue: Issue
    subject: str
    html: str
    text: str

    def personalise(self, name: str | None, token: str | None) -> tuple[str, str]:
        """The HTML and text for one subscriber: the name escaped for HTML in the HTML
        part, plain in the text; a missing value leaves no marker behind."""
        clean = one_line(name or "")
        greeting = f" {clean}" if clean else ""
        token_text = quote(token or "", safe="")
        html = self.html.replace(f" {NAME_MARKER}", escape(greeting))
        text = self.text.replace(f" {NAME_MARKER}", greeting)
        return html.replace(TOKEN_MARKER, token_text), text.replace(TOKEN_MARKER, token_text)


def unsubscribe_url(newsletter: Newsletter, token: str | None) -> str:
    """The subscriber's unsubscribe URL (the token URL-encoded; empty when unknown)."""
    return newsletter.unsubscribe_url.replace("{token}", quote(token or "", safe=""))


def _cadence(issue_season: Season) -> str:
    weekday = WEEKDAYS[issue_season.premiere.weekday()]
    return {
        "weekly": f"new episodes on {weekday}s",
        "biweekly": f"new episodes every other {weekday}",
        "daily": "a new episode every day",
        "all-at-once": "every episode at once",
    }[issue_season.cadence]


def _next_text(issue: Issue) -> str:
    nxt = issue.next_release
    if issue.releases and issue.season_complete:
        season = issue.releases[-1].season
        done = f"that was the {season.title} finale: the season is complete."
        if nxt is None:
            return done[0].upper() + done[1:]
        return (
            f"{done[0].upper() + done[1:]} {nxt.season.title} continues with "
            f"{nxt.code} “{nxt.episode.title}” on {long_date(nxt.day)}."
        )
    if nxt is None:
        return "No further episodes are scheduled yet."
    finale = " (the season finale)" if nxt.episode.number == last_episode(nxt.season) else ""
    return f"{nxt.code} “{nxt.episode.title}”{finale} on {long_date(nxt.day)}."


def _headline(issue: Issue) -> str:
    if issue.releases and len(issue.releases) == 1:
        r = issue.releases[0]
        return f"{r.code}: {r.episode.title} is out"
    if issue.releases:
        return f"{len(issue.releases)} new episodes are out"
    return f"{issue.previews[0].title} is a week away"


def issue_context(issue: Issue) -> dict[str, Any]:
    """Everything the issue templates show, from the records."""
    show = issue.show
    assert show.newsletter is not None
    episodes = []
    for r in issue.releases:
        total = len(r.season.episodes)
        synopsis_html = markdown_to_html(r.episode.synopsis, show.base_url)
        episodes.append(
            {
                "release": r,
                "title": f"{r.code} · {r.episode.title}",
                "position": f"Episode {r.episode.number} of {total}"
                + (", the season finale" if r.episode.number == last_episode(r.season) else ""),
                "synopsis_html": synopsis_html,
                "synopsis_text": html_to_text(synopsis_html),
                "image_alt": r.episode.image_alt or r.episode.title,
                "ics_url": show.url(episode_file(r)),
                "google_url": google_calendar_link(r),
            }
        )
    previews = []
    for season in issue.previews:
        description_html = markdown_to_html(season.description, show.base_url)
        previews.append(
            {
                "season": season,
                "episode_count": len(season.episodes),
                "cadence": _cadence(season),
                "description_html": description_html,
                "description_text": html_to_text(description_html),
                "calendar_url": show.url(season_file(season.number)),
            }
        )
    note_html = markdown_to_html(issue.note, show.base_url) if issue.note else ""
    next_text = _next_text(issue)
    subject = issue.subject()
    lead = episodes[0]["position"] if episodes else f"{previews[0]['episode_count']} episodes"
    return {
        "show": show,
        "newsletter": show.newsletter,
        "issue": issue,
        "subject": subject,
        "headline": _headline(issue),
        "preheader": f"{lead}, streaming on {show.service}. Next: {next_text}",
        "episodes": episodes,
        "previews": previews,
        "note_html": note_html,
        "note_text": html_to_text(note_html) if note_html else "",
        "next_text": next_text,
        "name_marker": NAME_MARKER,
        "unsubscribe_url": unsubscribe_url(show.newsletter, TOKEN_MARKER),
        "links": {
            "feed": show.url(ATOM_FILE),
            "calendar": show.url(CALENDAR_FILE),
            "calendar_webcal": webcal(show.url(CALENDAR_FILE)),
            "archive": show.url(f"{NEWSLETTER_FOLDER}/"),
            "browser": show.url(f"{NEWSLETTER_FOLDER}/{issue.slug}.html"),
        },
    }


def inliner(base_url: str) -> Premailer:
    """One premailer instance, set up as email.md says, reused for every issue."""
    from premailer import Premailer

    return Premailer(
        base_url=base_url,
        keep_style_tags=True,
        strip_important=False,
        allow_network=False,
        disable_validation=True,
        cache_css_parsing=True,
        cssutils_logging_level=logging.CRITICAL,
    )


class Fingerprints:
    """Cache keys for issues: a digest of everything an issue's files depend on.

    The code and templates that render issues, the show, and every season an issue
    touches (all of its episodes and notes), so a key changes whenever the output could.
    Computing one needs no rendering, so an unchanged issue costs a cache read.
    """

    CODE = (
        "newsletter.py",
        "mail.py",
        "issues.py",
        "richtext.py",
        "calendar.py",
        "templating.py",
        "urls.py",
        "schedule.py",
    )

    def __init__(self, env: Environment, show_json: str) -> None:
        import sys
        from importlib.metadata import version
        from pathlib import Path

        here = Path(__file__).parent
        digest = hashlib.sha256()
        for name in self.CODE:
            digest.update((here / name).read_bytes())
        for package in ("premailer", "jinja2", "cmarkgfm", "nh3", "cssutils"):
            digest.update(f"{package}={version(package)};".encode())
        digest.update(sys.version.encode())
        assert env.loader is not None
        for name in sorted(env.loader.list_templates()):
            digest.update(name.encode() + env.loader.get_source(env, name)[0].encode())
        digest.update(show_json.encode())
        self.base = digest.hexdigest()
        self.seasons: dict[int, str] = {}

    def season(self, season: Any) -> str:
        if season.number not in self.seasons:
            self.seasons[season.number] = hashlib.sha256(
                season.model_dump_json().encode()
            ).hexdigest()
        return self.seasons[season.number]

    def issue(self, issue: Issue) -> str:
        def release(r: Any) -> str:
            return f"{self.season(r.season)}/{r.episode.number}/{r.day}/{r.local_time}/{r.rank}"

        parts = [self.base, issue.day.isoformat(), issue.note]
        parts += [release(r) for r in issue.releases]
        parts += ["preview:" + self.season(s) for s in issue.previews]
        parts.append("next:" + (release(issue.next_release) if issue.next_release else ""))
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def render_issue(issue: Issue, env: Environment, premailer: Premailer) -> RenderedIssue:
    """Render one issue: the templates, then CSS inlined once."""
    context = issue_context(issue)
    raw = env.get_template("newsletter.html.j2").render(context)
    html = premailer.transform(html=raw, pretty_print=False)
    text = env.get_template("newsletter.txt.j2").render(context)
    return RenderedIssue(issue, context["subject"], html, _tidy_text(text))


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"


def render_newsletter(
    issues: list[Issue], as_of: date, env: Environment, cache: Mapping[str, str]
) -> tuple[dict[str, bytes], dict[str, str], list[RenderedIssue]]:
    """Every published issue's .html, .txt and .eml, and the archive page.

    An issue whose fingerprint is in ``cache`` is taken from it. Returns the files, the
    new cache entries, and the rendered issues.
    """
    import json

    out = published(issues, as_of)
    if not out:
        return {}, {}, []
    show = out[0].show
    keys = Fingerprints(env, show.model_dump_json())
    premailer: Premailer | None = None
    fresh: dict[str, str] = {}
    files: dict[str, bytes] = {}
    rendered = []
    for issue in out:
        key = keys.issue(issue)
        entry = cache.get(key)
        if entry is not None:
            saved = json.loads(entry)
            item = RenderedIssue(issue, saved["subject"], saved["html"], saved["text"])
            eml = saved["eml"].encode("ascii")
        else:
            premailer = premailer or inliner(show.base_url)
            item = render_issue(issue, env, premailer)
            eml = MessageTemplate.of(item).render()
            fresh[key] = json.dumps(
                {
                    "subject": item.subject,
                    "html": item.html,
                    "text": item.text,
                    "eml": eml.decode("ascii"),
                }
            )
        rendered.append(item)
        html, text = item.personalise(None, None)
        files[f"{NEWSLETTER_FOLDER}/{issue.slug}.html"] = html.encode("utf-8")
        files[f"{NEWSLETTER_FOLDER}/{issue.slug}.txt"] = text.encode("utf-8")
        files[f"{NEWSLETTER_FOLDER}/{issue.slug}.eml"] = eml
    archive = env.get_template("newsletter-archive.html.j2").render(
        show=show,
        newsletter=show.newsletter,
        site=show.base_url,
        issues=[
            {"slug": r.issue.slug, "day": r.issue.day, "subject": r.subject}
            for r in reversed(rendered)
        ],
    )
    files[f"{NEWSLETTER_FOLDER}/index.html"] = archive.encode("utf-8")
    return files, fresh, rendered
