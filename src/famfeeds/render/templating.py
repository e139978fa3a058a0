"""The Jinja2 environment's rules (escaping, undefined values, messages, filters), whatever
loads the templates; :func:`famfeeds.build.project.template_environment` gives it the project's
folders and the show's catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import BaseLoader, Environment

    from famfeeds.render.i18n import Messages

AUTOESCAPED = ("html", "html.j2", "xml", "xml.j2", "xsl.j2")
"""Template name endings whose output is markup: every value is escaped for it."""


def make_environment(loader: BaseLoader, messages: Messages) -> Environment:
    """A Jinja2 environment over ``loader``: markup autoescaped, undefined values an error,
    ``messages`` installed for ``{% trans %}``/``_()`` (whitespace trimmed, as extracted),
    and the date and label filters of :func:`famfeeds.render.i18n.install`."""
    from jinja2 import Environment, StrictUndefined, select_autoescape

    from famfeeds.render.i18n import install

    env = Environment(
        loader=loader,
        autoescape=select_autoescape(AUTOESCAPED, default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # one environment per build: no need to stat templates per page
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True
    install(env, messages)
    return env
