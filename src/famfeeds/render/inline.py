"""CSS inlining with premailer, with each stylesheet parsed once per inliner, not per issue.

premailer's ``transform`` turns every ``<style>`` block into rules with
``Premailer._parse_style_rules``: cssutils parses the text (premailer can cache that) and then
every declaration is serialised again (``prop.value``), on every call. For a newsletter that is
most of the cost of an issue, and it is the same work each time: the rules are a function of
the stylesheet's text, its position among the document's stylesheets and the inliner's
settings alone, never of the document.

:func:`premailer` returns a premailer whose ``_parse_style_rules`` remembers its result per
(stylesheet text, position), so one build (one inliner) parses a stylesheet once however many
issues it inlines. Everything else (selector matching, merging, URL rewriting, serialising)
is premailer's own code, unchanged, so the output is byte-identical to a plain premailer with
the same settings (tests/test_inline.py checks this on varied documents and stylesheets).

The remembered rules are handed out as fresh lists, so premailer's ``rules.extend`` and sort
never touch them; the cssutils objects a stylesheet leaves over (``@media`` rules) are
shared, which is safe with ``keep_style_tags`` (they are then only tested for emptiness) and
idempotent without it (premailer marks their declarations ``!important`` in place, the same
on every call).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from premailer import Premailer

RuleSet = tuple[list[Any], list[Any]]
"""What ``Premailer._parse_style_rules`` returns: inlinable rules and the rest."""


@functools.cache
def _reusing_class() -> type[Premailer]:
    """The Premailer subclass (made on first use: importing premailer costs ~0.1 s)."""
    from premailer import Premailer

    class ReusingPremailer(Premailer):  # type: ignore[misc]
        """A premailer that parses each distinct stylesheet once (see the module)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.parsed: dict[tuple[str, int], RuleSet] = {}

        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> RuleSet:
            key = (css_body or "", ruleset_index)
            found = self.parsed.get(key)
            if found is None:
                found = super()._parse_style_rules(css_body, ruleset_index)
                self.parsed[key] = found
            rules, leftover = found
            return list(rules), list(leftover)

    return ReusingPremailer


def premailer(base_url: str) -> Premailer:
    """The newsletter's inliner: premailer set up as email.md says (style tags kept for
    clients that read them, ``!important`` kept, no network, no validation noise), parsing
    each stylesheet once. Use one per build and reuse it for every issue."""
    return _reusing_class()(
        base_url=base_url,
        keep_style_tags=True,
        strip_important=False,
        allow_network=False,
        disable_validation=True,
        cache_css_parsing=True,
        cssutils_logging_level=logging.CRITICAL,
    )


def plain_premailer(base_url: str) -> Premailer:
    """premailer itself with the same settings and no reuse: what :func:`premailer` must
    match byte for byte (the tests compare the two)."""
    from premailer import Premailer

    return Premailer(
        base_url=base_url,
        keep_style_tags=True,
        strip_important=False,
        allow_network=False,
        disable_validation=True,
        cache_css_parsing=False,
        cssutils_logging_level=logging.CRITICAL,
    )
