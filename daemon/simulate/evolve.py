"""What the two simulated worlds share: the stepping loop and the id, name and email helpers.

A world module (``scalr.world``, ``planetscale.world``) fills a simulator state with a plausible
company and then evolves it with an :class:`Evolver`, which applies a few random, realistic changes
per step (joiners, leavers, sign-ins, role changes, team moves, ...) and describes each in a
human-readable line. Everything is driven by the ``random.Random`` passed in, and never by set or
hash order, so a seed reproduces the same history in any process.

Evolvers hold the state's lock for a whole step, so a live simulator never serves a half-applied
change.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from daemon.simulate.names import FIRST_NAMES, LAST_NAMES

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

T = TypeVar("T")

# A change to a world, stamped with the moment it happens: its description, or None when it does
# not apply to the current state (no one to re-enable, no team to leave, ...).
Mutation = Callable[[datetime], str | None]


def make_id(prefix: str, rng: random.Random, length: int | None = None) -> str:
    """A realistic id: ``user-`` + 17 lowercase alnum for Scalr, 12 bare characters for PlanetScale.

    ``prefix`` may be given with or without its dash (``"user"`` or ``"user-"``); an empty prefix
    gives a bare PlanetScale-style id. ``length`` defaults to 17 with a prefix and 12 without.
    """
    if length is None:
        length = 17 if prefix else 12
    body = "".join(rng.choice(ID_ALPHABET) for _ in range(length))
    if not prefix:
        return body
    return prefix + body if prefix.endswith("-") else f"{prefix}-{body}"


def fresh_id(prefix: str, rng: random.Random, taken: Iterable[str]) -> str:
    """A :func:`make_id` id that is not in ``taken``."""
    taken = set(taken)
    while True:
        ident = make_id(prefix, rng)
        if ident not in taken:
            return ident


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "team"


def moment_or_now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


def pick(rng: random.Random, items: Iterable[T]) -> T | None:
    """A random element of ``items`` in a reproducible way (callers pass sorted sequences)."""
    pool = list(items)
    return rng.choice(pool) if pool else None


def weighted_order(rng: random.Random, options: list[tuple[float, T]]) -> list[T]:
    """All options in a random order where heavier ones tend to come first (weighted shuffle)."""
    keyed = [(rng.random() ** (1.0 / weight), option) for weight, option in options]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [option for _, option in keyed]


# -- people and names ---------------------------------------------------------------------------


def random_person(rng: random.Random) -> tuple[str, str]:
    """A (first name, last name) pair."""
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def renamed(full_name: str | None, rng: random.Random) -> str:
    """A new full name for someone: same first name (a random one if none), new last name."""
    first = (full_name or "").split(" ")[0] or rng.choice(FIRST_NAMES)
    new = full_name
    while new == full_name:
        new = f"{first} {rng.choice(LAST_NAMES)}"
    return new


def person_label(name: str | None, email: str) -> str:
    """How change descriptions name a person: ``Name <email>``, or the bare email."""
    return f"{name} <{email}>" if name else email


def email_local_part(name: str | None, email: str) -> str:
    """The local part a changed address starts from: the dotted name, else the old local part."""
    return (name or email.split("@")[0]).replace(" ", ".")


def unique_email(local: str, domain: str, taken: set[str]) -> str:
    """``local@domain``, numbered (``local2@``, ...) until it is not in ``taken`` (lower-cased)."""
    local = re.sub(r"[^a-z0-9.]+", "", local.lower()) or "user"
    email, n = f"{local}@{domain}", 2
    while email.lower() in taken:
        email, n = f"{local}{n}@{domain}", n + 1
    return email


def numbered_name(template: str, taken: set[str]) -> str:
    """``template`` filled with the first number from ``len(taken) + 1`` that gives a free name."""
    n = len(taken) + 1
    while template.format(n) in taken:
        n += 1
    return template.format(n)


def unique_name(candidates: Iterable[str], taken: set[str], rng: random.Random) -> str:
    """A random candidate not yet taken, else a numbered ``Team N``."""
    free = [c for c in candidates if c not in taken]
    if free:
        return rng.choice(free)
    return numbered_name("Team {}", taken)


def side_rng(rng: random.Random, label: str) -> random.Random:
    """A generator seeded from ``rng``'s current state and ``label``, drawing nothing from ``rng``.

    Access data (roles, policies, tokens, database grants) came after people and teams; drawing it
    from its own generator keeps every seeded history of people and teams exactly as it was.
    """
    digest = hashlib.sha256(f"{label}:{rng.getstate()!r}".encode()).hexdigest()
    return random.Random(int(digest, 16))


# -- stepping -----------------------------------------------------------------------------------


class LockedState(Protocol):
    """A simulator state: whatever it holds, it carries the lock a live server reads it under."""

    lock: threading.RLock


class Evolver:
    """Shared stepping: each step draws weighted mutations until one applies, 1..k times.

    Subclasses fill ``_mutations`` with ``(weight, mutation)`` pairs. Access mutations
    (``_access_mutations``) are drawn apart, from :attr:`access_rng`: with probability
    :attr:`access_share` a step also applies one of them, after the others, so the people-and-teams
    history of a seed is the same with or without them.
    """

    state: LockedState
    _mutations: list[tuple[float, Mutation]]
    _access_mutations: list[tuple[float, Mutation]]
    access_share = 0.5

    def __init__(self, rng: random.Random, max_mutations: int):
        self.rng = rng
        self.max_mutations = max_mutations
        self.access_rng = side_rng(rng, "access mutations")
        self._access_mutations = []

    def step(self, now: datetime) -> list[str]:
        """Apply 1..max_mutations changes stamped ``now``; return one description per change."""
        with self.state.lock:
            changes = []
            for _ in range(self.rng.randint(1, self.max_mutations)):
                description = self._first_that_applies(self.rng, self._mutations, now)
                if description is not None:
                    changes.append(description)
            if self._access_mutations and self.access_rng.random() < self.access_share:
                description = self._first_that_applies(self.access_rng, self._access_mutations, now)
                if description is not None:
                    changes.append(description)
            return changes

    @staticmethod
    def _first_that_applies(
        rng: random.Random, mutations: list[tuple[float, Mutation]], now: datetime
    ) -> str | None:
        for mutation in weighted_order(rng, mutations):
            description = mutation(now)
            if description is not None:
                return description
        return None
