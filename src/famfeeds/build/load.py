"""Load content/ and plan it: the build's one way from the content folder to a Plan.

Unchanged season folders come from the project's parse cache; the garbage collector is
paused while the records are made (:func:`collection_paused`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from famfeeds.build.project import Project
from famfeeds.build.record_cache import (
    CONTENT_CACHE,
    CONTENT_SHARDS,
    RecordCache,
    SeasonReader,
    save_later,
)
from famfeeds.build.speed import collection_paused
from famfeeds.errors import FamfeedsError
from famfeeds.plan.issues import Plan, make_plan
from famfeeds.records.loader import Loader
from famfeeds.records.models import Catalogue, normalise_base_url, season_digest


def plan(content: Path, base_url: str | None = None, *, freeze: bool = False) -> Plan:
    """Load, validate, schedule and lay out the issues; ContentError lists every problem.

    ``base_url`` replaces show.toml's, e.g. to build a staging copy of the site. Unchanged
    season folders come from the project's parse cache (famfeeds.build.record_cache). The
    garbage collector is paused meanwhile; ``freeze``: see :func:`collection_paused` (for
    one-shot processes only).
    """
    with collection_paused(freeze=freeze):
        catalogue = load_catalogue(content, Project.of(content).cache / CONTENT_CACHE)
        if base_url is not None:
            try:
                url = normalise_base_url(base_url)
            except ValueError as exc:
                raise FamfeedsError(f"--base-url {base_url}: {exc}") from None
            show = catalogue.show.model_copy(update={"base_url": url})
            catalogue = replace(catalogue, show=show)
        return make_plan(catalogue)


def load_catalogue(root: Path, cache: Path | None = None) -> Catalogue:
    """Load and validate everything under ``root``; raise ContentError on any problem.
    With ``cache`` (a folder: famfeeds.build.record_cache), season folders unchanged since
    the last load come from it."""
    if cache is None:
        return Loader(root).load()
    records = RecordCache.open(cache, CONTENT_SHARDS)
    catalogue = Loader(
        root, reader=lambda loader: SeasonReader(records, loader, season_digest)
    ).load()
    save_later(cache, records.save)  # by a build, once its output is written
    return catalogue
