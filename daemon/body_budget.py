"""How many bytes of a provider's answers may wait for the decoder at once.

A page of 100 items is not a fixed size: a Scalr account-users page embeds each of its users'
teams with every member of the team, a PlanetScale team page embeds its members, so the pages of
a large organisation are larger (1.3 MB at 20,000 identities, 1.8 MB at 100,000). Pages are
decoded one at a time per provider (``ProviderHTTP.get_page``), more slowly than the network
brings them, so the answers that arrived wait, whole, for their turn; bounding them by count
alone (the request slots) lets that queue grow with the organisation. This bounds it by bytes.

A request is admitted when the bytes already waiting, plus what the requests admitted before it
are expected to bring, plus what it is expected to bring itself, fit the budget; or when nothing
is waiting or expected at all, so a page larger than the budget is still read, alone. What a
request will bring is guessed from the last answer on the same path (a listing's pages are much
alike); a path whose last answer was small is not remembered, so the guesses never grow with the
number of listings. The decoder being the bottleneck, this costs no time: the pages it holds back
would only have waited in memory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from daemon import errors

#: Bytes of answers waiting for the decoder, per provider: a few of the largest pages.
DEFAULT_BUDGET = 6 << 20
#: Answers smaller than this are not remembered as a path's expected size.
REMEMBERED_FROM = 64 << 10
#: How often a waiting request looks at the stop signal.
POLL_SECONDS = 0.5


@dataclass
class Ticket:
    """One admitted request and the bytes reserved for its answer."""

    path: str
    reserved: int


class BodyBudget:
    """Admits requests while the answers waiting to be decoded fit ``budget`` bytes."""

    def __init__(self, budget: int = DEFAULT_BUDGET):
        self.budget = budget
        self._changed = threading.Condition()
        self._waiting = 0  # bytes received and not yet decoded
        self._reserved = 0  # bytes expected from requests admitted and not yet answered
        self._expected: dict[str, int] = {}

    def admit(self, path: str, stop: threading.Event, label: str) -> Ticket:
        """Wait until a request on ``path`` fits; raise ``Stopped`` when the sync is stopping."""
        with self._changed:
            while (ticket := self._try_admit(path)) is None:
                if stop.is_set():
                    raise errors.Stopped(label, path=path)
                self._changed.wait(POLL_SECONDS)
            return ticket

    def try_admit(self, path: str) -> Ticket | None:
        """Admit a request on ``path`` if it fits now, without waiting."""
        with self._changed:
            return self._try_admit(path)

    def received(self, ticket: Ticket, size: int) -> None:
        """The answer arrived whole: its ``size`` bytes wait until ``decoded(size)``."""
        with self._changed:
            self._reserved -= ticket.reserved
            ticket.reserved = 0
            self._waiting += size
            if size >= REMEMBERED_FROM:
                self._expected[ticket.path] = size
            else:
                self._expected.pop(ticket.path, None)
            self._changed.notify_all()

    def cancel(self, ticket: Ticket) -> None:
        """The request brought no answer to decode (it failed, or was an error or a redirect)."""
        with self._changed:
            self._reserved -= ticket.reserved
            ticket.reserved = 0
            self._changed.notify_all()

    def decoded(self, size: int) -> None:
        """An answer of ``size`` bytes was decoded (or given up): those bytes are free."""
        with self._changed:
            self._waiting -= size
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        """Bytes received and not yet decoded."""
        with self._changed:
            return self._waiting

    @property
    def reserved(self) -> int:
        """Bytes expected from requests admitted and not yet answered."""
        with self._changed:
            return self._reserved

    def _try_admit(self, path: str) -> Ticket | None:
        expected = self._expected.get(path, 0)
        idle = self._waiting == 0 and self._reserved == 0
        if not idle and self._waiting + self._reserved + expected > self.budget:
            return None
        self._reserved += expected
        return Ticket(path, expected)
