"""What the tests share that is not a fixture: policies, waiting, configuration, syncing, reading
the database back, the PlanetScale world both PlanetScale suites sync, and simulators that also
note when each request arrived.

Nothing here mocks the sync path: the helpers start nothing themselves and only drive the real
product (``sync_provider``, the CLI) against the real simulators the fixtures in ``conftest.py``
start. Test modules import from here; no test module imports another one, or ``conftest``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from click.testing import CliRunner

from daemon.cli import main
from daemon.config import Settings, load_settings
from daemon.http import HttpPolicy
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSTeam, PSUser
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState, ScalrUser
from daemon.sync import SyncOutcome, sync_provider

T = TypeVar("T")

# -- timing ------------------------------------------------------------------------------------

#: The policy tests sync with unless they test a timeout: retries and back-off shrunk to
#: milliseconds so fault tests are quick, and timeouts far above what a simulator on 127.0.0.1
#: takes to answer even on a loaded 2-core machine (milliseconds), so no answer is ever late by
#: accident and every exact request count stays exact.
TEST_POLICY = HttpPolicy(
    connect_timeout=10.0,
    read_timeout=10.0,
    request_deadline=30.0,
    stall_limit=40.0,
    max_attempts=4,
    backoff_base=0.01,
    backoff_cap=0.05,
)

#: Production timing shrunk so that tests *of* timeouts, deadlines and stalls take seconds, not
#: minutes. Only those tests use it: a 1 s read timeout is a duration, not a state.
FAST_POLICY = dataclasses.replace(
    TEST_POLICY, connect_timeout=1.0, read_timeout=1.0, request_deadline=4.0, stall_limit=6.0
)


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    The one way a test waits: for a state (a finished run, a request the simulator saw, a server
    that answers), never for a duration. ``timeout`` only bounds a wait that would otherwise
    hang; each caller says why its bound is generous. Fails with ``what`` when it runs out.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g}s for {what}; it never happened")
        time.sleep(0.05)


# -- configuration -----------------------------------------------------------------------------


def scalr_env(sim: ScalrSimulator) -> dict[str, str]:
    return {
        "SCALR_API_TOKEN": sim.state.token,
        "SCALR_ACCOUNT": sim.state.account_name,
        "SCALR_BASE_URL": sim.url,
    }


def planetscale_env(sim: PlanetScaleSimulator, per_minute: int = 6000) -> dict[str, str]:
    return {
        "PLANETSCALE_SERVICE_TOKEN": f"{sim.state.token_id}:{sim.state.token_secret}",
        "PLANETSCALE_API_URL": sim.url,
        "PLANETSCALE_REQUESTS_PER_MINUTE": str(per_minute),
    }


def settings_for(
    db_path: Path,
    *,
    scalr: ScalrSimulator | None = None,
    planetscale: PlanetScaleSimulator | None = None,
    **extra: str,
) -> Settings:
    """Settings as a user's environment would give them, pointed at the simulators."""
    env: dict[str, str] = dict(extra)
    if scalr is not None:
        env.update(scalr_env(scalr))
    if planetscale is not None:
        env.update(planetscale_env(planetscale))
    return load_settings(environ=env, db_override=db_path)


def run_cli(args: list[str], env: dict[str, str]):
    """Invoke ``accesstrail`` in-process with exactly ``env`` as its provider configuration."""
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def start_daemon(env: dict[str, str]) -> subprocess.Popen:
    """``accesstrail run`` in its own process, as systemd starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` nobody listens on right now (bound, then released): for a server a
    test starts, or for a connection that must be refused."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(db_path: Path) -> Iterator[str]:
    """``accesstrail serve`` (Datasette) over ``db_path`` in its own process, as a user starts it;
    yields its base URL once it answers, and stops it afterwards."""
    port = free_port()
    env = {**os.environ, "ACCESSTRAIL_PORT": str(port), "ACCESSTRAIL_HOST": "127.0.0.1"}
    log_path = db_path.with_name(db_path.name + ".serve.log")
    with open(log_path, "w") as log:  # a file, not a pipe nobody reads, which could fill up
        server = subprocess.Popen(
            [sys.executable, "-m", "daemon", "serve", "--db", str(db_path)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert server.poll() is None, f"serve exited: {log_path.read_text()}"
        try:
            httpx.get(base + "/-/versions.json", timeout=5)
        except httpx.TransportError:
            return False
        return True

    try:
        # Datasette starts in a second or two; 60 s is room for a loaded machine.
        wait_for(answers, 60, "`accesstrail serve` to answer")
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- syncing -----------------------------------------------------------------------------------


def sync(
    db_path: Path,
    *,
    scalr: ScalrSimulator | None = None,
    planetscale: PlanetScaleSimulator | None = None,
    policy: HttpPolicy = TEST_POLICY,
    **options,
) -> SyncOutcome:
    """Sync the one provider whose simulator is given into the test database, in-process."""
    given = (("scalr", scalr), ("planetscale", planetscale))
    (provider,) = [name for name, sim in given if sim is not None]
    settings = settings_for(db_path, scalr=scalr, planetscale=planetscale)
    return sync_provider(settings, provider, policy=policy, **options)


# -- reading the database ----------------------------------------------------------------------


def query(db_path: Path, sql: str, params=()) -> list[dict]:
    """Read the database the way an auditor would: plain SQL on the file."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def run_row(db_path: Path, run_id: int) -> dict:
    """The ``sync_runs`` row of one run."""
    (row,) = query(db_path, "SELECT * FROM sync_runs WHERE id = ?", (run_id,))
    return row


