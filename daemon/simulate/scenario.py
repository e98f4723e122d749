"""A scripted month on top of the random evolution: the events a demo's history should show.

The evolvers (:class:`~daemon.simulate.scalr.world.ScalrEvolver`,
:class:`~daemon.simulate.planetscale.world.PlanetScaleEvolver`) change the worlds at random; a
:class:`Scenario` adds, on days spread over the simulated period, the events an auditor looks for:
a joiner, a token created and never used, people who stop signing in, a role granted to a team, team
moves, a promotion to admin in both providers, a disable, an organisation the token stops seeing,
leavers. Every day it also signs in most of the active people who are not dormant, as a real company
does, so that dormancy stands out.

It draws from its own generator and changes the states only through their consistency rules (a
leaver loses their policies and team memberships, an unused token is reserved from the random
``_use_token``), so the worlds stay what the simulators can serve.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.simulate.evolve import fresh_id, person_label, random_person, unique_email
from daemon.simulate.planetscale.world import PlanetScaleEvolver, PSUser, format_ps_time
from daemon.simulate.scalr.world import (
    ADMIN_ROLE_ID,
    ScalrEvolver,
    ScalrUser,
    _add_service_account,
    _scalr_domain,
    _scalr_emails,
    add_policy,
    add_token,
    forget_subject,
    format_scalr_time,
)

#: Share of the active, non-dormant people who sign in to Scalr on a given day.
DAILY_SIGN_IN_SHARE = 0.45
#: How many people stop signing in.
DORMANT_PEOPLE = 3


@dataclass(frozen=True)
class Planned:
    """One scripted event: where in the period it happens (0..1) and what it does."""

    at: float
    name: str
    apply: Callable[[datetime], str | None]


class Scenario:
    """Schedules the named events over ``days`` days and applies each on its day."""

    def __init__(
        self,
        scalr: ScalrEvolver,
        planetscale: PlanetScaleEvolver,
        rng: random.Random,
        days: int,
    ):
        self.scalr, self.planetscale, self.rng, self.days = scalr, planetscale, rng, days
        self.joiner: str | None = None  # the Scalr id of the scripted joiner
        self.unused_token: str | None = None
        self.dormant: set[str] = set()  # Scalr ids of the people who stopped signing in
        plan = [
            Planned(0.10, "joiner", self._joiner),
            Planned(0.15, "unused token", self._unused_token),
            Planned(0.20, "dormancy", self._dormancy),
            Planned(0.30, "role granted", self._grant_team_role),
            Planned(0.40, "team moves", self._team_moves),
            Planned(0.50, "promotion", self._promotion),
            Planned(0.60, "disable", self._disable),
            Planned(0.75, "organisation lost", self._organisation_lost),
            Planned(0.85, "leavers", self._leavers),
            Planned(0.95, "dormant disabled", self._disable_dormant),
        ]
        self.schedule: dict[int, list[Planned]] = {}
        for event in plan:
            self.schedule.setdefault(self.day_of(event.at), []).append(event)

    def day_of(self, at: float) -> int:
        return min(self.days, max(1, round(at * self.days)))

    def step(self, day: int, now: datetime) -> tuple[list[str], int]:
        """Apply day ``day``'s events at ``now``: their descriptions, and how many signed in."""
        with self.scalr.state.lock, self.planetscale.state.lock:
            lines = []
            for event in self.schedule.get(day, []):
                line = event.apply(now)
                if line is not None:
                    lines.append(line)
            return lines, self._daily_sign_ins(now)

    # -- helpers ---------------------------------------------------------------------------------

    def _active(self) -> list[ScalrUser]:
        """Active Scalr users, but for the dormant and the scripted joiner."""
        users = self.scalr.state.users
        skip = self.dormant | {self.joiner or ""}
        return [users[k] for k in sorted(users) if users[k].status == "Active" and k not in skip]

    def _daily_sign_ins(self, now: datetime) -> int:
        count = 0
        for user in self._active():
            if self.rng.random() < DAILY_SIGN_IN_SHARE:
                moment = now - timedelta(seconds=self.rng.randint(0, 8 * 3600))
                user.last_login_at = format_scalr_time(moment)
                count += 1
        if self.joiner in self.scalr.state.users:  # a new hire signs in every day
            self.scalr.state.users[self.joiner].last_login_at = format_scalr_time(now)
            count += 1
        return count

    def _scalr_label(self, user: ScalrUser) -> str:
        return person_label(user.full_name, user.email)

    def _ps_label(self, user_id: str) -> str:
        user = self.planetscale.state.users[user_id]
        return person_label(user.name, user.email)

    def _ps_orgs(self) -> list[str]:
        return sorted(self.planetscale.state.organizations)

    # -- the events ------------------------------------------------------------------------------

    def _joiner(self, now: datetime) -> str:
        state = self.scalr.state
        first, last = random_person(self.rng)
        email = unique_email(
            f"{first}.{last}",
            _scalr_domain(state),
            _scalr_emails(state, self.scalr.departed.values()),
        )
        taken = set(state.users) | set(self.scalr.departed)
        ident = fresh_id("user", self.rng, taken)
        user = ScalrUser(
            id=ident,
            email=email,
            full_name=f"{first} {last}",
            last_login_at=format_scalr_time(now),
            created_at=format_scalr_time(now),
        )
        team = next(iter(sorted(state.teams)), None)
        if team is not None:
            user.teams.add(team)
        state.users[ident] = user
        self.joiner = ident
        where = f" in team {state.teams[team].name}" if team else ""
        text = f"{self._scalr_label(user)} joined Scalr{where}"
        orgs = self._ps_orgs()
        if orgs:
            ps = self.planetscale.state
            ps_id = fresh_id("", self.rng, ps.users)
            ps.users[ps_id] = PSUser(
                id=ps_id,
                email=email,
                name=f"{first} {last}",
                display_name=f"{first} {last}",
                created_at=format_ps_time(now),
            )
            org = ps.organizations[orgs[0]]
            org.members[ps_id] = "member"
            org.joined_at[ps_id] = format_ps_time(now)
            text += f" and PlanetScale {org.name}"
        return text

    def _unused_token(self, now: datetime) -> str:
        state = self.scalr.state
        active = [
            a
            for a in sorted(state.service_accounts)
            if state.service_accounts[a].status == "Active"
        ]
        if active:
            sa_id = active[0]
        else:
            taken = {sa.name for sa in state.service_accounts.values()}
            sa_id = _add_service_account(state, self.rng, now, taken).id
        token = add_token(state, self.rng, sa_id, now, None, None)
        self.scalr.reserved |= {sa_id, token.id}
        self.unused_token = token.id
        name = state.service_accounts[sa_id].name
        return f"token {token.name} created for service account {name}, never used"

    def _dormancy(self, now: datetime) -> str | None:
        people = [u for u in self._active() if u.last_login_at]
        chosen = self.rng.sample(people, k=min(DORMANT_PEOPLE, len(people)))
        if not chosen:
            return None
        self.dormant |= {u.id for u in chosen}
        self.scalr.reserved |= self.dormant  # no random sign-in, leave or disable either
        names = ", ".join(self._scalr_label(u) for u in chosen)
        return f"{names} stop signing in"

    def _grant_team_role(self, now: datetime) -> str | None:
        state = self.scalr.state
        if not state.teams:
            return None
        team_id = self.rng.choice(sorted(state.teams))
        roles = sorted(state.roles, key=lambda r: (state.roles[r].name != "Deployer", r))
        role = next((r for r in roles if r != ADMIN_ROLE_ID), roles[0])
        envs = sorted(
            state.environments, key=lambda e: (state.environments[e].name != "production", e)
        )
        scope = ("environment", envs[0]) if envs else ("account", state.account_id)
        add_policy(state, self.rng, ("team", team_id), scope, [role])
        where = f"environment {state.environments[envs[0]].name}" if envs else "the account"
        return f"team {state.teams[team_id].name} granted role {state.roles[role].name} on {where}"

    def _team_moves(self, now: datetime) -> str | None:
        lines = []
        state = self.scalr.state
        movers = [u for u in self._active() if u.teams and set(state.teams) - u.teams]
        if movers:
            user = self.rng.choice(movers)
            old = self.rng.choice(sorted(user.teams))
            new = self.rng.choice(sorted(set(state.teams) - user.teams))
            user.teams.discard(old)
            user.teams.add(new)
            lines.append(
                f"{self._scalr_label(user)} moved from team {state.teams[old].name} "
                f"to {state.teams[new].name}"
            )
        for org_id in self._ps_orgs():
            org = self.planetscale.state.organizations[org_id]
            options = [
                (u, a, b)
                for a in sorted(org.teams)
                for u in sorted(org.teams[a].members)
                for b in sorted(org.teams)
                if u not in org.teams[b].members
            ]
            if options:
                user_id, a, b = self.rng.choice(options)
                org.teams[a].members.discard(user_id)
                org.teams[a].joined_at.pop(user_id, None)
                org.teams[b].members.add(user_id)
                org.teams[b].joined_at[user_id] = format_ps_time(now)
                lines.append(
                    f"{self._ps_label(user_id)} moved from team {org.name}/{org.teams[a].slug} "
                    f"to {org.teams[b].slug}"
                )
                break
        return "; ".join(lines) or None

    def _promotion(self, now: datetime) -> str | None:
        lines = []
        state = self.scalr.state
        admins = {
            p.subject_id
            for p in state.access_policies.values()
            if p.subject_kind == "user" and ADMIN_ROLE_ID in p.role_ids
        }
        candidates = [u for u in self._active() if u.id not in admins]
        if candidates:
            user = self.rng.choice(candidates)
            add_policy(
                state, self.rng, ("user", user.id), ("account", state.account_id), [ADMIN_ROLE_ID]
            )
            lines.append(
                f"{self._scalr_label(user)} made admin of Scalr account {state.account_name}"
            )
        for org_id in self._ps_orgs():
            org = self.planetscale.state.organizations[org_id]
            members = sorted(u for u, role in org.members.items() if role != "admin")
            if members:
                user_id = self.rng.choice(members)
                old = org.members[user_id]
                org.members[user_id] = "admin"
                lines.append(f"{self._ps_label(user_id)} made admin of {org.name} (was {old})")
                break
        return "; ".join(lines) or None

    def _disable(self, now: datetime) -> str | None:
        people = self._active()
        if not people:
            return None
        user = self.rng.choice(people)
        user.status = "Inactive"
        return f"{self._scalr_label(user)} disabled in Scalr"

    def _organisation_lost(self, now: datetime) -> str | None:
        ps = self.planetscale.state
        orgs = self._ps_orgs()
        if len(orgs) < 2:
            return None
        lost = min(orgs, key=lambda o: (len(ps.organizations[o].members), o))
        org = ps.organizations.pop(lost)
        return f"the PlanetScale token no longer sees organisation {org.name}"

    def _leavers(self, now: datetime) -> str | None:
        lines = []
        state = self.scalr.state
        dormant = sorted(u for u in self.dormant if u in state.users)
        leaver = state.users.get(dormant[0]) if dormant else None
        if leaver is None:
            people = self._active()
            leaver = self.rng.choice(people) if people else None
        if leaver is not None:
            del state.users[leaver.id]
            forget_subject(state, "user", leaver.id)
            leaver.teams.clear()
            self.scalr.departed[leaver.id] = leaver
            self.dormant.discard(leaver.id)
            self.scalr.reserved.discard(leaver.id)
            lines.append(f"{self._scalr_label(leaver)} left Scalr")
        for org_id in self._ps_orgs():
            org = self.planetscale.state.organizations[org_id]
            members = sorted(u for u, role in org.members.items() if role != "admin")
            if members:
                user_id = self.rng.choice(members)
                del org.members[user_id]
                org.joined_at.pop(user_id, None)
                for team in org.teams.values():
                    team.members.discard(user_id)
                    team.joined_at.pop(user_id, None)
                lines.append(f"{self._ps_label(user_id)} left PlanetScale {org.name}")
                break
        return "; ".join(lines) or None

    def _disable_dormant(self, now: datetime) -> str | None:
        state = self.scalr.state
        dormant = [
            state.users[u]
            for u in sorted(self.dormant)
            if u in state.users and state.users[u].status == "Active"
        ]
        if not dormant:
            return None
        user = dormant[0]
        user.status = "Inactive"
        return f"{self._scalr_label(user)} disabled in Scalr after weeks without signing in"
