"""SMTP sessions: URL parsing, TLS, AUTH, and one transaction that knows where it failed.

Rules:

- **Where a failure happens decides what it means.** Before the final "." of DATA the
  server has nothing to deliver: a refusal or a lost connection is a :class:`DeliveryError`
  (permanent for 5xx, else transient) and the recipient may be tried again. After the "."
  went out, anything but a readable reply (a timeout, a reset, EOF, garbage) is
  :class:`Uncertain`: the server may have the message, so it must not be sent again silently.
  The wait for that reply is ``data_timeout`` (10 minutes, as RFC 5321 §4.5.3.2 suggests).
- **Reply classes (RFC 5321 §4.2):** every 2yz accepts (MAIL, RCPT, the final "."; a
  ``251`` after the "." is a delivery, never a deferral), 4yz is transient, 5yz permanent.
  Replies are read strictly (:func:`read_reply`): three digits, then a space, "-" or the
  end of the line, the same code on every line. Anything else after the "." (1yz, 3yz,
  6yz, a garbled or self-contradicting reply) is :class:`Uncertain`; before it, it is a
  transient failure and the session is closed.
- **A session that cannot be opened** (connection refused, ``421`` or a hang-up at the
  greeting, a timeout) raises :class:`ConnectTrouble`: transient for that connection only;
  no recipient was touched. Errors that retrying will not mend (TLS, certificates, a refused
  login, a missing STARTTLS) raise FamfeedsError.
- **No password in clear:** AUTH happens only over TLS (smtps, or STARTTLS), unless the URL
  says ``?insecure-auth=true`` (meant for a relay on the same machine). Messages never show
  a password: a URL is parsed and shown as scheme, user, host and port only.
- **Never a command inside DATA:** while a message is being written the session is only
  ever closed (the server then discards the incomplete message), never sent QUIT or RSET.
- **Internationalised addresses:** domains go on the wire in their ASCII (IDNA) form; an
  address whose local part is not ASCII needs the server's SMTPUTF8 extension, and without
  it that recipient fails with a clear reason (the session stays usable).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from famfeeds.errors import FamfeedsError
from famfeeds.render.message import ascii_domain

PASSWORD_ENV = "FAMFEEDS_SMTP_PASSWORD"
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
COMMAND_TIMEOUT = 60.0
"""Seconds to wait for the greeting and each command's reply."""
DATA_TIMEOUT = 600.0
"""Seconds to wait for the reply to the final "." (RFC 5321 §4.5.3.2: 10 minutes)."""
URL_OPTIONS = ("starttls", "verify", "insecure-auth")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FORM = "smtp://[user@]host[:port] or smtps://[user@]host[:465]"
_REPLY_LINE = re.compile(rb"(\d{3})(?:([ -])(.*))?", re.DOTALL)
_MAXLINE = 8192
"""The longest reply line read (smtplib's limit)."""


def _clean(text: str) -> str:
    """Text from a server or a URL, safe to print: one line, control characters escaped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(text.split()))


class DeliveryError(Exception):
    """One recipient's transaction was refused or cut off before the final "." of DATA.

    ``permanent`` for a 5xx reply or a recipient that cannot be sent to at all; otherwise
    transient (4xx, a lost connection): trying again later may work. ``code`` is 0 when the
    server did not answer with one. ``step`` is where it happened: ``MAIL``, ``RCPT``,
    ``DATA`` (the command), ``DOT`` (the answer to the final "."), or '' (no command yet).
    """

    def __init__(self, code: int, reply: str, permanent: bool, step: str = "") -> None:
        super().__init__(f"{code} {reply}".strip() if code else reply)
        self.code = code
        self.reply = reply
        self.permanent = permanent
        self.step = step

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code of the reply (``5.1.1``), if it has one."""
        if not self.code:
            return None
        match = _ENHANCED.search(self.reply)
        return ".".join(match.groups()) if match else None