def db_now() -> str:
    """Now, in the database's fixed-width millisecond form (comparable with ``started_at``)."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def instant_after(stamp: str) -> str:
    """The first database instant later than ``stamp``, waited for: a millisecond at most, so
    the 5 s bound is only there to fail loudly if the clock stood still."""
    return wait_for(lambda: (now := db_now()) > stamp and now, 5, f"the clock to pass {stamp}")


def next_round(db_path: Path) -> None:
    """Wait until the next round's runs will start strictly after the last run ended."""
    (last,) = query(db_path, "SELECT MAX(finished_at) AS stamp FROM sync_runs")
    instant_after(last["stamp"])


def snapshot_tables(db_path: Path) -> dict[str, list[tuple]]:
    """Every public table's full content, for "nothing else changed" assertions."""
    tables = [
        "users",
        "organizations",
        "teams",
        "memberships",
        "changes",
        "user_versions",
        "membership_versions",
        "roles",
        "grants",
        "grant_versions",
        "credentials",
        "baselines",
    ]
    conn = sqlite3.connect(db_path)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


#: The columns of a ``changes`` row that say what changed (the rest say when and in which run).
CHANGE_FIELDS = (
    "kind",
    "user_id",
    "email",
    "resource_type",
    "resource_id",
    "resource_name",
    "field",
    "old_value",
    "new_value",
)

#: The tracked columns of a user, in ``users`` and ``user_versions`` alike.
USER_FIELDS = (
    "email",
    "name",
    "account_type",
    "status",
    "provider_status",
    "last_sign_in_at",
    "mfa_enabled",
)


def change(kind: str, **columns) -> dict:
    """A change row as a test expects it: every column of CHANGE_FIELDS not named is NULL."""
    row = {name: None for name in CHANGE_FIELDS}
    row.update(kind=kind, **columns)
    return row


def of(user_id: str, email: str) -> dict:
    """The user columns of a change row."""
    return dict(user_id=user_id, email=email)


def organization(org_id: str, name: str) -> dict:
    """The resource columns of a change row about an organisation."""
    return dict(resource_type="organization", resource_id=org_id, resource_name=name)


def team(team_id: str, name: str) -> dict:
    """The resource columns of a change row about a team."""
    return dict(resource_type="team", resource_id=team_id, resource_name=name)


def sort_changes(rows: list[dict]) -> list[dict]:
    """Change rows in one canonical order, so two lists compare as multisets."""

    def key(row: dict) -> tuple:
        return tuple((row[k] is not None, str(row[k])) for k in CHANGE_FIELDS)

    return sorted(rows, key=key)


def changes_of(db_path: Path, run_id: int) -> list[dict]:
    """The CHANGE_FIELDS of every change one run recorded, in the order of ``sort_changes``."""
    rows = query(
        db_path, f"SELECT {', '.join(CHANGE_FIELDS)} FROM changes WHERE run_id = ?", (run_id,)
    )
    return sort_changes(rows)


def versions_valid_at(db_path: Path, table: str, provider: str, instant: str) -> list[dict]:
    """The rows of a version table valid at ``instant``, read as an auditor's as-of query would."""
    return query(
        db_path,
        f"SELECT * FROM {table} WHERE provider = ? AND valid_from <= ? "
        "AND (valid_to IS NULL OR valid_to > ?)",
        [provider, instant, instant],
    )


def users_as_of(db_path: Path, provider: str, instant: str) -> dict[str, tuple]:
    """id → USER_FIELDS values, from ``user_versions`` alone, as they were at ``instant``."""
    rows = versions_valid_at(db_path, "user_versions", provider, instant)
    found = {row["id"]: tuple(row[f] for f in USER_FIELDS) for row in rows}
    assert len(found) == len(rows), f"two versions of one user valid at {instant}"
    return found


