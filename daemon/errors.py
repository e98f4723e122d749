"""Typed failures a provider fetch can end in, each rendering as one line a person can act on.

Every error carries the provider's label as a person reads it ("Scalr"), the URL *path* (never
the query's secrets, never the token), the HTTP status when there was one, the provider's own
detail, and what to do about it.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A fetch from a provider failed; ``str()`` is the one line shown to the user."""

    default_hint = "the next sync will try again"

    def __init__(
        self,
        label: str,
        what: str,
        *,
        path: str | None = None,
        status: int | None = None,
        detail: str | None = None,
        hint: str | None = None,
    ):
        self.label = label
        self.what = what
        self.path = path
        self.status = status
        self.detail = detail
        self.hint = hint or self.default_hint
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.label}: {self.what}"]
        if self.path:
            parts.append(f"on GET {self.path}")
        if self.status is not None:
            parts.append(f"(HTTP {self.status}{': ' + self.detail if self.detail else ''})")
        elif self.detail:
            parts.append(f"({self.detail})")
        # One line, whatever a provider put in its error message: a log line or a terminal
        # must not be split (or forged) by a newline in a response body.
        return " ".join((" ".join(parts) + f"; {self.hint}").split())


class CredentialsRefused(ProviderError):
    """401/403: the token is wrong, expired or lacks the grant; retrying cannot help."""

    default_hint = "check the provider's token"


class NotFound(ProviderError):
    default_hint = "the resource is gone or the token cannot see it"


class ServerError(ProviderError):
    default_hint = "the provider had an error; the next sync will try again"


class Unreachable(ProviderError):
    """Connection errors and timeouts that outlasted every retry."""

    default_hint = "check the network and the configured URL; the next sync will try again"


class RateLimited(ProviderError):
    default_hint = "the provider is rate limiting this token; the next sync will try again"


class BadResponse(ProviderError):
    """A response we cannot trust: not JSON, not the documented shape, or paging that misbehaves.

    Treated like an outage: the run fails (or the scope is skipped) rather than record a guess.
    """

    default_hint = "the response was not in the documented format; nothing was recorded from it"


class Stopped(ProviderError):
    """The daemon is shutting down: the fetch ends at its next request and the run fails.

    Never a scope's failure: a stop ends the whole fetch, so nothing of it is applied.
    """

    default_hint = "the daemon is shutting down; nothing was recorded"

    def __init__(self, label: str, *, path: str | None = None):
        super().__init__(label, "sync stopped before it finished", path=path)
