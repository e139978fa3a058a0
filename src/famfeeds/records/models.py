"""The records: a show, its seasons and their episodes, as validated from content/."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from famfeeds.errors import Problem

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


@dataclass(frozen=True)
class CadenceRule:
    """How often a season releases: the step between release slots, and how a newsletter
    describes it (``{weekday}`` is the premiere's weekday)."""

    name: str
    step: int
    """Days between slots; 0 puts every undated episode on the premiere."""
    phrase: str

    def day_of_slot(self, premiere: date, slot: int) -> date:
        """The day of release slot ``slot`` (0 is the premiere)."""
        return premiere + timedelta(days=self.step * slot)

    def slot_of_day(self, premiere: date, day: date) -> int:
        """The slot nearest to ``day`` (round half up); always 0 for all-at-once."""
        if self.step == 0:
            return 0
        return (2 * (day - premiere).days + self.step) // (2 * self.step)


CADENCES: dict[str, CadenceRule] = {
    rule.name: rule
    for rule in (
        CadenceRule("daily", 1, "a new episode every day"),
        CadenceRule("weekly", 7, "new episodes on {weekday}s"),
        CadenceRule("biweekly", 14, "new episodes every other {weekday}"),
        CadenceRule("all-at-once", 0, "every episode at once"),
    )
}


def _cadence(value: str) -> str:
    if value not in CADENCES:
        names = ", ".join(repr(n) for n in CADENCES)
        raise ValueError(f"unknown cadence {value!r}; use one of {names}")
    return value


Cadence = Annotated[str, AfterValidator(_cadence)]
Status = Literal["scheduled", "cancelled"]


MAX_URL = 2000
"""The longest URL famfeeds accepts: what every browser, reader and mail client handles."""
MAX_UNSUBSCRIBE_URL = 900
"""The longest unsubscribe URL template: List-Unsubscribe must fit in one 998-octet line
with the subscriber's token."""
URI_UNSAFE = re.compile(r'[<>"\\^`{|}]')
"""ASCII characters a URI may not hold (RFC 3986); in a mail header or a tag they could end
the URL early, so they are refused rather than guessed at."""


def ascii_host(host: str) -> str:
    """A host name in its ASCII form: IDNA A-labels (punycode) for an internationalised one.

    Raises ValueError naming the label IDNA refuses."""
    if host.isascii():
        ascii_form = host.lower()
    else:
        import idna

        try:
            ascii_form = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(
                f"{host!r} is not a valid internationalised domain name: {exc}"
            ) from None
    if len(ascii_form) > 253 or any(len(label) > 63 for label in ascii_form.split(".")):
        raise ValueError("the host name is too long: at most 253 characters, and 63 between dots")
    return ascii_form


def _percent_encode_non_ascii(text: str) -> str:
    """Every non-ASCII character as %XX octets of its UTF-8 (RFC 3987, IRI to URI)."""
    return re.sub(r"[^\x00-\x7f]+", lambda m: quote(m.group(), safe=""), text)


def ascii_url(value: str, placeholder: str = "") -> str:
    """An absolute http(s) URL in the ASCII form every format needs: an internationalised
    host as IDNA A-labels, other non-ASCII characters percent-encoded. ``placeholder`` (such
    as ``{token}``) is a piece of the value left as written."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL, such as https://example.org/path/")
    if len(value) > MAX_URL:
        raise ValueError(f"the URL is {len(value):,} characters long; at most {MAX_URL:,} work")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise ValueError(
            "a URL must not contain spaces, line breaks or invisible characters; "
            "encode a space as %20"
        )
    unsafe = URI_UNSAFE.search(value.replace(placeholder, "") if placeholder else value)
    if unsafe:
        char = unsafe.group()
        raise ValueError(f"a URL must not contain {char!r}; encode it as %{ord(char):02X}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port after the host name must be a number from 0 to 65535") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError("the URL has no host name, such as example.org")
    netloc = ascii_host(host) if not host.startswith("[") else host
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if port is not None:
        netloc += f":{port}"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        netloc = f"{_percent_encode_non_ascii(userinfo)}@{netloc}"
    rest = value[len(f"{parts.scheme}://{parts.netloc}") :]
    return f"{parts.scheme}://{netloc}{_percent_encode_non_ascii(rest)}"


def _absolute_url(value: str) -> str:
    return ascii_url(value)


def normalise_base_url(value: str) -> str:
    """Check an absolute site URL and give it a trailing slash."""
    value = _absolute_url(value)
    if urlsplit(value).query or urlsplit(value).fragment:
        raise ValueError("the base URL must not have a ?query or #fragment")
    return value if value.endswith("/") else value + "/"


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'America/New_York'"
        ) from None
    return value


def _deliver(value: str) -> str:
    """``release`` or a 24-hour ``HH:MM`` (see famfeeds.plan.sendtime)."""
    text = value.strip()
    if text != "release" and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
        raise ValueError(
            f"{value!r} is neither 'release' nor a time of day: use 'release' (send as soon "
            "as the episode is out) or a 24-hour HH:MM such as '08:00' (each subscriber's "
            "local time)"
        )
    return text


def _quiet_hours(value: str) -> str:
    """``HH:MM-HH:MM`` with a different start and end (see famfeeds.plan.sendtime)."""
    clock = r"([01]\d|2[0-3]):[0-5]\d"
    match = re.fullmatch(rf"\s*({clock})\s*-\s*({clock})\s*", value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a range of local times: use HH:MM-HH:MM such as '22:00-07:00' "
            "(a range may cross midnight)"
        )
    if match.group(1) == match.group(3):
        raise ValueError(f"{value!r} starts and ends at the same time: give two different times")
    return f"{match.group(1)}-{match.group(3)}"


def _language(value: str) -> str:
    if not re.fullmatch(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*", value):
        raise ValueError(
            f"{value!r} is not a language tag; use an ISO 639 code such as 'en' or 'en-US'"
        )
    return value


def _email(value: str) -> str:
    """An address that every mail server and feed can carry: the domain in its ASCII (IDNA)
    form; the part before the @ must be ASCII (a non-ASCII one needs SMTPUTF8 everywhere)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(
            value, check_deliverability=False, allow_smtputf8=False, test_environment=True
        )
    except EmailNotValidError as exc:
        raise ValueError(
            f"{value!r} is not an email address such as 'news@example.org': {exc}"
        ) from None
    return str(info.ascii_email)


def _date_or_datetime(value: object) -> object:
    """Accept TOML dates and date-times, or the same written as a quoted string."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a valid date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM"
            ) from None
    return value


JOINERS = {"\u200c", "\u200d"}
"""The format characters a title may hold: zero-width non-joiner and joiner, which Persian
and Indic words and emoji sequences need; they never reorder or hide text."""


FIRST_YEAR, LAST_YEAR = 1900, 2999
"""The years a date in the records may name: wide enough for any show, narrow enough that
every schedule computed from them stays within what dates and calendars can represent."""


def _plausible_year(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"{value.isoformat()} is not a plausible date; use a year from {FIRST_YEAR} "
            f"to {LAST_YEAR}"
        )
    return value


def _one_line(value: str) -> str:
    """One line of text without control or invisible format characters (bidi overrides,
    isolates and marks, zero-width spaces, soft hyphens, tag characters): in a Subject, a
    calendar summary or a feed title they can make the text read differently than written."""
    for index, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            raise ValueError(
                "must be one line of text, without line breaks or control characters "
                f"(found U+{ord(char):04X} at character {index})"
            )
        if category == "Cf" and char not in JOINERS:
            name = unicodedata.name(char, "a format character")
            raise ValueError(
                f"contains U+{ord(char):04X} {name} at character {index}, an invisible "
                "format character that can make the text display differently than it is "
                "written; delete it"
            )
    return value


def _token_template(value: str) -> str:
    value = ascii_url(value, placeholder="{token}")
    if len(value) > MAX_UNSUBSCRIBE_URL:
        raise ValueError(
            f"the URL is {len(value):,} characters long; at most {MAX_UNSUBSCRIBE_URL} fit in "
            "the List-Unsubscribe header with a token"
        )
    if "{token}" not in value:
        raise ValueError(
            "must contain {token}, where each subscriber's unsubscribe token goes, "
            "e.g. https://example.org/unsubscribe?token={token}"
        )
    return value


def _plain_date(value: object) -> object:
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD) without a time of day")
    return value


AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]
BaseUrl = Annotated[str, AfterValidator(normalise_base_url)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
LanguageTag = Annotated[str, AfterValidator(_language)]
EmailAddress = Annotated[str, AfterValidator(_email)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
Day = Annotated[
    date,
    BeforeValidator(_plain_date),
    BeforeValidator(_date_or_datetime),
    AfterValidator(_plausible_year),
]
DayOrInstant = Annotated[
    datetime | date, BeforeValidator(_date_or_datetime), AfterValidator(_plausible_year)
]
Text = Annotated[str, Field(min_length=1)]
Line = Annotated[str, Field(min_length=1), AfterValidator(_one_line)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
"""A name that goes into mail headers (From, List-Id): short enough that a header line
never passes RFC 5322's 998 octets."""
ShowSlug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=63)]
"""The show's slug: a DNS label's length at most, as it goes into List-Id and Message-ID."""
UnsubscribeUrl = Annotated[str, AfterValidator(_token_template)]