def memberships_as_of(db_path: Path, provider: str, instant: str) -> dict[tuple, str]:
    """(resource_type, resource_id, user_id) → role, from ``membership_versions`` alone."""
    rows = versions_valid_at(db_path, "membership_versions", provider, instant)
    found = {(r["resource_type"], r["resource_id"], r["user_id"]): r["role"] for r in rows}
    assert len(found) == len(rows), f"two versions of one membership valid at {instant}"
    return found


# -- Scalr's wire values in the database's terms -------------------------------------------------

#: How the database words Scalr's statuses (``provider_status`` keeps Scalr's own word).
SCALR_STATUS = {"Active": "enabled", "Pending": "enabled", "Inactive": "disabled"}


def scalr_time(value: str | None) -> str | None:
    """Scalr's ``2026-09-01T08:00:00Z`` in the database's ``2026-09-01T08:00:00.000Z`` form."""
    if value is None:
        return None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value), value
    return value[:-1] + ".000Z"


# -- the PlanetScale world both PlanetScale suites sync ------------------------------------------

ACME, GLOBEX = "orgacme00001", "orgglobex001"
ALICE, BOB, CAROL, DAVE = "ps0alice0001", "ps0bob000001", "ps0carol0001", "ps0dave00001"
ERIN, FRANK, GINA = "ps0erin00001", "ps0frank0001", "ps0gina00001"
BULK = [f"ps0bulk{n:05d}" for n in range(230)]

EVERYONE, PLATFORM, DATA, EMPTY = "tm0everyone1", "tm0platform1", "tm0data00001", "tm0empty0001"
SQUADS = [f"tm0squad{n:04d}" for n in range(13)]
OPS, ANALYTICS, QUIET = "tm0gxops0001", "tm0gxana0001", "tm0gxqui0001"


def world() -> PlanetScaleState:
    """Two organisations, a user in both, roles member/admin/analyst, 20 teams, one of 230 members.

    acme:   alice admin, bob member, carol analyst, dave member, 230 bulk members (234: 3 pages).
            teams: Everyone (the 230 bulk users), Platform (alice, bob), Data (carol, dave),
            Empty, and 13 squads of one bulk user each.
    globex: dave admin, erin member, frank analyst, gina member (in no team).
            teams: Ops (dave, erin), Analytics (frank), Quiet (empty).
    """
    state = PlanetScaleState()
    people = [
        PSUser(
            ALICE,
            "alice@acme.example",
            "Alice Archer",
            two_factor_auth_configured=True,
            created_at="2023-05-06T07:08:09.000Z",
        ),
        PSUser(BOB, "bob@acme.example", "Bob Baker"),
        PSUser(CAROL, "carol@acme.example", "Carol Cole", two_factor_auth_configured=True),
        PSUser(DAVE, "dave@acme.example", "Dave Dunn", two_factor_auth_configured=True),
        PSUser(ERIN, "erin@globex.example", "Erin East"),
        PSUser(FRANK, "frank@globex.example", "Frank Fox", two_factor_auth_configured=True),
        PSUser(GINA, "gina@globex.example", "Gina Gale"),
    ]
    people += [
        PSUser(
            ident, f"bulk{n}@acme.example", f"Bulk User {n}", two_factor_auth_configured=n % 2 == 0
        )
        for n, ident in enumerate(BULK)
    ]
    state.users = {user.id: user for user in people}

    acme = PSOrganization(
        ACME, "acme", members={ALICE: "admin", BOB: "member", CAROL: "analyst", DAVE: "member"}
    )
    acme.members.update({ident: "member" for ident in BULK})
    acme.teams[EVERYONE] = PSTeam(EVERYONE, "Everyone", "everyone", "All staff", set(BULK))
    acme.teams[PLATFORM] = PSTeam(
        PLATFORM, "Platform", "platform", "Runs the platform", {ALICE, BOB}
    )
    acme.teams[DATA] = PSTeam(DATA, "Data", "data", None, {CAROL, DAVE})
    acme.teams[EMPTY] = PSTeam(EMPTY, "Empty", "empty")
    for n, ident in enumerate(SQUADS):
        acme.teams[ident] = PSTeam(ident, f"Squad {n}", f"squad-{n}", None, {BULK[n]})

    globex = PSOrganization(
        GLOBEX, "globex", members={DAVE: "admin", ERIN: "member", FRANK: "analyst", GINA: "member"}
    )
    globex.teams[OPS] = PSTeam(OPS, "Ops", "ops", "On call", {DAVE, ERIN})
    globex.teams[ANALYTICS] = PSTeam(ANALYTICS, "Analytics", "analytics", None, {FRANK})
    globex.teams[QUIET] = PSTeam(QUIET, "Quiet", "quiet")
    state.organizations = {ACME: acme, GLOBEX: globex}
    return state