class Uncertain(Exception):
    """The final "." of DATA went out and no readable reply came back: the server may have
    the message. The recipient stays *committing*; it must not be sent again silently."""


class ConnectTrouble(Exception):
    """A session could not be opened (refused, 421 or a hang-up at the greeting, a timeout):
    transient for this connection; no recipient was touched."""


def _failure(code: int, reply: bytes | str, step: str) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return DeliveryError(code, _clean(text), 500 <= code < 600, step)


def read_reply(smtp: smtplib.SMTP) -> tuple[int, str]:
    """Read one reply strictly (RFC 5321 §4.2): each line is three digits, then a space,
    "-" (more lines follow) or the end of the line, and every line has the same code.
    Returns the code and the text (lines joined by newlines), or code -1 for a garbled
    reply (nothing more is read: the caller closes the session). Raises OSError or
    smtplib.SMTPException when no reply can be read (EOF, a timeout, a line too long)."""
    if smtp.file is None:
        assert smtp.sock is not None
        smtp.file = smtp.sock.makefile("rb")
    texts: list[str] = []
    code: int | None = None
    while True:
        line = smtp.file.readline(_MAXLINE + 1)
        if not line:
            smtp.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > _MAXLINE:
            smtp.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        raw = line.rstrip(b"\r\n")
        match = _REPLY_LINE.fullmatch(raw)
        if match is None or (code is not None and int(match.group(1)) != code):
            return -1, raw.decode("utf-8", "replace")
        code = int(match.group(1))
        texts.append((match.group(3) or b"").decode("utf-8", "replace"))
        if match.group(2) != b"-":
            return code, "\n".join(texts)


def envelope_address(address: str) -> tuple[str, bool]:
    """The address as MAIL FROM / RCPT TO carry it (the domain in IDNA form), and whether
    it needs SMTPUTF8 (a local part that is not ASCII)."""
    local, _, domain = address.rpartition("@")
    try:
        domain = ascii_domain(domain)
    except UnicodeError as exc:
        raise DeliveryError(
            0, f"the domain of {_clean(address)} has no ASCII (IDNA) form: {exc}", True
        ) from None
    return f"{local}@{domain}", not local.isascii()