class Record(BaseModel):
    """Base for every record: unknown keys are typos, and records never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Person(Record):
    """Who publishes the feeds."""

    name: Line
    email: EmailAddress | None = None
    uri: AbsoluteUrl | None = None


_DNS_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$"
"""A DNS name of letters, digits, hyphens and underscores (no trailing dot)."""


def _spf_source(value: str) -> str:
    """``include:DOMAIN``, ``ip4:ADDRESS[/BITS]`` or ``ip6:ADDRESS[/BITS]`` (see
    famfeeds.delivery.doctor), written as the SPF record writes it."""
    import ipaddress

    kind, _, rest = value.strip().partition(":")
    kind = kind.lower()
    try:
        if kind == "include" and len(rest) < 254 and re.match(_DNS_NAME, rest.rstrip(".")):
            return f"include:{rest.rstrip('.').lower()}"
        if kind in ("ip4", "ip6"):
            network = ipaddress.ip_network(rest, strict=False)
            if network.version == int(kind[2]):
                return f"{kind}:{rest}"
    except ValueError:
        pass
    raise ValueError(
        f"{value!r} is not an SPF source famfeeds can check: write include:DOMAIN (what your "
        "relay tells you to include), ip4:ADDRESS[/BITS] or ip6:ADDRESS[/BITS]"
    )


def _one_or_many(value: object) -> object:
    """A single string stands for a list of one."""
    return [value] if isinstance(value, str) else value


class RelayDkim(Record):
    """A DKIM key a relay signs with, as ``famfeeds doctor`` looks it up."""

    selector: Annotated[str, Field(pattern=_DNS_NAME, max_length=253)]
    domain: Annotated[str, Field(pattern=_DNS_NAME, max_length=253)] | None = None
    """The signature's d= domain [default: the sender_address's domain]."""


def _dns_name(what: str, labels: str) -> AfterValidator:
    """A DNS name of ``labels`` (``one or more``) labels of letters, digits, hyphens and
    underscores between dots, at most 253 characters and 63 per label, kept in lower case
    (an internationalised name in its IDNA form)."""

    def check(value: str) -> str:
        try:
            name = ascii_host(value.rstrip("."))
        except ValueError:
            name = ""
        if not (len(name) <= 253 and re.match(_DNS_NAME, name)) or (
            labels == "two or more" and "." not in name
        ):
            raise ValueError(
                f"{value!r} is not a {what}: write {labels} labels of letters, digits and "
                "hyphens separated by dots, each at most 63 characters"
            )
        return name

    return AfterValidator(check)


def _key_path(value: str) -> str:
    """A file name, relative to the project folder (the one holding content/) or absolute."""
    if not value or "\0" in value or value.endswith(("/", "\\")):
        raise ValueError(
            "expected the path of the private key file, relative to the project folder "
            "(the one holding content/), e.g. 'private/dkim/ff2026.pem'"
        )
    return value


class Dkim(Record):
    """famfeeds' own DKIM key: every message famfeeds sends is signed with it (famfeeds dkim
    new makes one and prints the DNS record to publish)."""

    selector: Annotated[str, _dns_name("DKIM selector such as 'ff2026'", "one or more")]
    domain: Annotated[str, _dns_name("domain such as 'example.org'", "two or more")]
    """The signature's d= domain: the sender_address's domain or a parent of it."""
    key: Annotated[str, AfterValidator(_key_path)]
    """The private key file (PEM, RSA of at least 2048 bits or Ed25519, mode 0600)."""


def _one_table_or_many(value: object) -> object:
    """One ``dkim`` table stands for a list of one (RSA plus Ed25519 is a list of two)."""
    return [value] if isinstance(value, (dict, Dkim)) else value


class Newsletter(Record):
    """Sender settings for the newsletter and the send command."""

    sender_name: Name
    sender_address: EmailAddress
    reply_to: EmailAddress | None = None
    service_url: AbsoluteUrl | None = None
    """Where the subscriptions service (famfeeds subscriptions) is reachable publicly."""
    unsubscribe_url: UnsubscribeUrl | None = Field(
        default=None,
        description="URL template; {token} is replaced per subscriber "
        "[default: {service_url}/unsubscribe?token={token}]",
    )
    unsubscribe_mailto: EmailAddress | None = None
    signup_url: AbsoluteUrl | None = None
    smtp_url: str | None = None
    bounce_address: EmailAddress | None = None
    """The envelope sender (Return-Path), where bounces go [default: sender_address]."""
    verp: bool = False
    """Send each message from bounce_address with a per-recipient tag (bounces+TAG@domain),
    so famfeeds bounces knows whom a bounce is about even when the report garbles it."""
    soft_bounce_limit: Annotated[int, Field(ge=1, le=100)] = 3
    """Soft bounces for this many issues in a row suppress an address (famfeeds bounces)."""
    relay_spf: Annotated[
        tuple[Annotated[str, AfterValidator(_spf_source)], ...], BeforeValidator(_one_or_many)
    ] = ()
    """What in SPF authorises the relay that sends the mail: ``include:DOMAIN``,
    ``ip4:ADDRESS[/BITS]`` or ``ip6:ADDRESS[/BITS]``, one or a list (famfeeds doctor)
    [default: the addresses of smtp_url's host]."""
    relay_dkim: tuple[RelayDkim, ...] = ()
    """DKIM keys the relay signs with, ``{ selector = "s1", domain = "example.org" }`` each;
    famfeeds doctor checks that their records are published."""
    dkim: Annotated[tuple[Dkim, ...], BeforeValidator(_one_table_or_many)] = ()
    """``{ selector = "ff2026", domain = "example.org", key = "private/dkim/ff2026.pem" }``,
    or a list of such tables (an RSA key and an Ed25519 one, RFC 8463): famfeeds signs
    every message with each key (DKIM, relaxed/relaxed) [default: no signing]."""
    doctor_threshold: Annotated[int, Field(ge=0, le=100_000_000)] = 5000
    """``famfeeds send`` runs the doctor's checks once per issue before mailing more than this
    many recipients, and stops on a failed line (unless --force); the providers' bulk mark."""
    deliver: Annotated[str, AfterValidator(_deliver)] = "release"
    """When each subscriber gets an issue: ``release`` (as soon as it is out) or ``HH:MM``,
    the first such time on the subscriber's own clock on or after the release moment."""
    quiet_hours: Annotated[str, AfterValidator(_quiet_hours)] | None = None
    """``HH:MM-HH:MM``: local hours in which nobody is mailed (a due moment inside moves to
    the end); the range may cross midnight, e.g. ``22:00-07:00``."""
    complaint_rate_stop: Annotated[float, Field(ge=0.0, le=1.0)] = 0.003
    """Complaints about the last issue over this share of its deliveries stop the next send
    (unless --force); Gmail and Yahoo require under 0.3%."""
    complaint_rate_warn: Annotated[float, Field(ge=0.0, le=1.0)] = 0.001
    """Complaints about the last issue over this share of its deliveries warn at the next
    send."""
    bounce_rate_stop: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    """Hard bounces over this share of the addresses a send has tried stop it; the rest are
    kept for a later run."""

    @model_validator(mode="after")
    def _unsubscribe_target(self) -> Newsletter:
        if self.unsubscribe_url is None:
            if self.service_url is None:
                raise ValueError(
                    "set unsubscribe_url (with {token}) or service_url (where famfeeds "
                    "subscriptions runs), so every message can carry a one-click unsubscribe"
                )
            object.__setattr__(
                self, "unsubscribe_url", self.service_endpoint("unsubscribe") + "?token={token}"
            )
        return self

    @model_validator(mode="after")
    def _dkim_alignment(self) -> Newsletter:
        """DMARC counts a DKIM signature only when the From domain is its d= domain or a
        subdomain of it (relaxed alignment)."""
        domain = self.sender_address.rpartition("@")[2].lower()
        seen: set[tuple[str, str]] = set()
        for key in self.dkim:
            if domain != key.domain and not domain.endswith("." + key.domain):
                raise ValueError(
                    f"dkim.domain {key.domain!r} does not match sender_address's domain "
                    f"{domain!r}: receivers (DMARC) only trust a signature whose domain is the "
                    f"From domain or a parent of it. Set dkim.domain = {domain!r} (and publish "
                    "its key there), or send from an address at the DKIM domain"
                )
            if (key.selector, key.domain) in seen:
                raise ValueError(
                    f"two dkim keys use selector {key.selector!r} of {key.domain!r}: one DNS "
                    "record holds one key, so give each key its own selector"
                )
            seen.add((key.selector, key.domain))
        return self

    def service_endpoint(self, name: str) -> str:
        """The public URL of one of the subscriptions service's endpoints."""
        assert self.service_url is not None
        return self.service_url.rstrip("/") + "/" + name

    @property
    def unsubscribe_template(self) -> str:
        """The unsubscribe URL template, with {token}."""
        assert self.unsubscribe_url is not None
        return self.unsubscribe_url


class CalendarSettings(Record):
    """The [calendar] table of show.toml."""

    all_day: bool = False
    """Show timed releases as all-day events."""
    reminder: Annotated[int, Field(ge=0, le=40320, description="minutes before")] = 0
    """A reminder (VALARM) this many minutes before each release; 0 for none."""


class PublishSettings(Record):
    """The [publish] table of show.toml: how ``famfeeds run`` publishes a finished build."""

    command: Line
    """A shell command run in the current folder after each build that changed output/
    (e.g. ``rsync -a --delete output/ web:/srv/show/``); FAMFEEDS_OUTPUT holds the output
    folder's absolute path. Its exit status is checked; hubs are told and mail is sent only
    after it succeeded."""
    timeout: Annotated[int, Field(ge=1, le=86_400, description="seconds")] = 600
    """Seconds the command may take before it is stopped (and counted as failed)."""


MAX_HUBS = 10
"""The most WebSub hubs a show may name: each is pinged for every changed feed."""


def _is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1)."""
    import ipaddress

    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hub_url(value: str) -> str:
    """A WebSub hub's URL: absolute, https (plain http only on this machine's loopback, for
    tests), without a #fragment."""
    value = ascii_url(value)
    parts = urlsplit(value)
    if parts.scheme != "https" and not _is_loopback(parts.hostname or ""):
        raise ValueError(
            f"{value!r} is not an https URL: a hub must be reached over https, such as "
            "https://pubsubhubbub.appspot.com/ (http works only for localhost, for tests)"
        )
    if parts.fragment:
        raise ValueError(f"{value!r} has a #fragment; a hub URL has none")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "a hub URL holding a user name or password would be published in every feed "
            '(rel="hub"); name the hub\'s public URL, as its documentation gives it'
        )
    return value


