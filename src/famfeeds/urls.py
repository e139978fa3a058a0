"""Public URLs, file names and permanent ids: derived from stable keys, never from titles."""

from __future__ import annotations

from famfeeds.models import Show
from famfeeds.schedule import Release

ATOM_FILE = "feed.xml"
RSS_FILE = "rss.xml"
JSON_FILE = "feed.json"
SITE_FILE = "index.html"
NEWSLETTER_FOLDER = "newsletter"


def tag_uri(show: Show, *parts: str) -> str:
    """A tag: URI (RFC 4151) from the site's domain, the show's id date and ``parts``."""
    path = "/".join((show.slug, *parts))
    return f"tag:{show.domain},{show.id_date.isoformat()}:{path}"


def episode_id(release: Release) -> str:
    """The permanent id of an episode: show, season and episode number only."""
    return tag_uri(release.show, f"s{release.season.number}", f"e{release.episode.number}")


def episode_url(release: Release) -> str:
    """Where an episode's entry links: its row on the site's page."""
    return release.show.url(f"#{release.key}")


def episode_title(release: Release) -> str:
    """The title a reader shows, e.g. ``S4 E3 · The Bear Hug``."""
    return f"{release.code} · {release.episode.title}"
