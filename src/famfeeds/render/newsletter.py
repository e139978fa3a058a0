"""Render newsletter issues: Jinja2 templates, CSS inlined once per issue with premailer.

An issue is rendered with personalisation markers where the subscriber's name and
unsubscribe token go (see :mod:`famfeeds.render.personal`). The markers survive inlining
and are filled afterwards, so sending never re-inlines. Rendering is pure: the build wraps
:func:`render_issue` with the issue cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from famfeeds.errors import FamfeedsError
from famfeeds.plan.issues import Issue
from famfeeds.plan.schedule import Release
from famfeeds.records.richtext import html_to_text, markdown_to_html
from famfeeds.render.context import Call, RenderContext, direct
from famfeeds.render.events import google_calendar_link
from famfeeds.render.files import FileSet
from famfeeds.render.i18n import Localiser, localiser
from famfeeds.render.outputs import output
from famfeeds.render.pages import SCHEMA, Page, frame, series_data
from famfeeds.render.personal import Letter, Markers, RenderedIssue, choose_markers
from famfeeds.render.urls import (
    archive_url,
    episode_file,
    episode_url,
    issue_file,
    season_file,
    season_url,
    unsubscribe_url,
    webcal,
)

if TYPE_CHECKING:
    from datetime import date

    from jinja2 import Environment
    from premailer import Premailer

    from famfeeds.records.models import Show


SUBJECT_TITLES = 4
"""A subject names up to this many episodes' titles; more are counted instead."""


def episode_codes(releases: Sequence[Release], l10n: Localiser) -> tuple[str, list[Release]]:
    """The codes of ``releases`` a season at a time, each season's in episode order
    (``S1 E1-E3``, with an en dash; ``S1 E1, E3``; ``S0 E1-E3, S99 E1``), and the releases
    in that order."""
    by_season: dict[int, list[Release]] = {}
    for release in releases:
        by_season.setdefault(release.season.number, []).append(release)
    parts: list[str] = []
    ordered: list[Release] = []
    for group in by_season.values():
        group.sort(key=lambda r: r.episode.number)
        ordered += group
        numbers = [r.episode.number for r in group]
        if len(group) == 1:
            parts.append(l10n.code(group[0]))
        elif numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            parts.append(l10n.code_range(group[0], group[-1]))
        else:
            parts.append(", ".join(l10n.code(r) for r in group))
    return ", ".join(parts), ordered


def subject(issue: Issue, l10n: Localiser) -> str:
    """The email subject and the HTML <title>, on one line."""
    show = issue.show
    parts = []
    if issue.releases:
        first = issue.releases[0]
        if len(issue.releases) == 1:
            values = {"show": show.title, "code": l10n.code(first), "title": first.episode.title}
            if issue.finale:
                parts.append(l10n.gettext("%(show)s %(code)s: %(title)s (season finale)", **values))
            else:
                parts.append(l10n.gettext("%(show)s %(code)s: %(title)s", **values))
        else:
            codes, ordered = episode_codes(issue.releases, l10n)
            titles = ", ".join(r.episode.title for r in ordered)
            if len(ordered) > SUBJECT_TITLES:  # "200 new episodes are out", not 200 titles
                titles = l10n.ngettext(
                    "%(num)d new episode is out", "%(num)d new episodes are out", len(ordered)
                )
            values = {"show": show.title, "codes": codes, "titles": titles}
            if issue.finale:
                text = l10n.gettext("%(show)s %(codes)s: %(titles)s (season finale)", **values)
            else:
                text = l10n.gettext("%(show)s %(codes)s: %(titles)s", **values)
            parts.append(text)
    for season in issue.previews:
        parts.append(
            l10n.gettext(
                "%(show)s %(season)s starts %(date)s",
                show=show.title,
                season=season.title,
                date=l10n.full_date(season.premiere),
            )
        )
    return " \u00b7 ".join(" ".join(p.split()) for p in parts)


