"""The project's secret key: read it, or create it once.

Rules:

- The secret is 32 random bytes from :mod:`secrets` in ``.famfeeds-state/secret.key``, a
  0600 file in the 0700 state folder, written once and atomically (a temporary file linked
  into place, so two processes creating it at the same moment end up with one key). It is
  never printed and never leaves the machine.
- It keys everything a stranger must not be able to compute from an address: the hash the
  subscriber store and the ledger keep of a forgotten address (:func:`keyed_hash`), and the
  VERP tag and Message-ID digest of every message sent
  (:func:`famfeeds.render.message.recipient_digest`), which ``famfeeds bounces`` checks.
- Losing it means forgotten addresses can no longer be recognised and bounces of messages
  already sent no longer match: back it up with the store.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from famfeeds.build.project import SECRET_NAME, private_file, private_folder
from famfeeds.errors import FamfeedsError, display_path

__all__ = ["SECRET_BYTES", "SecretError", "keyed_hash", "project_secret"]

SECRET_BYTES = 32


class SecretError(FamfeedsError):
    """The secret key file is damaged or cannot be written; the message says what to do."""


def project_secret(path: Path, *, create: bool = True) -> bytes | None:
    """The secret in ``path``; a new one is written when there is none and ``create``
    (else None). Raises SecretError when the file is shorter than 32 bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
        data = secrets.token_bytes(SECRET_BYTES)
        try:
            private_folder(path.parent)
            temporary = path.with_name(f".{SECRET_NAME}.{os.getpid()}.tmp")
            private_file(temporary).write_bytes(data)
            try:
                os.link(temporary, path)
            except FileExistsError:
                data = path.read_bytes()
            finally:
                temporary.unlink()
        except OSError as exc:
            raise SecretError(
                f"cannot create the secret key {display_path(path)}: {exc.strerror or exc}"
            ) from None
    if len(data) < SECRET_BYTES:
        raise SecretError(
            f"{display_path(path)} is damaged (shorter than {SECRET_BYTES} bytes): restore it "
            "from a backup"
        )
    return data


def keyed_hash(secret: bytes, show: str, key: str) -> str:
    """The keyed hash kept of a forgotten address: HMAC-SHA256 of ``show``, NUL and the
    address's key, in hex (the subscriber store's form, so both files agree)."""
    return hmac.new(secret, show.encode() + b"\0" + key.encode(), hashlib.sha256).hexdigest()
