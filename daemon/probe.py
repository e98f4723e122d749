"""``accesstrail check``: prove each credential with the cheapest read that needs it.

A few requests per provider, read-only, and a line that says what the token can see, so a
person setting up the daemon learns at once whether the token, the account and the URL are right.
"""

from __future__ import annotations

from urllib.parse import quote

from daemon import errors
from daemon.config import Settings
from daemon.http import HttpPolicy
from daemon.paging import expect_list
from daemon.providers import planetscale, scalr


def probe_provider(settings: Settings, provider: str, policy: HttpPolicy | None = None) -> str:
    if provider == "scalr":
        with scalr.make_http(settings.scalr, policy) as http:
            account = scalr.fetch_account(http, settings.scalr.account)
            name = (account.get("attributes") or {}).get("name")
            return f"account {name} ({account.get('id')}) at {settings.scalr.origin}"
    with planetscale.make_http(settings.planetscale, policy) as http:
        path = f"{planetscale.API}/organizations"
        document = http.get_json(path, {"page": 1, "per_page": planetscale.PER_PAGE})
        names = [org.get("name") for org in expect_list(document, "data", "planetscale", path)]
        # Listing organisations needs no grant; reading members needs read_organization, which
        # every sync needs. A 404 here is PlanetScale's way of saying the grant is missing.
        for name in names:
            try:
                http.get_json(
                    f"{planetscale.API}/organizations/{quote(str(name), safe='')}/members",
                    {"page": 1, "per_page": 1},
                )
            except errors.NotFound:
                raise errors.CredentialsRefused(
                    "planetscale",
                    f"the service token cannot read the members of {name}",
                    hint="grant the token the read_organization access on that organisation",
                ) from None
        more = " and more" if document.get("next_page") else ""
        return (
            f"{len(names)} organisation(s) readable at {settings.planetscale.origin}: "
            f"{', '.join(str(n) for n in names)}{more}"
        )
