"""The preview server: build, serve the result over HTTP, rebuild when the content changes.

Starlette's static files on uvicorn (the stack of the subscriptions service), with these
rules:

- Content types come from the outputs table (``application/atom+xml``, ``text/calendar``,
  ...), with ETag (a digest of the bytes served) and Last-Modified, and 304 replies to
  conditional requests. HTML responses, and only they, get a small script that reloads the
  page after a good rebuild; it never reaches the built files.
- A folder asked for without its slash gets a 301 to the normalised path with the slash:
  a path on the same origin, percent-encoded (so no CR/LF can start a header) and never
  starting with ``//`` (which a browser reads as another host).
- The ``Host`` header must name this machine: ``localhost``, the ``--host`` given, or an IP
  address literal; anything else is answered 400, so a page on another site whose name
  was rebound to 127.0.0.1 cannot read the preview. (A name is what DNS rebinding needs; an
  IP literal is an origin of its own, so LAN clients of ``--host 0.0.0.0`` still work.)
- The address printed and built into the preview's links is one a browser can open: a
  wildcard ``--host`` (``0.0.0.0``, ``::``, listening on every interface) is shown and built
  as this machine's loopback address (``127.0.0.1``, ``::1``), with the machine's network
  addresses for other devices. A page asked for under another address of this machine
  (another device on the network) gets its links rewritten to that address, the one the
  browser used, so every link on it keeps working; other files keep the built address.
- uvicorn with a listen backlog of 1,024, idle connections closed after a few seconds (a
  connection that never finishes its request head included), and IPv6 (``--host ::1``).
  Odd URLs (``%00``, ``%0d%0a``, non-Latin-1) get 404 or 400, client disconnects are
  silent: no traceback.
- Rebuilds run in the watcher's thread and files are read in worker threads, so serving
  never waits for a build; the swap is atomic, so a response is the old build or the new.
  A failed rebuild prints its error and the last good build stays served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import mimetypes
import os
import resource
import socket
import stat
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from famfeeds.build.writer import MANIFEST
from famfeeds.errors import FamfeedsError
from famfeeds.render.outputs import media_type

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
BACKLOG = 1024
IDLE_TIMEOUT = 5
"""Seconds a connection may sit idle, or take to send a request's head, before it is closed."""
LOCAL_NAMES = frozenset({"localhost"})
_SAFE_PATH = "/-._~!$&'()*+,;=:@"
"""Characters left as they are in a Location path; everything else is percent-encoded."""


def content_type(path: Path | str) -> str:
    """The Content-Type a client expects for a built file."""
    name = PurePosixPath(str(path)).name
    return media_type(name) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass
class Preview:
    """The served folder and the number of the last good build."""

    root: Path
    rebuild: Callable[[], None]
    origin: str | None = None
    """The authority (``127.0.0.1:8000``) the preview's links are built with; None when
    they are the public ones (``--public-urls``), which are never rewritten."""
    build: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    say: Callable[[str], None] = field(default=lambda text: print(text, flush=True))
    complain: Callable[[str], None] = field(
        default=lambda text: print(text, file=sys.stderr, flush=True)
    )

    def refresh(self) -> bool:
        """Rebuild; True if it succeeded. A failure is printed and the old output stays."""
        try:
            self.rebuild()
        except FamfeedsError as exc:
            self.complain(
                f"Rebuild failed; still serving the last good build.\n{exc.format_message()}"
            )
            return False
        except Exception:  # a bug must not take the preview down
            self.complain(
                "Rebuild failed unexpectedly; still serving the last good build.\n"
                + traceback.format_exc()
            )
            return False
        with self.lock:
            self.build += 1
        self.say(f"Rebuilt (build {self.build}).")
        return True


# -- the application -------------------------------------------------------------------


def create_app(preview: Preview, host: str) -> HostGuard:
    """The preview as an ASGI application: the build endpoint and the files, behind the
    Host check."""
    return HostGuard(PreviewFiles(preview), allowed_names(host))


