"""``accesstrail check``: prove each credential with the cheapest reads that need it.

A few requests per provider, read-only, and a line that says what the token can see, so a
person setting up the daemon learns at once whether the token, the account and the URL are right.
What to read is each provider's own ``probe``; this runs it with the provider's HTTP client.
"""

from __future__ import annotations

from daemon.config import Settings
from daemon.http import HttpPolicy
from daemon.providers import PROVIDERS


def probe_provider(settings: Settings, provider: str, policy: HttpPolicy | None = None) -> str:
    spec = PROVIDERS[provider]
    provider_settings = settings.providers[provider]
    with spec.make_http(provider_settings, policy, None) as http:
        return spec.probe(http, provider_settings)
