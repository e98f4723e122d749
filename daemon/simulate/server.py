"""Shared machinery for the loopback API simulators.

Each simulator is a real HTTP server on 127.0.0.1 so that the product's own HTTP client, retry and
pagination code is exercised end to end; nothing in the test-suite patches the client. This module
owns what both providers have in common: the listening socket, request parsing and recording,
fault injection, the paging and timestamp conventions both wires follow, and the order in which a
request is judged:

    record -> fault -> authentication -> admission (rate limit) -> method -> route

Faults come first so a test can inject anything, even in front of a bad token. Two knobs exist
for the benchmark (``bench/``) and are off by default: ``latency`` (seconds every answer waits,
as a network far away would make it) and :meth:`SimServer.enable_cache`, which keeps each
rendered page until :meth:`SimServer.invalidate` is called after the state changed, so that a
20,000-user listing costs the simulator almost nothing to serve again. Everything
provider-specific (error bodies, auth header, page parameter names, routes) is supplied by a
subclass.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# A body that starts like a provider document and then breaks off: the shape a truncated proxy
# response takes, and invalid JSON for any parser.
MALFORMED_BODY = b'{"data": [{"id": "truncated", "attributes": {'


@dataclass
class Fault:
    """One injected misbehaviour, matched against the request path (and optionally the page)."""

    path: str
    page: int | None = None
    status: int = 500
    times: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    delay: float = 0.0
    malformed: bool = False
    drop: bool = False
    hits: int = field(default=0, compare=False)  # how many requests it has answered so far
    # A used-up fault (times == 0) stays in SimServer.faults so tests can inspect it; it no
    # longer matches anything.

    def matches(self, path: str, page: int | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.page is not None and page != self.page:
            return False
        return re.search(self.path, path) is not None

    @property
    def passes_through(self) -> bool:
        """A 200 fault without a body only delays (and decorates) the normal answer."""
        return self.status == 200 and self.body is None and not self.malformed and not self.drop


class Headers(dict):
    """A plain ``dict`` of request headers whose lookups ignore case, as HTTP header names do.

    Keys are stored lower-cased; ``headers["Authorization"]`` and ``headers.get("authorization")``
    both work, so tests need not guess which spelling the client used.
    """

    def __init__(self, pairs=()):
        super().__init__()
        for key, value in pairs:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """What a simulator saw: lets tests assert on the exact calls the product made."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or None when absent."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class SimRequest(RecordedRequest):
    """A request as handlers see it: the recorded facts plus the origin the client addressed."""

    origin: str = ""


