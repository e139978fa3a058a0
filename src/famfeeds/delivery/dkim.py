"""DKIM signatures on every message famfeeds sends (RFC 6376; Ed25519 as RFC 8463 adds).

Rules:

- **The keys**: show.toml's ``[newsletter] dkim`` is one table or a list of them (an RSA
  key beside an Ed25519 one, as RFC 8463 suggests: many receivers do not verify Ed25519);
  each message gets one signature per key, RSA on top. Each ``key`` is a PEM private key (PKCS#1 or
  PKCS#8; for Ed25519 also dkimpy's base64 seed file), RSA of at least
  :data:`MIN_RSA_BITS` bits or Ed25519, in a file only its owner may read (mode 0600 or
  0400). A relative path is relative to the project folder, the one holding ``content/``.
  Any other key, mode or content is refused with the path and the fix; the key itself is
  never printed, and no message is sent until it has signed and verified a probe message.
- **What is signed:** the body and :data:`SIGNED` (From, To, Subject, Date, Message-ID,
  List-Id, List-Unsubscribe, List-Unsubscribe-Post, Reply-To, Cc, Sender, In-Reply-To,
  References, MIME-Version, Content-Type: each always, absent ones as absent), plus
  :data:`SIGNED_WHEN_PRESENT`;
  each is listed in ``h=`` once more than the message has it, so a copy with one added
  (a second List-Unsubscribe, say) fails verification. Canonicalisation relaxed/relaxed,
  no ``l=`` (nothing may be appended to a signed body).
- **When:** per message, after personalisation, as the last step before the bytes go to
  the relay; the signature is prepended as a header folded with CRLF and nothing after it
  changes a byte (:mod:`famfeeds.delivery.smtp` only dot-stuffs, which the server undoes).
- **Alignment:** the ``d=`` domain is the From domain or a parent of it (checked when
  show.toml is read, see :class:`famfeeds.records.models.Newsletter`), so DMARC counts it.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from famfeeds.errors import FamfeedsError, display_path

if TYPE_CHECKING:
    from famfeeds.records.models import Dkim, Newsletter

KeyType = Literal["rsa", "ed25519"]
MIN_RSA_BITS = 2048
"""The smallest RSA key accepted: RFC 8301 allows 1024, the providers expect 2048."""
NEW_RSA_BITS = 2048
MAX_KEY_FILE = 64 * 1024
"""A key file larger than this is not a key (a 16384-bit RSA PEM is about 12 KB)."""
SIGNED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Reply-To",
    "Cc",
    "Sender",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
)
"""Signed always (absent ones as absent, so none can be added): the one-click headers
count only when signed, and the others change whom a reply goes to or how the body reads."""
SIGNED_WHEN_PRESENT = (
    "Content-Transfer-Encoding",
    "Content-Language",
)
"""Signed when the message has them: what decides how the body reads."""
ALGORITHMS: dict[KeyType, bytes] = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
TXT_STRING = 255
"""The longest character-string in a TXT record (RFC 1035); longer values are split."""
PROBE = (
    b"From: probe@{domain}\r\nTo: probe@{domain}\r\nSubject: probe\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <probe@{domain}>\r\n\r\nprobe\r\n"
)


class DkimError(FamfeedsError):
    """The DKIM key cannot be used; the message names the file and the fix, never the key."""


@dataclass(frozen=True)
class Key:
    """One loaded key and where its public half lives: signs one message at a time."""

    selector: str
    domain: str
    key_type: KeyType
    bits: int
    """The RSA modulus size (256 for Ed25519)."""
    private: bytes = field(repr=False)
    """The key as dkimpy takes it: PEM for RSA, the base64 seed for Ed25519."""
    public: str
    """The public key as the DNS record's ``p=`` carries it (base64)."""

    @property
    def record_name(self) -> str:
        """Where the public key is published: ``selector._domainkey.domain``."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record(self) -> str:
        """The TXT record's value: ``v=DKIM1; k=rsa; p=...``."""
        return f"v=DKIM1; k={self.key_type}; p={self.public}"

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header line (folded, CRLF-terminated) for ``message``, a
        complete message with CRLF line ends."""
        import dkim

        names = [name.lower().encode() for name in _header_names(message)]
        include: list[bytes] = []
        for name in SIGNED + SIGNED_WHEN_PRESENT:
            lowered = name.lower().encode()
            count = names.count(lowered)
            if count or name in SIGNED:
                include += [lowered] * (count + 1)  # one more: none may be added
        try:
            header = dkim.sign(
                message,
                self.selector.encode(),
                self.domain.encode(),
                self.private,
                canonicalize=(b"relaxed", b"relaxed"),
                signature_algorithm=ALGORITHMS[self.key_type],
                include_headers=include,
                linesep=b"\r\n",
            )
        except dkim.DKIMException as exc:
            raise DkimError(f"DKIM signing failed ({type(exc).__name__}: {exc})") from None
        return bytes(header)

    def sign(self, message: bytes) -> bytes:
        """``message`` with its DKIM-Signature header first."""
        return self.signature(message) + message

    def check_record(self, record: str) -> str:
        """'' when a small message signed with this key verifies with dkimpy against
        ``record``, a TXT value as published at :attr:`record_name` (no DNS asked), else
        why not, in dkimpy's words."""
        import dkim

        signed = self.sign(PROBE.replace(b"{domain}", self.domain.encode()))
        value = record.encode("utf-8", "replace")
        name = self.record_name.encode()

        def lookup(asked: bytes, timeout: float = 5) -> bytes | None:
            return value if asked.rstrip(b".").lower() == name else None

        try:
            verified = dkim.DKIM(signed, minkey=1024).verify(dnsfunc=lookup)
        except dkim.DKIMException as exc:
            return f"{exc}" or type(exc).__name__
        return "" if verified else "the signature does not verify"

    def probe(self) -> None:
        """Sign a small message and verify it with the public key (no DNS): proof that
        dkimpy can use the key. Raises DkimError."""
        if self.check_record(self.record):
            raise DkimError(
                f"the DKIM key for {self.record_name} signed a test message that its own "
                "public key does not verify; make a new key with famfeeds dkim new"
            )


