"""The one HTTP layer both provider clients share.

It exists so that the rules every request must follow live in one place:
* finite connect/read timeouts, and a deadline per request so a provider that stops answering
  fails the run well within a minute instead of hanging the daemon;
* retries with exponential backoff and jitter for 429/502/503/504 and transport errors,
  honouring ``Retry-After`` in either of its forms, a bounded number of times;
* URLs built from the configured origin only, and no redirect followed off that origin, so a
  credential is never sent to a host named by a response;
* a request counter per run (retries included) for ``sync_runs.requests``;
* at most ``HttpPolicy.concurrency`` requests in flight to the provider, however many threads
  read it; a request waiting out a backoff holds no slot; and no more answers waiting for the
  decoder than fit a few pages' bytes (``daemon/body_budget.py``);
* an optional client-side rate limiter shared by concurrent requests.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from loguru import logger

from daemon import errors
from daemon.body_budget import DEFAULT_BUDGET, BodyBudget

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BODY_BYTES = 64 << 20  # far above any real page of 100 items; a bound on memory
USER_AGENT = "accesstrail/0.1 (+read-only identity audit)"


@dataclass(frozen=True)
class HttpPolicy:
    """Timing knobs; the defaults are production values, tests shrink them."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    request_deadline: float = 50.0  # one request, all of its retries included
    stall_limit: float = 55.0  # no HTTP answer at all for this long: the provider is down
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    max_redirects: int = 3
    concurrency: int = 8  # requests in flight to one provider at once
    answer_budget: int = DEFAULT_BUDGET  # bytes of answers waiting for the decoder, at most