def org_members(db_path: Path, org_id: str) -> dict[str, str]:
    """Current (not removed) PlanetScale organisation memberships: user id -> role."""
    rows = query(
        db_path,
        "SELECT user_id, role FROM memberships WHERE provider = 'planetscale' "
        "AND resource_type = 'organization' AND resource_id = ? AND removed_at IS NULL",
        (org_id,),
    )
    return {r["user_id"]: r["role"] for r in rows}


def team_members(db_path: Path, team_id: str) -> set[str]:
    """Current (not removed) members of one PlanetScale team; their role is always 'member'."""
    rows = query(
        db_path,
        "SELECT user_id, role FROM memberships WHERE provider = 'planetscale' "
        "AND resource_type = 'team' AND resource_id = ? AND removed_at IS NULL",
        (team_id,),
    )
    assert {r["role"] for r in rows} <= {"member"}
    return {r["user_id"] for r in rows}


# -- simulators that also note when each request arrived ---------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One request as it reached a watched simulator."""

    path: str
    page: str | None  # the raw page parameter, if any
    monotonic: float  # time.monotonic() on arrival, for gaps between requests
    wall: float  # time.time() on arrival, to compare with an HTTP-date


class Watched:
    """Mixin for a simulator: notes each request's arrival and how many were answered at once.

    ``before_answer``, when set, runs on the server's thread before a request is answered, so a
    test can change the world at an exact point of a sync (between two pages, say) or hold a
    request until another one has arrived, instead of guessing with a delay.
    """

    page_param = "page"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals: list[Arrival] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.before_answer: Callable | None = None
        self._flight_lock = threading.Lock()

    def _answer(self, request):
        with self._flight_lock:
            page = request.query.get(self.page_param, [None])[0]
            self.arrivals.append(Arrival(request.path, page, time.monotonic(), time.time()))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.before_answer is not None:
                self.before_answer(request)
            return super()._answer(request)
        finally:
            with self._flight_lock:
                self.in_flight -= 1

    def arrived(self, path_suffix: str) -> list[Arrival]:
        """The arrivals whose path ends with ``path_suffix``, in order."""
        with self._flight_lock:
            return [a for a in self.arrivals if a.path.endswith(path_suffix)]


class WatchedScalr(Watched, ScalrSimulator):
    page_param = "page[number]"


class WatchedPlanetScale(Watched, PlanetScaleSimulator):
    page_param = "page"


# -- the small audit world the Datasette and browser suites serve ------------------------------


def days_ago(days: int) -> str:
    """Scalr's form of the instant ``days`` days before now."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def audit_world() -> tuple[ScalrState, PlanetScaleState]:
    """Scalr: alice (signed in 200 days ago), bob (2), carol (5), dave (never). PlanetScale
    organisation acme: bob admin, carol and erin members; bob and carol are in both."""
    scalr_state, ps_state = ScalrState(), PlanetScaleState()
    for ident, email, login in (
        ("user-alice", "alice@example.com", days_ago(200)),
        ("user-bob", "bob@example.com", days_ago(2)),
        ("user-carol", "carol@example.com", days_ago(5)),
        ("user-dave", "dave@example.com", None),
    ):
        scalr_state.users[ident] = ScalrUser(id=ident, email=email, last_login_at=login)
    for ident, email in (
        ("pbob", "bob@example.com"),
        ("pcarol", "carol@example.com"),
        ("perin", "erin@example.com"),
    ):
        ps_state.users[ident] = PSUser(id=ident, email=email, name=ident[1:].title())
    ps_state.organizations["oacme"] = PSOrganization(
        id="oacme", name="acme", members={"pbob": "admin", "pcarol": "member", "perin": "member"}
    )
    return scalr_state, ps_state


def sync_two_audit_rounds(db_path: Path, scalr_sim, ps_sim) -> None:
    """Sync ``audit_world()`` (served by the two simulators) twice, with known changes between:
    carol leaves Scalr; bob hands PlanetScale admin of acme over to erin."""
    sync(db_path, scalr=scalr_sim)
    sync(db_path, planetscale=ps_sim)
    next_round(db_path)  # the second round's runs start strictly after the first round's ended
    del scalr_sim.state.users["user-carol"]
    ps_sim.state.organizations["oacme"].members.update({"pbob": "member", "perin": "admin"})
    sync(db_path, scalr=scalr_sim)
    sync(db_path, planetscale=ps_sim)