def next_text(issue: Issue, l10n: Localiser) -> str:
    """What comes after this issue, in one or two sentences.

    Every episode of the next release day is named (a triple premiere is three). "The
    season finale" and "the season is complete" follow the release order: a season is
    complete with the issue of its last release day, and that issue is called the finale
    only if it carries the season's last-numbered episode (see famfeeds.plan.issues).
    """
    nxt = issue.next_release
    upcoming = "" if nxt is None else _upcoming(issue, nxt, l10n)
    if issue.releases and issue.season_complete:
        season = issue.releases[-1].season.title
        if issue.finale:
            done = l10n.gettext(
                "That was the %(season)s finale: the season is complete.", season=season
            )
        else:
            done = l10n.gettext(
                "With this, every episode of %(season)s is out: the season is complete.",
                season=season,
            )
        if nxt is None:
            return done
        return done + " " + l10n.gettext("Next: %(next)s", next=upcoming)
    if nxt is None:
        return l10n.gettext("No further episodes are scheduled yet.")
    return upcoming


def _upcoming(issue: Issue, nxt: Release, l10n: Localiser) -> str:
    """The next release day's episodes of ``nxt``'s season: one sentence."""
    coming = issue.coming or (nxt,)
    finale = issue.coming_finale if issue.coming else nxt.closes_season
    if len(coming) == 1:
        values = {"code": l10n.code(nxt), "title": nxt.episode.title, "date": l10n.when(nxt)}
        if finale:
            return l10n.gettext(
                "%(code)s \u201c%(title)s\u201d (the season finale) on %(date)s.", **values
            )
        return l10n.gettext("%(code)s \u201c%(title)s\u201d on %(date)s.", **values)
    codes, ordered = episode_codes(coming, l10n)
    values = {
        "codes": codes,
        "titles": ", ".join(f"\u201c{r.episode.title}\u201d" for r in ordered),
        "date": l10n.when(coming[0]),
    }
    if finale:
        return l10n.gettext("%(codes)s on %(date)s, up to the season finale: %(titles)s.", **values)
    return l10n.gettext("%(codes)s on %(date)s: %(titles)s.", **values)


def headline(issue: Issue, l10n: Localiser) -> str:
    """The issue's heading."""
    if len(issue.releases) == 1:
        r = issue.releases[0]
        return l10n.gettext("%(code)s: %(title)s is out", code=l10n.code(r), title=r.episode.title)
    if issue.releases:
        return l10n.ngettext(
            "%(num)d new episode is out", "%(num)d new episodes are out", len(issue.releases)
        )
    return l10n.gettext("%(season)s is a week away", season=issue.previews[0].title)


def record_texts(issue: Issue) -> list[str]:
    """Every record text an issue can show: the markers must occur in none of them."""
    show = issue.show
    texts = [show.model_dump_json(), issue.note]
    nexts = issue.coming or ((issue.next_release,) if issue.next_release else ())
    for r in (*issue.releases, *nexts):
        texts += [r.episode.model_dump_json(), r.season.title, r.season.description]
    texts += [s.model_dump_json() for s in issue.previews]
    return texts


def _calendar_links(release: Release, l10n: Localiser) -> dict[str, str]:
    return {
        "ics_url": release.show.url(episode_file(release)),
        "google_url": google_calendar_link(release, l10n),
    }


def issue_context(issue: Issue, markers: Markers, l10n: Localiser) -> dict[str, Any]:
    """Everything the issue templates show, from the records.

    Episodes out in this issue link to their pages; only the one still to come (what comes
    next) gets "add to calendar" links.
    """
    show = issue.show
    assert show.newsletter is not None
    episodes = []
    for r in issue.releases:
        synopsis_html = markdown_to_html(r.episode.synopsis, show.base_url)
        episodes.append(
            {
                "release": r,
                "title": l10n.episode_title(r),
                "position": l10n.position(r),
                "when": l10n.when(r),
                "url": episode_url(r),
                "synopsis_html": synopsis_html,
                "synopsis_text": html_to_text(synopsis_html),
                "image_alt": r.episode.alt_text,
            }
        )
    previews = []
    for season in issue.previews:
        description_html = markdown_to_html(season.description, show.base_url)
        previews.append(
            {
                "season": season,
                "episode_count": l10n.episode_count(len(season.episodes)),
                "cadence": l10n.cadence(season),
                "description_html": description_html,
                "description_text": html_to_text(description_html),
                "calendar_url": show.url(season_file(season.number)),
                "url": season_url(show, season.number),
            }
        )
    nxt = issue.next_release
    coming = None
    if nxt is not None:
        coming = {"release": nxt, "url": episode_url(nxt), **_calendar_links(nxt, l10n)}
    note_html = markdown_to_html(issue.note, show.base_url) if issue.note else ""
    following = next_text(issue, l10n)
    lead = episodes[0]["position"] if episodes else previews[0]["episode_count"]
    return {
        "show": show,
        "newsletter": show.newsletter,
        "issue": issue,
        "subject": subject(issue, l10n),
        "headline": headline(issue, l10n),
        "preheader": l10n.gettext(
            "%(lead)s, streaming on %(service)s. Next: %(next)s",
            lead=lead,
            service=show.service,
            next=following,
        ),
        "episodes": episodes,
        "previews": previews,
        "coming": coming,
        "note_html": note_html,
        "note_text": html_to_text(note_html) if note_html else "",
        "next_text": following,
        "name_marker": markers.name,
        "unsubscribe_url": unsubscribe_url(show.newsletter, markers.token),
        "links": {
            "site": show.base_url,
            "feed": show.url(output("atom").file),
            "calendar": show.url(output("calendar").file),
            "calendar_webcal": webcal(show.url(output("calendar").file)),
            "archive": archive_url(show),
            "browser": show.url(issue_file(issue.slug, ".html")),
        },
    }