@dataclass
class Reply:
    """A complete HTTP answer built by a handler before any byte is written."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class BadParameter(Exception):
    """Raised by handlers for an unusable query parameter, rendered in the provider's format."""

    def __init__(self, status: int, detail: str, parameter: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.parameter = parameter


class NotFound(Exception):
    """Raised by handlers for a resource that does not exist: answered with the provider's 404.

    ``detail`` replaces the provider's default 404 text where the API names the missing resource.
    """

    def __init__(self, detail: str | None = None):
        super().__init__(detail)
        self.detail = detail


Handler = Callable[..., Reply]


def reason(status: int) -> str:
    """The standard reason phrase, e.g. 503 -> 'Service Unavailable'."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _parse_int(value: str | None, default: int, name: str, *, bad_status: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadParameter(bad_status, f"{name} must be an integer, got {value!r}.", name) from None


def utc_timestamp(moment: datetime, *, milliseconds: bool = False) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC (naive datetimes count as UTC), optionally with ``.000``.

    Both APIs stamp times this way; PlanetScale adds a (always zero) millisecond part.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    fraction = ".000" if milliseconds else ""
    return moment.strftime(f"%Y-%m-%dT%H:%M:%S{fraction}Z")


def mentions(needle: str | None, *texts: str | None) -> bool:
    """Whether any of ``texts`` contains ``needle``, ignoring case; no needle matches everything.

    Both APIs offer such a free-text search over a listing, under different parameter names.
    """
    if not needle:
        return True
    needle = needle.lower()
    return any(needle in (text or "").lower() for text in texts)


@dataclass(frozen=True)
class Paging:
    """How a wire names and bounds its page parameters, and how it refuses bad values."""

    number_parameter: str
    size_parameter: str
    max_size: int
    bad_value_status: int


@dataclass
class Page:
    """One page cut out of an ordered listing, with what a list document says about it."""

    number: int
    size: int
    items: list
    total_pages: int
    total_count: int

    @property
    def next_number(self) -> int | None:
        return self.number + 1 if self.number < self.total_pages else None

    @property
    def prev_number(self) -> int | None:
        return self.number - 1 if self.number > 1 else None


def cut_page(
    request: RecordedRequest,
    records: list,
    paging: Paging,
    default_size: int,
    build: Callable[[Any], Any] | None = None,
) -> Page:
    """The page a request asks for out of already ordered ``records``.

    ``build`` turns the page's records into rendered objects, so a large listing only renders the
    page asked for (a 20,000-user account stays fast to page through). Sizes are clamped to
    ``1..max_size``; a page number below 1 or a non-number is refused.
    """
    status = paging.bad_value_status
    number_name, size_name = paging.number_parameter, paging.size_parameter
    number = _parse_int(request.param(number_name), 1, number_name, bad_status=status)
    size = _parse_int(request.param(size_name), default_size, size_name, bad_status=status)
    if number < 1:
        raise BadParameter(status, f"{number_name} must be 1 or greater.", number_name)
    size = max(1, min(size, paging.max_size))
    start = (number - 1) * size
    items = records[start : start + size]
    if build is not None:
        items = [build(item) for item in items]
    return Page(number, size, items, -(-len(records) // size), len(records))


class SimServer:
    """Base class: a ThreadingHTTPServer on an ephemeral loopback port with faults and a journal.

    Subclasses implement :meth:`authenticate` and :meth:`error_reply`, set :attr:`paging`, and
    register their routes with :meth:`route`; they may override :meth:`admit` (rate limiting).
    """

    json_content_type = "application/json"
    paging: Paging | None = None  # the wire's page parameters; None: nothing is paged

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._journal_lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._routes: list[tuple[re.Pattern[str], Handler]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url: str = ""
        self.latency = 0.0  # seconds each request waits before it is judged
        self._pages: dict[tuple, Reply] | None = None  # rendered pages, when caching is on
        self._memo: dict[Any, Any] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> SimServer:
        if self._httpd is not None:
            return self
        httpd = _QuietServer(("127.0.0.1", 0), _make_handler_class(self))
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults and journal ----------------------------------------------------------------------

    def add_fault(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self._fault_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._fault_lock:
            self.faults.clear()

    def clear_requests(self) -> None:
        with self._journal_lock:
            self.requests.clear()

    def _take_fault(self, path: str, page: int | None) -> Fault | None:
        """First matching live fault, with its use counted atomically (so ``times`` is exact)."""
        with self._fault_lock:
            for fault in self.faults:
                if fault.matches(path, page):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    # -- the benchmark's page cache ------------------------------------------------------------

    def enable_cache(self) -> None:
        """Keep rendered 200 pages (and :meth:`memo` values) until :meth:`invalidate`.

        Only for a state that changes through its owner, who calls :meth:`invalidate` after
        each change; tests that mutate the state directly leave the cache off.
        """
        self._pages = {}
        self._memo = {}

    def invalidate(self) -> None:
        """Forget every rendered page and memo: the state has changed."""
        if self._pages is not None:
            self._pages = {}
        self._memo = {}

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, remembered under ``key`` while caching is on; computed anew otherwise."""
        if self._pages is None:
            return compute()
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    def _cached(self, request: SimRequest, render: Callable[[], Reply]) -> Reply:
        pages = self._pages
        if pages is None:
            return render()
        query = tuple(sorted((name, tuple(values)) for name, values in request.query.items()))
        key = (request.origin, request.path, query)
        reply = pages.get(key)
        if reply is None:
            reply = render()
            if reply.status == 200:
                pages[key] = reply
        return Reply(reply.status, reply.body, dict(reply.headers))

    # -- provider hooks ------------------------------------------------------------------------

    def authenticate(self, request: SimRequest) -> bool:
        raise NotImplementedError

    def error_reply(
        self, status: int, detail: str | None = None, parameter: str | None = None
    ) -> Reply:
        """The provider's normal error document for ``status``."""
        raise NotImplementedError

    def page_number(self, request: SimRequest) -> int | None:
        """The request's page number (default 1), or None when it is not a number.

        Only used to match faults, so it never refuses anything itself.
        """
        if self.paging is None:
            return 1
        try:
            return int(request.param(self.paging.number_parameter) or 1)
        except ValueError:
            return None

    def admit(self, request: SimRequest) -> Reply | None:
        """Called for authenticated requests; a Reply refuses the request (e.g. 429)."""
        return None

    def route(self, pattern: str, handler: Handler) -> None:
        """Register a GET handler; named groups of ``pattern`` become keyword arguments."""
        self._routes.append((re.compile(pattern), handler))

    # -- helpers for subclasses ------------------------------------------------------------------

    def json_reply(self, status: int, document: Any) -> Reply:
        body = json.dumps(document, separators=(",", ":")).encode()
        return Reply(status, body, {"Content-Type": self.json_content_type})

    # -- the request pipeline ------------------------------------------------------------------

    def _answer(self, request: SimRequest) -> Reply | None:
        """Judge one request; None means: drop the connection without answering."""
        with self._journal_lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    {k: list(v) for k, v in request.query.items()},
                    Headers(request.headers.items()),
                )
            )
        if self.latency > 0:
            time.sleep(self.latency)
        fault = self._take_fault(request.path, self.page_number(request))
        if fault is not None:
            if fault.delay > 0:
                time.sleep(fault.delay)
            if fault.drop:
                return None
            if not fault.passes_through:
                return self._fault_reply(fault)
        reply = self._normal_reply(request)
        if fault is not None:
            reply.headers.update(fault.headers)
        return reply

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.malformed:
            reply = Reply(200, MALFORMED_BODY, {"Content-Type": self.json_content_type})
        elif fault.body is not None:
            reply = Reply(
                fault.status, fault.body.encode(), {"Content-Type": self.json_content_type}
            )
        else:
            reply = self.error_reply(fault.status)
        reply.headers.update(fault.headers)
        return reply

    def _normal_reply(self, request: SimRequest) -> Reply:
        if not self.authenticate(request):
            return self.error_reply(401)
        refusal = self.admit(request)
        if refusal is not None:
            return refusal
        if request.method != "GET":
            return self.error_reply(405, f"Method {request.method} is not allowed.")
        return self._cached(request, lambda: self._route(request))

    def _route(self, request: SimRequest) -> Reply:
        path = request.path.rstrip("/") or "/"
        for pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match:
                try:
                    return handler(request, **match.groupdict())
                except BadParameter as problem:
                    return self.error_reply(problem.status, problem.detail, problem.parameter)
                except NotFound as missing:
                    return self.error_reply(404, missing.detail)
        return self.error_reply(404)


class _QuietServer(ThreadingHTTPServer):
    """Daemon threads, no joining on close, and no tracebacks for clients that hung up."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


def _make_handler_class(sim: SimServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs; every reply has Content-Length
        disable_nagle_algorithm = True  # headers and body are two writes; avoid 40 ms ACK stalls
        server_version = "accesstrail-sim"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # the journal in SimServer.requests replaces stderr logging

        def _serve(self) -> None:
            self._discard_request_body()
            split = urlsplit(self.path)
            host = self.headers.get("Host") or sim.url.removeprefix("http://")
            request = SimRequest(
                method=self.command,
                path=unquote(split.path),
                query=parse_qs(split.query, keep_blank_values=True),
                headers=Headers(self.headers.items()),
                origin=f"http://{host}",
            )
            reply = sim._answer(request)
            if reply is None:
                self._hang_up()
                return
            self._write(reply)

        def _discard_request_body(self) -> None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > 0:
                self.rfile.read(length)

        def _hang_up(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _write(self, reply: Reply) -> None:
            try:
                self.send_response(reply.status, reason(reply.status))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. timed out on a delay)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    return _Handler
