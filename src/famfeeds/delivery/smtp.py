"""SMTP connections: URL parsing, TLS, AUTH, and a transaction that reports its last step."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from famfeeds.errors import FamfeedsError

PASSWORD_ENV = "FAMFEEDS_SMTP_PASSWORD"
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_LEADING_DOT = re.compile(rb"(?m)^\.")


class DeliveryError(Exception):
    """A recipient's delivery failed; ``permanent`` for 5xx replies."""

    def __init__(self, code: int, reply: str, permanent: bool) -> None:
        super().__init__(f"{code} {reply}".strip())
        self.code = code
        self.reply = reply
        self.permanent = permanent


def _failure(code: int, reply: bytes | str) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return DeliveryError(code, " ".join(text.split()), permanent=500 <= code < 600)


@dataclass(frozen=True)
class SmtpTarget:
    """Where to send: smtp://[user@]host[:port] or smtps://..., with options as a query.

    ``?starttls=required`` refuses a server that does not offer STARTTLS (by default
    it is used when offered); ``?verify=false`` accepts any certificate (a test relay).
    The password never comes from the URL: it is read from FAMFEEDS_SMTP_PASSWORD.
    """

    scheme: str
    host: str
    port: int
    user: str | None = None
    starttls: str = "auto"
    verify: bool = True

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Parse and check an SMTP URL."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise FamfeedsError(
                f"SMTP URL {cls.redact(url)!r} not understood: write smtp://host:587 or "
                "smtps://user@host:465"
            )
        if parts.password:
            raise FamfeedsError(
                f"the SMTP URL must not carry a password: set {PASSWORD_ENV} instead"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "verify"}
        if unknown:
            raise FamfeedsError(f"unknown SMTP URL option(s): {', '.join(sorted(unknown))}")
        starttls = query.get("starttls", "auto")
        if starttls not in ("auto", "required"):
            raise FamfeedsError("starttls= takes 'auto' or 'required'")
        verify = query.get("verify", "true").lower() not in ("false", "no", "0")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise FamfeedsError(f"SMTP URL {cls.redact(url)!r}: the port is not a number") from None
        user = unquote(parts.username) if parts.username else None
        return cls(parts.scheme, parts.hostname, port, user, starttls, verify)

    @staticmethod
    def redact(url: str) -> str:
        """A URL with any password removed, for messages."""
        return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


class Connection:
    """One SMTP session, reused for many messages."""

    def __init__(self, target: SmtpTarget, password: str | None, timeout: float = 60) -> None:
        self.target = target
        self.password = password
        self.timeout = timeout
        self.smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.target.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open(self) -> None:
        """Connect, secure the session, and log in. Raises FamfeedsError on a setup error
        that retrying will not mend (TLS refused, wrong password)."""
        t = self.target
        try:
            if t.scheme == "smtps":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    t.host, t.port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
            self.smtp = smtp
            # The final "." goes out on its own, after the ledger records the step: without
            # NODELAY, Nagle's algorithm holds it back until the body is acknowledged.
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if t.scheme == "smtp" and smtp.has_extn("starttls"):
                smtp.starttls(context=self._context())
                smtp.ehlo()
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise FamfeedsError(f"cannot open a session with {t}: {exc}") from None
        if (
            t.scheme == "smtp"
            and not isinstance(smtp.sock, ssl.SSLSocket)
            and t.starttls == "required"
        ):
            self.close()
            raise FamfeedsError(f"{t} does not offer STARTTLS, and the URL requires it")
        if t.user:
            self._login(smtp)

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
                f"{t} refused the login for {t.user} ({exc.smtp_code}); check {PASSWORD_ENV}"
            ) from None
        except smtplib.SMTPNotSupportedError:
            self.close()
            raise FamfeedsError(f"{t} does not offer AUTH; remove the user from the URL") from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise FamfeedsError(f"{t}: the login failed ({type(exc).__name__})") from None

    def deliver(
        self, sender: str, recipient: str, message: bytes, committing: Callable[[], None]
    ) -> str:
        """Send one message; ``committing`` runs just before the final "." of DATA.

        Returns the server's 250 reply. Raises DeliveryError: permanent for 5xx,
        transient for 4xx and for a dropped connection (the connection is then closed).
        """
        if self.smtp is None:
            self.open()
        smtp = self.smtp
        assert smtp is not None
        try:
            code, reply = smtp.mail(sender)
            if code != 250:
                self._reset(code)
                raise _failure(code, reply)
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._reset(code)
                raise _failure(code, reply)
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                self._reset(code)
                raise _failure(code, reply)
            body = _LEADING_DOT.sub(b"..", message)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            smtp.send(body)
            committing()
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise DeliveryError(0, f"connection lost: {exc}", permanent=False) from None
        if code == 421:
            self.close()
        if code != 250:
            raise _failure(code, reply)
        return reply.decode("utf-8", "replace")

    def _reset(self, code: int) -> None:
        """Abandon a refused transaction: RSET, or hang up when the server is closing (421)."""
        if code == 421:
            self.close()
            return
        try:
            assert self.smtp is not None
            if self.smtp.rset()[0] == 421:
                self.close()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        """End the session politely if possible."""
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
