"""Shared machinery for the loopback API simulators.

Each simulator is a real HTTP server on 127.0.0.1 so that the product's own HTTP client, retry and
pagination code is exercised end to end; nothing in the test-suite patches the client. This module
owns what both providers have in common: the listening socket, request parsing and recording,
fault injection, and the order in which a request is judged:

    record -> fault -> authentication -> admission (rate limit) -> method -> route

Faults come first so a test can inject anything, even in front of a bad token. Everything
provider-specific (error bodies, auth header, page parameter, routes) is supplied by a subclass.
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
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

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


Handler = Callable[..., Reply]


def reason(status: int) -> str:
    """The standard reason phrase, e.g. 503 -> 'Service Unavailable'."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def parse_int(value: str | None, default: int, name: str, *, bad_status: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadParameter(bad_status, f"{name} must be an integer, got {value!r}.", name) from None


def page_slice(items: list, page: int, size: int) -> tuple[list, int]:
    """Cut one page out of an already ordered list; returns (items on the page, total pages)."""
    total_pages = -(-len(items) // size)
    start = (page - 1) * size
    return items[start : start + size], total_pages


def encode_query(query: dict[str, list[str]], **overrides: str) -> str:
    """Re-encode a decoded query the way clients do (brackets become %5B/%5D)."""
    merged = {key: list(values) for key, values in query.items()}
    for key, value in overrides.items():
        merged[key] = [value]
    return urlencode(merged, doseq=True)


class SimServer:
    """Base class: a ThreadingHTTPServer on an ephemeral loopback port with faults and a journal.

    Subclasses implement :meth:`authenticate`, :meth:`error_reply`, :meth:`page_number` and
    register their routes with :meth:`route`; they may override :meth:`admit` (rate limiting).
    """

    json_content_type = "application/json"

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._journal_lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._routes: list[tuple[re.Pattern[str], Handler]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url: str = ""

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

    # -- provider hooks ------------------------------------------------------------------------

    def authenticate(self, request: SimRequest) -> bool:
        raise NotImplementedError

    def error_reply(
        self, status: int, detail: str | None = None, parameter: str | None = None
    ) -> Reply:
        """The provider's normal error document for ``status``."""
        raise NotImplementedError

    def page_number(self, request: SimRequest) -> int | None:
        """The request's page number (default 1), or None when it is not a number."""
        return 1

    def admit(self, request: SimRequest) -> Reply | None:
        """Called for authenticated requests; a Reply refuses the request (e.g. 429)."""
        return None

    def route(self, pattern: str, handler: Handler) -> None:
        """Register a GET handler; named groups of ``pattern`` become keyword arguments."""
        self._routes.append((re.compile(pattern), handler))

    # -- helpers for subclasses ------------------------------------------------------------------

    def json_reply(self, status: int, document: Any, content_type: str | None = None) -> Reply:
        body = json.dumps(document, separators=(",", ":")).encode()
        return Reply(status, body, {"Content-Type": content_type or self.json_content_type})

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
        path = request.path.rstrip("/") or "/"
        for pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match:
                try:
                    return handler(request, **match.groupdict())
                except BadParameter as problem:
                    return self.error_reply(problem.status, problem.detail, problem.parameter)
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