def allowed_names(host: str) -> frozenset[str]:
    """The host names a request may use: localhost and ``host`` (IP literals always pass)."""
    return LOCAL_NAMES | {host.strip("[]").lower()}


def host_allowed(value: str | None, names: frozenset[str]) -> bool:
    """Whether a Host header names this server: one of ``names`` or an IP literal, with
    an optional port."""
    if not value:
        return False
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not _port(rest)):
            return False
        try:
            return ipaddress.ip_address(name).version == 6
        except ValueError:
            return False
    name, colon, port = value.rpartition(":")
    if not colon:
        name = port
    elif not _port(":" + port):
        return False
    if name in names:
        return True
    try:
        return ipaddress.ip_address(name).version == 4
    except ValueError:
        return False


def _port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit() and len(text) <= 6


class HostGuard:
    """Answers 400 to a request whose Host header does not name this server."""

    def __init__(self, app: PreviewFiles, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if not host_allowed(Headers(scope=scope).get("host"), self.names):
            response = _text(400, "Unknown Host: open the address famfeeds serve printed.\n")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class PreviewFiles(StaticFiles):
    """Starlette's static files with the preview's rules: content types from the outputs
    table, ETags of the bytes served, the reload script in HTML, safe redirects."""

    def __init__(self, preview: Preview) -> None:
        super().__init__(directory=preview.root, html=True, check_dir=False)
        self.preview = preview

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == BUILD_ENDPOINT:
            response: Response = _text(200, str(self.preview.build))
            response.headers["Cache-Control"] = "no-store"
        else:
            response = await self.get_response(self.get_path(scope), scope)
        await response(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The response for ``path`` (normalised, relative to the preview folder)."""
        if scope["method"] not in ("GET", "HEAD"):
            return _text(405, "Method not allowed\n", {"Allow": "GET, HEAD"})
        if MANIFEST in PurePosixPath(path).parts:
            return _not_found()
        slash = scope["path"].endswith("/")
        try:
            found = await anyio.to_thread.run_sync(self._load, path, slash)
        except OSError:  # unreadable
            return _not_found()
        if found is None:
            return _not_found()
        if found.body is None:
            if found.full:
                return _redirect(path)
            return _text(503, "Rebuilding\n", {"Retry-After": "1"})
        return self._file(found.full, found.body, found.modified, Headers(scope=scope))

    def _load(self, path: str, slash: bool) -> _Found | None:
        """In a worker thread (one per request): the file ``path`` names, or its folder's
        index.html, with its bytes; without them for a folder asked for without its slash.
        Tried twice, as a rebuild may swap the folder between two steps."""
        for _attempt in range(2):
            located = self._locate(path)
            if located is None:
                return None
            full, folder = located
            if folder and not slash:
                return _Found(full, None, 0)
            read = _read(full)
            if read is not None:
                return _Found(full, *read)
        return _Found("", None, 0)

    def _locate(self, path: str) -> tuple[str, bool] | None:
        """The regular file ``path`` names (a folder's index.html), and whether it named a
        folder; None if there is none."""
        for candidate in (path, str(PurePosixPath(path) / "index.html")):
            try:
                full, info = self.lookup_path(candidate)
            except (OSError, ValueError):  # NUL bytes, names too long
                return None
            if info is None:
                return None
            if stat.S_ISREG(info.st_mode):
                return full, candidate != path
            if not stat.S_ISDIR(info.st_mode) or candidate != path:
                return None
        return None

    def _file(self, full: str, body: bytes, modified: float, request: Headers) -> Response:
        kind = content_type(full)
        if kind.startswith("text/html"):
            script = RELOAD_SCRIPT.format(build=self.preview.build, endpoint=BUILD_ENDPOINT)
            body = body.replace(b"</body>", script.encode() + b"</body>", 1)
            body = relinked(body, self.preview.origin, request.get("host"))
        headers = {
            "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            "Last-Modified": formatdate(int(modified), usegmt=True),
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if _not_modified(request, headers["ETag"], int(modified)):
            return Response(status_code=304, headers=headers)
        return Response(body, headers={**headers, "Content-Type": kind})


@dataclass(frozen=True)
class _Found:
    """What a request path leads to: a file and its bytes; no bytes for a folder to redirect
    to (or, with no file either, a rebuild in the way)."""

    full: str
    body: bytes | None
    modified: float


def _read(full: str) -> tuple[bytes, float] | None:
    """A regular file's bytes and mtime; None if it vanished (swapped away by a rebuild)."""
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        return handle.read(), info.st_mtime


def relinked(body: bytes, origin: str | None, host: str | None) -> bytes:
    """``body`` with the links to ``origin`` (``http://…``, ``webcal://…``) pointing at
    ``host``, the address the browser asked (already checked by :class:`HostGuard`: a name
    of this server or an IP literal, with a port)."""
    if origin is None or not host or host.lower() == origin:
        return body
    return body.replace(f"//{origin}/".encode(), f"//{host.lower()}/".encode())


def _not_modified(request: Headers, etag: str, modified: int) -> bool:
    """Whether a conditional request matches: If-None-Match first, else If-Modified-Since."""
    match = request.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return etag in tags or "*" in tags
    since = request.get("if-modified-since")
    if since:
        try:
            return modified <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
    return False


def _redirect(path: str) -> Response:
    """A 301 to the folder ``path`` with its slash: a path on this origin, encoded."""
    clean = PurePosixPath(path).as_posix().lstrip("/")
    location = "/" if clean in ("", ".") else "/" + quote(clean, safe=_SAFE_PATH) + "/"
    return Response(status_code=301, headers={"Location": location, "Content-Length": "0"})


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        text,
        status_code=status,
        headers={**(headers or {}), "Content-Type": "text/plain; charset=utf-8"},
    )


def _not_found() -> Response:
    return _text(404, "Not found\n")


# -- the server ------------------------------------------------------------------------


def listen(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening socket with a real backlog; IPv6 when ``host`` is an IPv6 address, and
    IPv4 as well for ``::`` (every interface) where the system allows it."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    both = family == socket.AF_INET6 and wildcard(bare) and socket.has_dualstack_ipv6()
    try:
        return socket.create_server(
            (bare, port), family=family, backlog=backlog, dualstack_ipv6=both
        )
    except OSError as exc:
        raise FamfeedsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def wildcard(host: str) -> bool:
    """Whether ``host`` means every interface (``0.0.0.0``, ``::``): no browser can open it."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def http_url(host: str, port: int) -> str:
    """``http://host:port/``, an IPv6 address in brackets."""
    bare = host.strip("[]")
    return f"http://[{bare}]:{port}/" if ":" in bare else f"http://{bare}:{port}/"


def browsable_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens for a server listening on ``host``: the
    loopback address of the same family for a wildcard host."""
    bare = host.strip("[]")
    if wildcard(bare):
        bare = "::1" if ":" in bare else "127.0.0.1"
    return http_url(bare, port)


def network_urls(host: str, port: int) -> list[str]:
    """Where other devices reach a server listening on every interface: this machine's
    address on the network of its default route, per family (found without sending
    anything); [] for another host or when there is no network."""
    if not wildcard(host):
        return []
    probes = [(socket.AF_INET, "192.0.2.1")]
    if ":" in host:
        probes.append((socket.AF_INET6, "2001:db8::1"))
    found: list[str] = []
    for family, probe in probes:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))  # UDP: picks a route and an address, sends nothing
                address = ipaddress.ip_address(sock.getsockname()[0])
        except (OSError, ValueError):
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            found.append(http_url(str(address), port))
    return found


def head_timeout_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol, with the idle timeout (``timeout_keep_alive``) running
    from the moment a connection opens (or a response ends) until a whole request head has
    arrived: uvicorn alone arms it only after a response, and resets it on every byte, so a
    client trickling a head one byte at a time would hold its connection for ever. The
    preview server and the subscriptions service both use it."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def data_received(self, data: bytes) -> None:
            self.conn.receive_data(data)
            self.handle_events()

        def timeout_keep_alive_handler(self) -> None:
            if not self.transport.is_closing():
                with contextlib.suppress(h11.LocalProtocolError):
                    self.conn.send(h11.ConnectionClosed())
                self.transport.close()

    return HeadTimeoutProtocol


def raise_file_limit() -> int:
    """Lift the soft limit on open files to the hard one (as servers do); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def serve(app: Any, sock: socket.socket) -> None:
    """Run ``app`` on ``sock`` with uvicorn until SIGINT or SIGTERM."""
    import uvicorn

    files = raise_file_limit()
    config = uvicorn.Config(
        app,
        http=head_timeout_protocol(),
        lifespan="off",
        log_level="error",
        access_log=False,
        server_header=False,
        timeout_keep_alive=IDLE_TIMEOUT,
        timeout_graceful_shutdown=2,
        backlog=BACKLOG,
        limit_concurrency=max(64, min(4096, files - 64)),
    )
    uvicorn.Server(config).run(sockets=[sock])


def watch(paths: list[Path], preview: Preview, stop: threading.Event) -> None:
    """Rebuild whenever a watched file changes, until ``stop`` is set."""
    from watchfiles import watch as watch_changes

    existing = [p for p in paths if p.exists()]
    if not existing:
        return
    for _changes in watch_changes(*existing, stop_event=stop, debounce=300, step=50):
        preview.refresh()


def run(
    content: Path,
    output: Path,
    *,
    templates: Path | None,
    as_of: date | None,
    host: str,
    port: int,
    public_urls: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
) -> None:
    """Build a preview of ``content`` into ``output``, serve it on ``host``:``port``, and
    rebuild on every change to the content or the templates, until SIGINT or SIGTERM.

    The preview's links point at this server (show.toml's base_url with ``public_urls``);
    it never saves famfeeds.lock. Raises FamfeedsError if it cannot listen or the first
    build fails.
    """
    from famfeeds.build.pipeline import BuildRequest, build
    from famfeeds.build.project import Project

    template_dir = Project.of(content).templates(templates)
    sock = listen(host, port)
    try:
        bound = sock.getsockname()[1]
        url = browsable_url(host, bound)

        def rebuild() -> None:
            build(
                BuildRequest(
                    content,
                    output,
                    templates=template_dir,
                    as_of=as_of,
                    base_url=None if public_urls else url,
                    save_lock=False,
                    sync=False,
                    waiting=say,
                )
            )

        origin = None if public_urls else url.removeprefix("http://").rstrip("/")
        preview = Preview(output, rebuild, origin, say=say, complain=complain)
        rebuild()
        preview.build = 1
        app = create_app(preview, host)
    except BaseException:
        sock.close()
        raise
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch,
        args=([content, template_dir, Project.of(content).locale], preview, stop),
        daemon=True,
    )
    watcher.start()
    if host == "127.0.0.1":
        also = f" (also http://localhost:{bound}/)"
    elif wildcard(host):
        others = " or ".join(network_urls(host, bound)) or (
            f"http://<this machine's IP address>:{bound}/"
        )
        also = f" (listening on all interfaces; from another device: {others})"
    else:
        also = ""
    say(f"Serving {url}{also}; watching {content} and {template_dir}. Ctrl-C stops.")
    try:
        serve(app, sock)  # uvicorn raises KeyboardInterrupt again after a graceful Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        sock.close()
        watcher.join(timeout=5)
    say("Stopped.")
