"""Render newsletter issues: Jinja2 templates, CSS inlined once per issue with premailer.

An issue is rendered with personalisation markers where the subscriber's name and
unsubscribe token go (see :mod:`famfeeds.render.personal`). The markers survive inlining
and are filled afterwards, so sending never re-inlines. Rendering is pure: the build wraps
:func:`render_issue` with the issue cache.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from famfeeds.models import Season
from famfeeds.planning import Issue
from famfeeds.render.context import RenderContext
from famfeeds.render.events import google_calendar_link
from famfeeds.render.outputs import output
from famfeeds.render.personal import Letter, Markers, RenderedIssue, choose_markers
from famfeeds.render.richtext import html_to_text, markdown_to_html
from famfeeds.render.templating import long_date
from famfeeds.render.urls import (
    archive_url,
    episode_file,
    issue_file,
    season_file,
    unsubscribe_url,
    webcal,
)

if TYPE_CHECKING:
    from jinja2 import Environment
    from premailer import Premailer

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def subject(issue: Issue) -> str:
    """The email subject and the HTML <title>, on one line."""
    show = issue.show
    parts = []
    if issue.releases:
        first, last = issue.releases[0], issue.releases[-1]
        if len(issue.releases) == 1:
            text = f"{show.title} {first.code}: {first.episode.title}"
        else:
            span = f"{first.code}\u2013E{last.episode.number}"
            text = f"{show.title} {span}: " + ", ".join(r.episode.title for r in issue.releases)
        parts.append(text + (" (season finale)" if issue.finale else ""))
    for season in issue.previews:
        parts.append(f"{show.title} {season.title} starts {long_date(season.premiere)}")
    return " · ".join(" ".join(p.split()) for p in parts)


def _cadence(season: Season) -> str:
    return season.rule.phrase.format(weekday=WEEKDAYS[season.premiere.weekday()])


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
    finale = " (the season finale)" if nxt.is_finale else ""
    return f"{nxt.code} “{nxt.episode.title}”{finale} on {long_date(nxt.day)}."


def _headline(issue: Issue) -> str:
    if issue.releases and len(issue.releases) == 1:
        r = issue.releases[0]
        return f"{r.code}: {r.episode.title} is out"
    if issue.releases:
        return f"{len(issue.releases)} new episodes are out"
    return f"{issue.previews[0].title} is a week away"


def record_texts(issue: Issue) -> list[str]:
    """Every record text an issue can show: the markers must occur in none of them."""
    show = issue.show
    texts = [show.model_dump_json(), issue.note]
    for r in (*issue.releases, *([issue.next_release] if issue.next_release else [])):
        texts += [r.episode.model_dump_json(), r.season.title, r.season.description]
    texts += [s.model_dump_json() for s in issue.previews]
    return texts


def issue_context(issue: Issue, markers: Markers) -> dict[str, Any]:
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
                + (", the season finale" if r.is_finale else ""),
                "synopsis_html": synopsis_html,
                "synopsis_text": html_to_text(synopsis_html),
                "image_alt": r.episode.alt_text,
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
    title = subject(issue)
    lead = episodes[0]["position"] if episodes else f"{previews[0]['episode_count']} episodes"
    return {
        "show": show,
        "newsletter": show.newsletter,
        "issue": issue,
        "subject": title,
        "headline": _headline(issue),
        "preheader": f"{lead}, streaming on {show.service}. Next: {next_text}",
        "episodes": episodes,
        "previews": previews,
        "note_html": note_html,
        "note_text": html_to_text(note_html) if note_html else "",
        "next_text": next_text,
        "name_marker": markers.name,
        "unsubscribe_url": unsubscribe_url(show.newsletter, markers.token),
        "links": {
            "feed": show.url(output("atom").file),
            "calendar": show.url(output("calendar").file),
            "calendar_webcal": webcal(show.url(output("calendar").file)),
            "archive": archive_url(show),
            "browser": show.url(issue_file(issue.slug, ".html")),
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


def render_issue(issue: Issue, env: Environment, premailer: Premailer) -> RenderedIssue:
    """Render one issue: the templates, then CSS inlined once."""
    markers = choose_markers(record_texts(issue))
    context = issue_context(issue, markers)
    raw = env.get_template("newsletter.html.j2").render(context)
    html = premailer.transform(html=raw, pretty_print=False)
    text = env.get_template("newsletter.txt.j2").render(context)
    return RenderedIssue(issue, context["subject"], html, _tidy_text(text), markers)


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"


def issue_files(item: RenderedIssue) -> dict[str, bytes]:
    """One issue's files: the browser copy, the text part and the .eml, unpersonalised."""
    from famfeeds.render.message import MessageTemplate

    html, text = item.personalise(None, None)
    return {
        issue_file(item.issue.slug, ".html"): html.encode("utf-8"),
        issue_file(item.issue.slug, ".txt"): text.encode("utf-8"),
        issue_file(item.issue.slug, ".eml"): MessageTemplate.of(item).render(),
    }


def render_newsletter(letters: list[Letter], env: Environment) -> dict[str, bytes]:
    """Every published issue's files, and the archive page."""
    if not letters:
        return {}
    show = letters[0].item.issue.show
    files: dict[str, bytes] = {}
    for letter in letters:
        files.update(letter.files)
    archive = env.get_template("newsletter-archive.html.j2").render(
        show=show,
        newsletter=show.newsletter,
        site=show.base_url,
        issues=[
            {"slug": r.item.issue.slug, "day": r.item.issue.day, "subject": r.item.subject}
            for r in reversed(letters)
        ],
    )
    files[issue_file("index", ".html")] = archive.encode("utf-8")
    return files


def render(ctx: RenderContext) -> dict[str, bytes]:
    """The newsletter's files, as a renderer."""
    return render_newsletter(list(ctx.letters), ctx.env)