def inliner(base_url: str) -> Premailer:
    """One premailer instance, set up as email.md says, reused for every issue: it parses
    the stylesheet once (see famfeeds.render.inline)."""
    from famfeeds.render.inline import premailer

    return premailer(base_url)


def render_issue(issue: Issue, env: Environment, premailer: Premailer) -> RenderedIssue:
    """Render one issue: the templates, then CSS inlined once."""
    markers = choose_markers(record_texts(issue))
    context = issue_context(issue, markers, localiser(env))
    raw = env.get_template("newsletter.html.j2").render(context)
    html = premailer.transform(html=raw, pretty_print=False)
    text = _tidy_text(env.get_template("newsletter.txt.j2").render(context))
    for part in (html, text):
        if markers.name in part and markers.greeting not in part:
            raise FamfeedsError(
                "the greeting lost its space before the name: the translation of "
                "'Hi %(name)s,' must keep a space in front of %(name)s"
            )
    return RenderedIssue(issue, context["subject"], html, text, markers)


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


def render_newsletter(letters: Sequence[Letter], env: Environment, call: Call = direct) -> FileSet:
    """Every published issue's files, a month at a time, and the archive page (in the
    site's frame)."""
    files = FileSet()  # stored issues stay on disk
    if not letters:
        return files
    months: dict[tuple[int, int], list[Letter]] = {}
    for letter in letters:
        day = letter.item.issue.day
        months.setdefault((day.year, day.month), []).append(letter)
    for group in months.values():
        files.add(call(month_files, tuple(group)))
    show = letters[0].item.issue.show
    listing = tuple((r.item.issue.slug, r.item.issue.day, r.item.subject) for r in letters)
    files.add(call(archive_page, show, listing, env))
    return files


def month_files(letters: Sequence[Letter]) -> FileSet:
    """The files of a month's issues."""
    return FileSet(*(letter.files for letter in letters))


def archive_page(
    show: Show, listing: Sequence[tuple[str, date, str]], env: Environment
) -> dict[str, bytes]:
    """The newsletter's archive: every issue (slug, day, subject, oldest first), newest
    first."""
    l10n = localiser(env)
    url = archive_url(show)
    title = l10n.gettext("%(show)s: newsletter archive", show=show.title)
    page = Page(
        url=url,
        title=title,
        description=l10n.gettext("Every issue so far, newest first."),
        og_type="website",
        json_ld={
            "@context": SCHEMA,
            "@type": "CollectionPage",
            "@id": url,
            "url": url,
            "name": title,
            "inLanguage": show.language,
            "about": series_data(show),
        },
        image=show.artwork,
        image_alt=show.title,
    )
    archive = env.get_template("newsletter-archive.html.j2").render(
        **frame(show, env, listing[-1][1]),
        page=page,
        issues=[
            {"url": f"{slug}.html", "day": day, "subject": subject}
            for slug, day, subject in reversed(listing)
        ],
    )
    return {issue_file("index", ".html"): archive.encode("utf-8")}


def render(ctx: RenderContext) -> Mapping[str, bytes]:
    """The newsletter's files, as a renderer."""
    return render_newsletter(ctx.letters, ctx.env, ctx.call)
