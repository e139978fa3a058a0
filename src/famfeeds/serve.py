"""A preview server: build, serve the output over HTTP, rebuild when the content changes.

Feeds and calendars are served with the content types readers and calendar apps
expect, with ETag and Last-Modified so that polling clients get 304s. HTML pages get a
small script that reloads them after a good rebuild; it exists only in responses of
this server, never in the built files. A rebuild that fails keeps the last good output
and prints the error.
"""

from __future__ import annotations

import hashlib
import mimetypes
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from famfeeds.errors import FamfeedsError
from famfeeds.render.outputs import media_type
from famfeeds.writer import MANIFEST

BUILD_ENDPOINT = "/__famfeeds/build"
RELOAD_SCRIPT = """<script>
(function () {{
  var seen = "{build}";
  setInterval(function () {{
    fetch("{endpoint}", {{cache: "no-store"}}).then(function (r) {{ return r.text(); }})
      .then(function (now) {{ if (now !== seen) location.reload(); }}).catch(function () {{}});
  }}, 1000);
}})();
</script>
"""


def content_type(path: Path) -> str:
    """The Content-Type a client expects for a built file."""
    return media_type(path.name) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@dataclass
class Preview:
    """The served folder and the number of the last good build."""

    root: Path
    rebuild: Callable[[], None]
    build: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> bool:
        """Rebuild; True if it succeeded. A failure is printed and the old output stays."""
        try:
            self.rebuild()
        except FamfeedsError as exc:
            print(
                f"Rebuild failed; still serving the last good build.\n{exc.format_message()}",
                file=sys.stderr,
                flush=True,
            )
            return False
        except Exception:  # a bug must not take the preview down
            print(
                "Rebuild failed unexpectedly; still serving the last good build.",
                file=sys.stderr,
                flush=True,
            )
            traceback.print_exc()
            return False
        with self.lock:
            self.build += 1
        print(f"Rebuilt (build {self.build}).", flush=True)
        return True


class Handler(BaseHTTPRequestHandler):
    """Serves the preview's folder; GET and HEAD only."""

    server: PreviewServer
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self.respond(head=True)

    def do_GET(self) -> None:
        self.respond(head=False)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the preview prints builds, not every request."""

    def respond(self, head: bool) -> None:
        preview = self.server.preview
        path = unquote(urlsplit(self.path).path)
        if path == BUILD_ENDPOINT:
            self.send(
                HTTPStatus.OK,
                str(preview.build).encode(),
                "text/plain",
                head,
                extra={"Cache-Control": "no-store"},
            )
            return
        target = self.locate(preview.root, path)
        if target is None:
            self.send(HTTPStatus.NOT_FOUND, b"Not found\n", "text/plain; charset=utf-8", head)
            return
        if target.is_dir():
            self.send(
                HTTPStatus.MOVED_PERMANENTLY,
                b"",
                "text/plain",
                head,
                extra={"Location": path + "/"},
            )
            return
        try:
            body = target.read_bytes()
            modified = int(target.stat().st_mtime)
        except OSError:  # swapped away by a rebuild between two calls: try once more
            self.send(
                HTTPStatus.SERVICE_UNAVAILABLE,
                b"Rebuilding\n",
                "text/plain",
                head,
                extra={"Retry-After": "1"},
            )
            return
        kind = content_type(target)
        if kind.startswith("text/html"):
            script = RELOAD_SCRIPT.format(build=preview.build, endpoint=BUILD_ENDPOINT)
            body = body.replace(b"</body>", script.encode() + b"</body>", 1)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(modified, usegmt=True),
            "Cache-Control": "no-cache",
        }
        if self.not_modified(etag, modified):
            self.send(HTTPStatus.NOT_MODIFIED, b"", None, True, extra=headers)
            return
        self.send(HTTPStatus.OK, body, kind, head, extra=headers)

    @staticmethod
    def locate(root: Path, path: str) -> Path | None:
        """The file a URL path names inside ``root``, or None."""
        relative = path.lstrip("/")
        candidate = (root / relative).resolve()
        base = root.resolve()
        if not candidate.is_relative_to(base) or candidate.name == MANIFEST:
            return None
        if path.endswith("/"):
            candidate = candidate / "index.html"
        return candidate if candidate.exists() else None

    def not_modified(self, etag: str, modified: int) -> bool:
        """Whether a conditional request matches the current file."""
        match = self.headers.get("If-None-Match")
        if match is not None:
            tags = {t.strip().removeprefix("W/") for t in match.split(",")}
            return etag in tags or "*" in tags
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return modified <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def send(
        self,
        status: HTTPStatus,
        body: bytes,
        kind: str | None,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != HTTPStatus.NOT_MODIFIED:
            self.wfile.write(body)


class PreviewServer(ThreadingHTTPServer):
    """An HTTP server that knows its preview."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], preview: Preview) -> None:
        super().__init__(address, Handler)
        self.preview = preview


def watch(paths: list[Path], preview: Preview, stop: threading.Event) -> None:
    """Rebuild whenever a watched file changes, until ``stop`` is set."""
    from watchfiles import watch as watch_changes

    existing = [p for p in paths if p.exists()]
    for _changes in watch_changes(*existing, stop_event=stop, debounce=300, step=50):
        preview.refresh()
