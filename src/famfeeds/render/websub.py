"""WebSub topics: the public URLs a hub is told about when a feed changes (pure).

A topic is a feed's ``rel="self"`` URL, exactly as the feed declares it: a reader subscribes
at the hub for that URL, and the hub fetches it when pinged. These functions say which
topics a show has and which of them a build changed; famfeeds.delivery.websub pings.
"""

from __future__ import annotations

from collections.abc import Mapping

from famfeeds.records.models import Show
from famfeeds.render.outputs import feeds


def feed_topics(show: Show) -> dict[str, str]:
    """Every feed the build writes, by its file under output/ (e.g. ``feed.xml``), with its
    public URL: the ``rel="self"`` URL the feed declares, in the order a page lists them."""
    return {row.file: show.url(row.file) for row in feeds()}


def changed_feed_topics(
    show: Show, before: Mapping[str, bytes | None], after: Mapping[str, bytes | None]
) -> list[str]:
    """The topic URLs whose feed a build added or changed, given each file's bytes by its
    path under output/ before and after the build (a missing key or None: no such file).

    A feed the build removed is left out: a hub told about it would fetch a missing page.
    """
    changed = []
    for file, url in feed_topics(show).items():
        new = after.get(file)
        if new is not None and new != before.get(file):
            changed.append(url)
    return changed