@dataclass(frozen=True)
class Signer:
    """Every key of show.toml's ``dkim`` setting (one table or a list): each message gets
    one signature per key, the RSA ones on top, so a verifier that checks only the first
    DKIM-Signature (many do not know Ed25519, RFC 8463) sees an RSA one."""

    keys: tuple[Key, ...]
    """RSA keys first, then Ed25519, each group in the setting's order."""

    @classmethod
    def of(cls, keys: list[Key]) -> Signer:
        """The signer of ``keys``, ordered RSA first."""
        return cls(tuple(sorted(keys, key=lambda key: key.key_type != "rsa")))

    @property
    def primary(self) -> Key:
        """The key whose signature comes first (RSA when there is one)."""
        return self.keys[0]

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header lines for ``message``, topmost first: the last key
        signs first, and each key after it signs the message with those lines on (none of
        them is in another's ``h=``, so each verifies on its own)."""
        lines = b""
        for key in reversed(self.keys):
            lines = key.signature(lines + message) + lines
        return lines

    def sign(self, message: bytes) -> bytes:
        """``message`` with its DKIM-Signature headers first."""
        return self.signature(message) + message

    def describe(self) -> str:
        """The keys in words, e.g. ``example.org (selector ff2026, rsa 2048 bits; ...)``."""
        return "; ".join(
            f"{key.domain} (selector {key.selector}, {key.key_type} {key.bits} bits; DNS "
            f"record {key.record_name})"
            for key in self.keys
        )


def _header_names(message: bytes) -> list[str]:
    """The names of the header fields of ``message``, in order (folded lines skipped)."""
    head = message.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t") and b":" in line:
            names.append(line.split(b":", 1)[0].strip().decode("ascii", "replace"))
    return names


def key_path(setting: Dkim, root: Path) -> Path:
    """The key file of the setting: absolute, or relative to the project folder ``root``."""
    path = Path(setting.key).expanduser()
    return path if path.is_absolute() else root / path


def load_signer(setting: Dkim, root: Path) -> Key:
    """The key of one of show.toml's ``dkim`` tables, checked, loaded and probed.

    Raises DkimError (a FamfeedsError) naming the file and the fix when the file is
    missing, unreadable, readable by others, not a private key, or a key too weak."""
    path = key_path(setting, root)
    shown = display_path(path)
    where = "show.toml's [newsletter] dkim.key"
    command = f"famfeeds dkim new --selector {setting.selector} --domain {setting.domain}"
    make = f"{command} makes one and prints its DNS record"
    try:
        status = path.stat()
    except FileNotFoundError:
        raise DkimError(
            f"the DKIM key {shown} does not exist ({where} is read relative to the project "
            f"folder {root}); fix the path, or {make}"
        ) from None
    except OSError as exc:
        raise DkimError(f"cannot read the DKIM key {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(status.st_mode):
        raise DkimError(f"the DKIM key {shown} ({where}) is not a file")
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        raise DkimError(
            f"the DKIM key {shown} can be read by others (mode {mode:04o}); a private key "
            f"must be readable by its owner only. Run: chmod 600 {shown}"
        )
    if status.st_size > MAX_KEY_FILE:
        raise DkimError(f"the DKIM key {shown} is {status.st_size:,} bytes: not a key file")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise DkimError(
            f"cannot read the DKIM key {shown}: permission denied. Run famfeeds as the user "
            f"who owns it, or give that user the file (chown) and keep it mode 0600"
        ) from None
    except OSError as exc:
        raise DkimError(f"cannot read the DKIM key {shown}: {exc.strerror or exc}") from None
    key_type, bits, private, public = _parse_key(data, shown, command)
    key = Key(setting.selector, setting.domain, key_type, bits, private, public)
    key.probe()
    return key


def project_signer(newsletter: Newsletter, root: Path) -> Signer | None:
    """The signer of every key of ``newsletter``'s dkim setting (None without one); see
    load_signer."""
    if not newsletter.dkim:
        return None
    return Signer.of([load_signer(setting, root) for setting in newsletter.dkim])


def _parse_key(data: bytes, shown: str, command: str) -> tuple[KeyType, int, bytes, str]:
    """(type, bits, private key as dkimpy takes it, public key in base64) of a key file's
    bytes; DkimError for anything but RSA >= MIN_RSA_BITS or Ed25519."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    expected = (
        "expected an unencrypted PEM private key (RSA of at least "
        f"{MIN_RSA_BITS} bits, or Ed25519), as `{command}` writes"
    )
    seed = _dkimpy_seed(data)
    if seed is not None:
        key: object = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    else:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise DkimError(
                f"the DKIM key {shown} is protected by a passphrase, which famfeeds cannot "
                "type in; store it unencrypted in a mode 0600 file (openssl pkey -in OLD -out "
                "NEW), or make a new one"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise DkimError(f"the DKIM key {shown} is not a private key: {expected}") from None
    raw = serialization.Encoding.Raw
    if isinstance(key, ed25519.Ed25519PrivateKey):
        private = base64.b64encode(
            key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        )
        public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
        return "ed25519", 256, private, base64.b64encode(public).decode("ascii")
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimError(
                f"the DKIM key {shown} is a {key.key_size}-bit RSA key; receivers distrust "
                f"keys under {MIN_RSA_BITS} bits. Make a new one with {command} (and "
                "publish its record)"
            )
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "rsa", key.key_size, private, base64.b64encode(public).decode("ascii")
    kind = type(key).__name__.removeprefix("_").removesuffix("PrivateKey") or "other"
    raise DkimError(f"the DKIM key {shown} is an {kind} key: {expected}")


def _dkimpy_seed(data: bytes) -> bytes | None:
    """The 32-byte Ed25519 seed of a file as dkimpy's dknewkey writes it (one line of
    base64), or None for anything else."""
    text = data.strip()
    if len(text) != 44 or b"\n" in text:
        return None
    try:
        seed = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return seed if len(seed) == 32 else None


def new_key(key_type: KeyType) -> bytes:
    """A new private key as PEM (PKCS#8): RSA of :data:`NEW_RSA_BITS` bits, or Ed25519."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=NEW_RSA_BITS)
        if key_type == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_new_key(path: Path, key_type: KeyType) -> None:
    """Write a new key to ``path``, mode 0600, never over an existing file (the folder is
    made 0700 when missing); the file appears complete or not at all. Raises DkimError."""
    from famfeeds.build.project import private_folder

    shown = display_path(path)
    if path.exists() or path.is_symlink():
        raise DkimError(
            f"{shown} exists: famfeeds never overwrites a key (mail signed with it would no "
            "longer verify once its DNS record changes). Choose another --out, or remove it "
            "yourself"
        )
    data = new_key(key_type)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if not path.parent.exists():
            private_folder(path.parent)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)  # fails if another process made the file meanwhile
        finally:
            temporary.unlink()
    except FileExistsError:
        raise DkimError(
            f"{shown} appeared while the key was written; nothing was replaced"
        ) from None
    except OSError as exc:
        raise DkimError(f"cannot write the DKIM key {shown}: {exc.strerror or exc}") from None


def txt_strings(value: str) -> list[str]:
    """``value`` cut into TXT character-strings of at most :data:`TXT_STRING` bytes (the
    record's value is their concatenation; DKIM records are ASCII)."""
    return [value[i : i + TXT_STRING] for i in range(0, len(value), TXT_STRING)] or [""]


def zone_line(signer: Key, ttl: int = 3600) -> str:
    """The signer's record as a zone file line: ``NAME. TTL IN TXT ( "..." "..." )``."""
    strings = " ".join(f'"{part}"' for part in txt_strings(signer.record))
    return f"{signer.record_name}. {ttl} IN TXT ( {strings} )"