class RateLimiter:
    """At most ``per_minute`` requests in any 60-second window, spread evenly, across threads.

    Two rules together. Requests are spaced ``60 / per_minute`` seconds apart, so the traffic is
    a smooth stream whatever algorithm the provider meters it with. And a sliding window of the
    last ``per_minute`` send times guarantees the budget exactly, in the provider's own terms,
    even where thread scheduling bunches requests up.
    """

    WINDOW = 60.0

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.per_minute = int(per_minute)
        self.rate = per_minute / self.WINDOW
        self.spacing = self.WINDOW / per_minute
        self.clock = clock
        self.sleep = sleep
        self.sent: deque[float] = deque()
        self.next_slot = float("-inf")
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                while self.sent and self.sent[0] <= now - self.WINDOW:
                    self.sent.popleft()
                earliest = self.next_slot
                if len(self.sent) >= self.per_minute:
                    earliest = max(earliest, self.sent[0] + self.WINDOW + 1e-6)
                if earliest <= now:
                    self.sent.append(now)
                    self.next_slot = now + self.spacing
                    return
                wait = earliest - now
            self.sleep(wait)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class ProviderHTTP:
    """GETs JSON from one provider's configured origin, with the rules above."""

    def __init__(
        self,
        label: str,
        origin: str,
        headers: dict[str, str],
        *,
        describe_error: Callable[[httpx.Response], str | None],
        credential_hint: str,
        secrets: tuple[str, ...] = (),
        policy: HttpPolicy | None = None,
        limiter: RateLimiter | None = None,
        stop: threading.Event | None = None,
    ):
        self.label = label
        self.origin = origin.rstrip("/")
        self.policy = policy or HttpPolicy()
        self.describe_error = describe_error
        self.credential_hint = credential_hint
        self.secrets = tuple(s for s in secrets if s)
        self.limiter = limiter
        self.stop = stop or threading.Event()
        self.requests = 0
        self.stalled: errors.Unreachable | None = None
        self._last_answer = time.monotonic()
        #: Called after every answer (the daemon's watchdog watches it); set by the sync.
        self.on_answer: Callable[[], None] | None = None
        self._count_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, self.policy.concurrency))
        self._bodies = BodyBudget(self.policy.answer_budget)
        self._decoding = threading.Lock()
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ProviderHTTP:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """How many requests may be in flight at once: the width a caller may fetch ahead."""
        return max(1, self.policy.concurrency)

    def get_json(self, path: str, params: dict | None = None) -> dict:
        """GET ``origin + path`` and return the decoded JSON object, or raise a ProviderError."""
        return self.get_page(path, params, lambda document: document)

    def get_page(
        self,
        path: str,
        params: dict | None,
        read: Callable[[dict], T],
        object_hook: Callable[[dict], Any] | None = None,
    ) -> T:
        """GET ``origin + path``, decode the JSON object and return what ``read`` makes of it.

        Decoding and reading happen one page at a time per provider: decoding holds the GIL
        anyway, and this way only one whole decoded page exists at once, however many were
        fetched ahead, while ``read`` keeps only what the sync needs of it. ``object_hook``
        (``json.loads``'s) may shrink each object as it is decoded, so that parts of a page the
        sync never reads are not all built before being dropped.
        """
        response = self._get_with_retries(path, params or {})
        size = len(response.content)
        try:
            with self._decoding:
                try:
                    document = response.json(object_hook=object_hook)
                except ValueError:
                    raise errors.BadResponse(
                        self.label, "answered with a body that is not JSON", path=path
                    ) from None
                del response
                if not isinstance(document, dict):
                    raise errors.BadResponse(
                        self.label, "answered with JSON that is not an object", path=path
                    )
                return read(document)
        finally:
            self._slots.release()  # held since the successful answer began (see ``_send``)
            self._bodies.decoded(size)

    def raise_if_interrupted(self) -> None:
        """Raise when the whole fetch must end: the provider went silent, or we are stopping.

        ``sync_provider`` calls this once a fetch returns, so that these provider-wide conditions
        fail the run instead of passing for a string of failed scopes (a partial run).
        """
        if self.stalled is not None:
            raise self.stalled
        if self.stop.is_set():
            raise errors.Stopped(self.label)

    # -- the request loop --------------------------------------------------------------------

    def _get_with_retries(self, path: str, params: dict) -> httpx.Response:
        """Send until success, a final status, or the deadline; a success still holds its slot.

        The deadline is the sooner of this request's own budget and the provider-wide stall
        limit, so that concurrent requests to a provider that stopped answering all give up
        together instead of one after another, and the run fails within a minute. It starts
        when the request first holds a slot: waiting behind our own requests is not the provider
        being slow.
        """
        self.raise_if_interrupted()
        deadline = _Deadline(self.policy, lambda: self._last_answer)
        attempt = 0
        url = self.origin + path
        redirects = 0
        while True:
            if self.stop.is_set():
                raise errors.Stopped(self.label, path=path)
            attempt += 1
            failure: errors.ProviderError
            wait: float | None = None
            try:
                response = self._send(url, params, deadline)
            except httpx.TimeoutException:
                failure = errors.Unreachable(self.label, "did not answer in time", path=path)
            except httpx.TransportError as exc:
                failure = errors.Unreachable(
                    self.label,
                    f"could not be reached at {self.origin}",
                    path=path,
                    detail=self._redact(type(exc).__name__ + (f": {exc}" if str(exc) else "")),
                )
            except httpx.HTTPError as exc:  # e.g. a body that fails to decode: not retryable
                raise errors.BadResponse(
                    self.label,
                    "answered with a response that could not be read",
                    path=path,
                    detail=self._redact(f"{type(exc).__name__}: {exc}"),
                ) from None
            else:
                if response.is_redirect:
                    url, params = self._same_origin_redirect(response, path)
                    redirects += 1
                    if redirects > self.policy.max_redirects:
                        raise errors.BadResponse(self.label, "redirected too many times", path=path)
                    attempt -= 1
                    continue
                if response.is_success:
                    return response
                failure = self._status_error(response, path)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is None:
                wait = self._backoff(attempt)
            out_of_time = time.monotonic() + wait >= deadline.at
            if attempt >= self.policy.max_attempts or out_of_time:
                if attempt > 1:
                    failure.what += f" after {attempt} attempts"
                if (
                    isinstance(failure, errors.Unreachable)
                    and time.monotonic() + wait >= self._last_answer + self.policy.stall_limit
                ):
                    self.stalled = failure  # nothing has answered for the whole stall limit
                raise failure
            logger.debug(
                "{} GET {} attempt {} failed ({}); retrying in {:.1f}s",
                self.label,
                path,
                attempt,
                failure.what,
                wait,
            )
            self.stop.wait(wait)  # a backoff ends early when the daemon is stopping

    def _send(self, url: str, params: dict, request: _Deadline) -> httpx.Response:
        """One GET, in one of the provider's slots, whose whole answer must arrive in time.

        The body is streamed so the deadline is checked between chunks: a server that keeps
        trickling bytes would otherwise never trip the read timeout and could hold a sync for
        ever. The raw (still encoded) bytes are handed to a plain Response, which decodes once.

        A successful answer keeps its slot until ``get_page`` has decoded it: an answer waiting
        for the decoder counts against the bound, so a provider's large pages never pile up
        beyond ``concurrency`` of them, however slowly they are decoded; and a request is sent
        only when the bytes waiting leave room for its answer (``daemon/body_budget.py``).
        """
        ticket = self._bodies.admit(urlsplit(url).path, self.stop, self.label)
        self._slots.acquire()
        try:
            request.start()
            response = self._send_in_slot(url, params, request.at)
        except BaseException:
            self._slots.release()
            self._bodies.cancel(ticket)
            raise
        if not response.is_success:
            self._slots.release()
            self._bodies.cancel(ticket)
        else:
            self._bodies.received(ticket, len(response.content))
        return response

    def _send_in_slot(self, url: str, params: dict, deadline: float) -> httpx.Response:
        if self.limiter:
            self.limiter.acquire()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise httpx.ReadTimeout("request deadline passed")
        with self._count_lock:
            self.requests += 1
        timeout = httpx.Timeout(
            min(self.policy.read_timeout, remaining),
            connect=min(self.policy.connect_timeout, remaining),
        )
        started = time.monotonic()
        with self._client.stream("GET", url, params=params, timeout=timeout) as streamed:
            body = bytearray()
            for chunk in streamed.iter_raw():
                body += chunk
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer did not finish before the deadline")
                if len(body) > MAX_BODY_BYTES:
                    raise errors.BadResponse(
                        self.label,
                        f"answered with more than {MAX_BODY_BYTES >> 20} MiB",
                        path=urlsplit(url).path,
                    )
            content = bytes(body)
            del body  # one copy of a large page at a time
            response = httpx.Response(
                streamed.status_code,
                headers=streamed.headers,
                content=content,
                request=streamed.request,
            )
        self._last_answer = time.monotonic()
        if self.on_answer:
            self.on_answer()
        logger.debug(
            "{} GET {} → {} in {:.0f}ms",
            self.label,
            urlsplit(url).path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _same_origin_redirect(self, response: httpx.Response, path: str) -> tuple[str, dict]:
        location = response.headers.get("Location")
        target = response.request.url.join(location) if location else None
        if target is None or _origin(str(target)) != _origin(self.origin):
            where = "nowhere" if target is None else f"{target.scheme}://{target.netloc.decode()}"
            raise errors.BadResponse(
                self.label,
                f"redirected to another origin ({where}); not followed so the "
                "token stays with the configured host",
                path=path,
                hint="check the configured URL",
            )
        return str(target.copy_with(query=None)), dict(target.params)

    def _status_error(self, response: httpx.Response, path: str) -> errors.ProviderError:
        status = response.status_code
        try:
            detail = self.describe_error(response)
        except Exception:  # a broken error body must not hide the status
            detail = None
        detail = self._redact(detail[:300]) if detail else None
        kind, what, hint = self._classify(status)
        return kind(self.label, what, path=path, status=status, detail=detail, hint=hint)

    def _classify(self, status: int) -> tuple[type[errors.ProviderError], str, str | None]:
        """Which error a final status is, what to call it, and what to do (None: its default)."""
        if status == 401:
            return errors.CredentialsRefused, "the token was refused", self.credential_hint
        if status == 403:
            return (
                errors.CredentialsRefused,
                "the token is not allowed to read this",
                "grant the token read access to it",
            )
        if status == 404:
            return errors.NotFound, "not found or not visible to this token", None
        if status == 429:
            return errors.RateLimited, "rate limited the requests", None
        if status >= 500:
            return errors.ServerError, "had a server error", None
        return errors.ProviderError, "refused the request", None

    def _redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class _Deadline:
    """When one request, all of its attempts included, must be done by."""

    def __init__(self, policy: HttpPolicy, last_answer: Callable[[], float]):
        self.policy = policy
        self.last_answer = last_answer
        self.at = float("inf")  # not started: the request has not yet held a slot

    def start(self) -> None:
        """Set the deadline the first time the request holds a slot; later attempts keep it."""
        if self.at == float("inf"):
            self.at = min(
                time.monotonic() + self.policy.request_deadline,
                self.last_answer() + self.policy.stall_limit,
            )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port