def _distinct_hubs(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > MAX_HUBS:
        raise ValueError(f"names {len(values)} hubs; at most {MAX_HUBS} are pinged")
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is named twice; name each hub once")
        seen.add(value)
    return values


def _hub_list(value: object) -> object:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(
            'must be a list of hub URLs, such as hubs = ["https://pubsubhubbub.appspot.com/"]'
        )
    return value


HubUrl = Annotated[str, AfterValidator(_hub_url)]


class FeedSettings(Record):
    """The [feeds] table of show.toml."""

    hubs: Annotated[
        tuple[HubUrl, ...],
        BeforeValidator(_hub_list),
        AfterValidator(_distinct_hubs),
    ] = ()
    """WebSub hubs: every feed names each (``rel="hub"``) beside its own URL
    (``rel="self"``), and ``famfeeds run`` tells each one when a feed changed."""


class Limits(Record):
    """The [limits] table of show.toml: how large a record may be. The defaults keep every
    output a reasonable size (a synopsis is in a feed entry, a calendar event and an email)."""

    title_characters: Annotated[int, Field(ge=1, le=10_000)] = 200
    """Longest title (show, season or episode), in characters."""
    synopsis_characters: Annotated[int, Field(ge=1, le=10_000_000)] = 20_000
    """Longest Markdown text (an episode's synopsis, a show's or season's description, an
    editor's note), in characters."""
    file_bytes: Annotated[int, Field(ge=1_000, le=100_000_000)] = 1_000_000
    """Largest file under content/, in bytes."""


class Show(Record):
    """content/show.toml."""

    title: Line
    slug: ShowSlug
    base_url: BaseUrl
    id_date: Day
    language: LanguageTag = "en"
    service: Line
    timezone: TimeZoneName
    description: Text
    homepage: AbsoluteUrl | None = None
    artwork: AbsoluteUrl | None = None
    feed_entries: Annotated[int, Field(ge=1, le=10_000)] = 50
    feed_stylesheet: bool = False
    """Point feed.xml and rss.xml at feed.xsl, so a browser shows them as a page (off by
    default: Chrome is removing XSLT and warns visitors of pages that use it)."""
    author: Person
    newsletter: Newsletter | None = None
    calendar: CalendarSettings = CalendarSettings()
    limits: Limits = Limits()
    feeds: FeedSettings = FeedSettings()
    publish: PublishSettings | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The release time zone."""
        return ZoneInfo(self.timezone)

    @property
    def domain(self) -> str:
        """The host name of the published site, in ASCII (an internationalised one as IDNA
        A-labels): what ids, UIDs and Message-IDs carry."""
        return urlsplit(self.base_url).hostname or ""

    def url(self, path: str = "") -> str:
        """The public URL of ``path`` under the site."""
        return self.base_url + path.lstrip("/")

    def midnight(self, day: date) -> datetime:
        """The start of ``day`` in the show's time zone."""
        return datetime.combine(day, time(0), tzinfo=self.zone)


class SeasonMeta(Record):
    """content/season-NN/season.toml."""

    number: Annotated[int, Field(ge=0, le=9999)]
    title: Line
    description: str = ""
    premiere: Day
    cadence: Cadence = "weekly"
    release_time: time | None = None


class EpisodeMeta(Record):
    """The TOML front matter of content/season-NN/EE-slug.md."""

    number: Annotated[int, Field(ge=1, le=9999)]
    title: Line
    release: DayOrInstant | None = None
    status: Status = "scheduled"
    image: AbsoluteUrl | None = None
    image_alt: Line | None = None
    runtime: Annotated[int, Field(ge=1, le=600, description="minutes")] | None = None
    updated: DayOrInstant | None = None
    date_checked: bool = False
    """The release date is intended, however surprising (a long break, a part two a year
    later, episodes aired out of order): no schedule warning for it."""

    @property
    def alt_text(self) -> str:
        """The image's text alternative: given, or the title."""
        return self.image_alt or self.title


class Episode(EpisodeMeta):
    """An episode with what the loader adds: its slug, synopsis and source file.

    Built with ``model_construct`` from a validated EpisodeMeta: no second validation.
    """

    model_config = ConfigDict(defer_build=True)

    slug: Slug
    synopsis: str
    source: str
    lines: tuple[tuple[str, int], ...] = Field(default=(), exclude=True)
    """The line in ``source`` of each front-matter key, for messages."""

    def line_of(self, key: str) -> int | None:
        """The line of ``source`` that sets ``key``, if it is set there."""
        return dict(self.lines).get(key)


class Season(SeasonMeta):
    """A season with its episodes, in episode order (built like Episode)."""

    model_config = ConfigDict(defer_build=True)

    episodes: tuple[Episode, ...]
    source: str
    lines: tuple[tuple[str, int], ...] = Field(default=(), exclude=True)
    """The line in ``source`` (season.toml) of each key, for messages."""

    def line_of(self, key: str) -> int | None:
        """The line of season.toml that sets ``key``, if it is set there."""
        return dict(self.lines).get(key)

    notes: dict[date, str] = Field(default_factory=dict)
    """Editor's notes for newsletter issues, by issue date (Markdown)."""

    @property
    def code(self) -> str:
        """Zero-padded folder-style code, e.g. ``season-04``."""
        return f"season-{self.number:02d}"

    @property
    def rule(self) -> CadenceRule:
        """The season's cadence."""
        return CADENCES[self.cadence]

    @property
    def finale_number(self) -> int:
        """The number of the season's finale: its last episode that is not cancelled."""
        return max((e.number for e in self.episodes if e.status != "cancelled"), default=0)


@dataclass(frozen=True)
class Catalogue:
    """Everything under content/: the show and its seasons, in season order."""

    root: Path
    show: Show
    seasons: tuple[Season, ...]
    warnings: tuple[Problem, ...] = ()
    """What the loader noticed but accepted (a synopsis that sanitising empties)."""
    digests: Mapping[int, str] = field(default_factory=dict, repr=False)
    """:func:`season_digest` of each season, by number: taken once when its folder was
    parsed and kept in the parse cache with it, so an unchanged season costs nothing."""

    def digest(self, season: Season) -> str:
        """:func:`season_digest` of ``season``, one of :attr:`seasons` (from
        :attr:`digests`; computed if missing)."""
        found = self.digests.get(season.number)
        return season_digest(season) if found is None else found

    def episode_count(self) -> int:
        """How many episodes all seasons hold."""
        return sum(len(s.episodes) for s in self.seasons)


SOURCE_FREE: dict[str, Any] = {"source": True, "episodes": {"__all__": {"source"}}}
"""What :func:`season_digest` leaves out of a season: where its files are."""


def season_digest(season: Season) -> str:
    """A digest of a season's records, its episodes' and notes too, their source paths left
    out: BLAKE2b (16 bytes, hex) of the season's JSON without them. Equal records give an
    equal digest wherever they were read from; any change to them changes it. (The build
    registers :attr:`Catalogue.digests` as the seasons' fingerprints in its evaluator's
    keys: famfeeds.build.pipeline.fingerprints.)"""
    dumped = season.model_dump_json(exclude=SOURCE_FREE)
    return hashlib.blake2b(dumped.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