@dataclass(frozen=True)
class SmtpTarget:
    """Where to send: ``smtp://[user@]host[:port]`` or ``smtps://...``, options as a query.

    ``?starttls=required`` refuses a server that does not offer STARTTLS (by default it is
    used when offered); ``?verify=false`` accepts any certificate (a test relay);
    ``?insecure-auth=true`` allows logging in without TLS (a relay on this machine). The
    password never comes from the URL: it is read from FAMFEEDS_SMTP_PASSWORD.
    """

    scheme: str
    host: str
    port: int
    user: str | None = None
    starttls: str = "auto"
    verify: bool = True
    insecure_auth: bool = False

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Parse and check an SMTP URL; every error shows the URL without any password."""
        shown = cls.redact(url)

        def bad(problem: str) -> FamfeedsError:
            return FamfeedsError(
                f"SMTP URL {shown}: {problem} (write {_FORM}; the password comes from "
                f"{PASSWORD_ENV})"
            )

        try:
            parts = urlsplit(url.strip())
        except ValueError:
            raise bad("not a URL") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise bad("the scheme must be smtp:// or smtps://")
        if not parts.netloc or not parts.hostname:
            raise bad("no server name after //")
        userinfo = url.partition("://")[2].rpartition("@")[0]
        if parts.password is not None or ":" in userinfo:
            raise bad(f"the URL must not carry a password: set {PASSWORD_ENV} instead")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise bad("the port must be a number from 1 to 65535") from None
        if parts.path not in ("", "/") or parts.fragment:
            raise bad("the URL has a path or #fragment, which SMTP does not use")
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise bad("the ?options are not name=value pairs") from None
        query = dict(pairs)
        unknown = sorted(set(query) - set(URL_OPTIONS))
        if unknown:
            names = ", ".join(_clean(n)[:40] for n in unknown)
            raise bad(f"unknown option(s) {names} (known: {', '.join(URL_OPTIONS)})")
        starttls = query.get("starttls", "auto")
        if starttls not in ("auto", "required"):
            raise bad("starttls= takes 'auto' or 'required'")
        verify = _flag(query.get("verify", "true"))
        insecure = _flag(query.get("insecure-auth", "false"))
        if verify is None or insecure is None:
            raise bad("verify= and insecure-auth= take true or false")
        user = unquote(parts.username) if parts.username else None
        if user is not None and (not user.isprintable() or len(user) > 256):
            raise bad("the user name must be printable text of at most 256 characters")
        host = parts.hostname
        return cls(scheme, host, port, user, starttls, verify, insecure)

    @staticmethod
    def redact(url: str) -> str:
        """A URL as messages may show it: scheme, user, host and port, nothing else (never a
        password, a path or a query, however malformed the URL: the user is what precedes
        the first ":" of everything before the last "@")."""
        scheme, sep, rest = url.strip().partition("://")
        if not sep:
            return "(not shown)"
        scheme = scheme.lower() if scheme.lower() in DEFAULT_PORTS else "?"
        userinfo, _, hostport = rest.rpartition("@")
        user = unquote(userinfo.partition(":")[0])
        hostport = re.split(r"[/?#]", hostport, maxsplit=1)[0]
        if hostport.startswith("["):
            host, _, port = hostport[1:].partition("]")
            host, port = f"[{host}]", port.removeprefix(":")
        else:
            host, _, port = hostport.partition(":")
        port = f":{port}" if port.isdigit() and len(port) <= 5 else ""
        shown = f"{scheme}://{f'{user}@' if user else ''}{host}{port}"
        return _clean(shown)[:200]

    @property
    def encrypted_from_start(self) -> bool:
        """True for smtps (TLS before the greeting)."""
        return self.scheme == "smtps"

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return _clean(f"{self.scheme}://{user}{host}:{self.port}")


def _flag(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    return None


def _why(exc: BaseException) -> str:
    """The human part of a socket, ssl or smtplib exception."""
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return _clean(f"{exc.smtp_code} {text}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return _clean(exc.strerror)
    return _clean(str(exc)) or type(exc).__name__


class Connection:
    """One SMTP session, reused for many messages. Not thread-safe: one per worker."""

    def __init__(
        self,
        target: SmtpTarget,
        password: str | None,
        timeout: float = COMMAND_TIMEOUT,
        data_timeout: float = DATA_TIMEOUT,
    ) -> None:
        self.target = target
        self.password = password
        self.timeout = timeout
        self.data_timeout = data_timeout
        self.smtp: smtplib.SMTP | None = None
        self.in_data = False
        """True from the DATA command's 354 until the final "." was written."""

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.target.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _tls_error(self, exc: ssl.SSLError, during: str) -> FamfeedsError:
        t = self.target
        if isinstance(exc, ssl.SSLCertVerificationError):
            return FamfeedsError(
                f"{t}: the server's certificate was not accepted during {during} "
                f"({_clean(exc.verify_message or str(exc))}); fix the server's certificate, "
                "or add ?verify=false to the URL for a test relay"
            )
        reason = exc.reason or str(exc)
        if "WRONG_VERSION_NUMBER" in str(reason) or "record layer" in str(reason):
            return FamfeedsError(
                f"{t} did not answer in TLS: it looks like a plain SMTP port. Use "
                f"smtp://{t.host}:{t.port} (STARTTLS when offered), or the server's TLS port "
                "with smtps:// (usually 465)"
            )
        return FamfeedsError(f"{t}: TLS failed during {during} ({_clean(str(reason))})")

    def open(self) -> None:
        """Connect, secure the session, and log in.

        Raises ConnectTrouble when this connection could not be opened but another may
        (refused, 421 at the greeting, closed, timed out), FamfeedsError when retrying will
        not mend it (TLS, certificate, STARTTLS required but missing, login refused).
        """
        t = self.target
        try:
            if t.encrypted_from_start:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    t.host, t.port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        except ssl.SSLError as exc:
            raise self._tls_error(exc, "the connection") from None
        except socket.gaierror as exc:
            raise FamfeedsError(f"{t}: server name not found ({_why(exc)})") from None
        except smtplib.SMTPConnectError as exc:
            raise ConnectTrouble(f"{t} refused the session at its greeting: {_why(exc)}") from None
        except ConnectionRefusedError:
            raise ConnectTrouble(
                f"{t}: connection refused (is an SMTP server listening on port {t.port}?)"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectTrouble(f"{t}: cannot open a session ({_why(exc)})") from None
        self.smtp = smtp
        # The final "." goes out on its own, after the ledger records the step: without
        # NODELAY, Nagle's algorithm holds it back until the body is acknowledged.
        if smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._hello(smtp)
            if not t.encrypted_from_start and smtp.has_extn("starttls"):
                smtp.starttls(context=self._context())
                self._hello(smtp)
        except ssl.SSLError as exc:
            self.abort()
            raise self._tls_error(exc, "STARTTLS") from None
        except smtplib.SMTPResponseException as exc:
            self.abort()
            raise ConnectTrouble(f"{t} refused the session: {_why(exc)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self.abort()
            raise ConnectTrouble(
                f"{t}: the session was cut off at its start ({_why(exc)})"
            ) from None
        encrypted = isinstance(smtp.sock, ssl.SSLSocket)
        if not encrypted and t.starttls == "required":
            self.close()
            raise FamfeedsError(f"{t} does not offer STARTTLS, and the URL requires it")
        if t.user:
            if not encrypted and not t.insecure_auth:
                self.close()
                raise FamfeedsError(
                    f"{t} offers no STARTTLS, so famfeeds did not log in: the password would "
                    "travel unencrypted. Use smtps://, or a server that offers STARTTLS; for a "
                    "relay on this machine (loopback) add ?insecure-auth=true to the URL"
                )
            self._login(smtp)

    def _hello(self, smtp: smtplib.SMTP) -> None:
        code, reply = smtp.ehlo()
        if code == 421:
            raise smtplib.SMTPResponseException(code, reply)
        if code != 250:
            code, reply = smtp.helo()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)

    def _login(self, smtp: smtplib.SMTP) -> None:
        """AUTH with one mechanism (PLAIN, else LOGIN, else what smtplib picks): a refused
        password is reported at once instead of being tried against every mechanism."""
        t = self.target
        assert t.user is not None
        smtp.user, smtp.password = t.user, self.password or ""
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        try:
            for mechanism in ("PLAIN", "LOGIN"):
                if mechanism in offered:
                    smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
                    return
            smtp.login(t.user, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise FamfeedsError(
                f"{t} refused the login for {_clean(t.user)} ({exc.smtp_code}); check "
                f"{PASSWORD_ENV}"
            ) from None
        except smtplib.SMTPNotSupportedError:
            self.close()
            raise FamfeedsError(f"{t} does not offer AUTH; remove the user from the URL") from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise FamfeedsError(f"{t}: the login failed ({type(exc).__name__})") from None

    def _command(self, line: str) -> tuple[int, str]:
        """Send one command line and read its reply (code -1 when it cannot be read)."""
        assert self.smtp is not None
        self.smtp.send(f"{line}\r\n".encode())
        return read_reply(self.smtp)

    def deliver(
        self, sender: str, recipient: str, message: bytes, committing: Callable[[], None]
    ) -> str:
        """Send one message; ``committing`` runs just before the final "." of DATA.

        Returns the server's 2yz reply to the final ".". Raises DeliveryError (before the
        "."), Uncertain (after it: no reply, or one that is neither 2yz nor 4yz/5yz),
        ConnectTrouble or FamfeedsError (the session could not be opened). MAIL and RCPT
        accept any 2yz. An exception from ``committing`` closes the session without the "."
        (the server discards the message) and propagates.
        """
        if self.smtp is None:
            self.open()
        smtp = self.smtp
        assert smtp is not None
        envelope_sender, sender_utf8 = envelope_address(sender)
        envelope_recipient, recipient_utf8 = envelope_address(recipient)
        options = ""
        if sender_utf8 or recipient_utf8:
            if not smtp.has_extn("smtputf8"):
                which = "sender" if sender_utf8 else "recipient"
                raise DeliveryError(
                    0,
                    f"the {which} address {_clean(recipient if recipient_utf8 else sender)} "
                    "has non-ASCII characters before the @, which needs a server that offers "
                    f"SMTPUTF8, and {self.target} does not",
                    permanent=True,
                )
            options = " SMTPUTF8" + (" BODY=8BITMIME" if smtp.has_extn("8bitmime") else "")
        try:
            code, reply = self._command(f"MAIL FROM:<{envelope_sender}>{options}")
            if not 200 <= code < 300:
                raise self._refused(code, reply, "MAIL")
            code, reply = self._command(f"RCPT TO:<{envelope_recipient}>")
            if not 200 <= code < 300:
                raise self._refused(code, reply, "RCPT")
            code, reply = self._command("DATA")
            if code != 354:
                raise self._refused(code, reply, "DATA")
            self.in_data = True
            body = _LEADING_DOT.sub(b"..", message)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            smtp.send(body)
        except (smtplib.SMTPException, OSError) as exc:
            self.abort()
            raise DeliveryError(
                0, f"connection lost before the message was complete: {_why(exc)}", False
            ) from None
        try:
            committing()
        except BaseException:
            self.abort()
            raise
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(self.data_timeout)
            smtp.send(b".\r\n")
            self.in_data = False
            code, reply = read_reply(smtp)
            if smtp.sock is not None:
                smtp.sock.settimeout(self.timeout)
        except (smtplib.SMTPException, OSError) as exc:
            self.abort()
            raise Uncertain(
                f"no answer after the message was handed over ({_why(exc)}); the server may have it"
            ) from None
        if 200 <= code < 300:
            return _clean(f"{code} {reply}")
        if not 400 <= code < 600:
            self.abort()
            answer = _clean(f"{code} {reply}" if code > 0 else reply)[:200]
            raise Uncertain(
                f"an unreadable answer after the message was handed over ({answer!r}): neither "
                "success (2yz) nor failure (4yz, 5yz); the server may have it"
            )
        if code == 421:
            self.abort()
        raise _failure(code, reply, "DOT")

    def _refused(self, code: int, reply: str, step: str) -> DeliveryError:
        """A refusal before DATA: RSET for the next message, or hang up when the server is
        closing (421) or its answer is neither 4yz nor 5yz (unreadable, or a reply that
        makes no sense here: transient, nothing was handed over)."""
        if code == 421 or not 400 <= code < 600:
            self.abort()
            if code != 421:
                answer = f"{code} {reply}" if code > 0 else reply
                why = f"an unreadable answer: {_clean(answer)[:200]!r}"
                return DeliveryError(0, why, False, step)
        else:
            try:
                if self._command("RSET")[0] != 250:
                    self.abort()
            except (smtplib.SMTPException, OSError):
                self.abort()
        return _failure(code, reply, step)

    def abort(self) -> None:
        """Close the socket without another word (never a command inside an open DATA)."""
        smtp, self.smtp = self.smtp, None
        self.in_data = False
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        """End the session: QUIT politely, unless a message is open (then just hang up)."""
        if self.in_data:
            self.abort()
            return
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(min(self.timeout, 10.0))
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
