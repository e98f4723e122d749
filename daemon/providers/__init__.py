"""The providers accesstrail reads, in the order every command reports them.

Each module builds one ``Provider`` record (``base.py``); this registry is the only list of
them. A third provider is its module plus one entry here.
"""

from daemon.providers import planetscale, scalr
from daemon.providers.base import Provider

PROVIDERS: dict[str, Provider] = {
    provider.name: provider for provider in (scalr.PROVIDER, planetscale.PROVIDER)
}
