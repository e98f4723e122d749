"""The one shape every provider has, so that the rest of the daemon never names a provider.

``sync``, ``check``, ``status``, the scheduler and the benchmark iterate the registry in
``daemon/providers/__init__.py`` and use only what this record declares. Adding a provider is one
module that builds a ``Provider`` and one line in the registry; adding a listing is one more
scope inside that module's ``read``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.env import EnvValues
from daemon.http import HttpPolicy, ProviderHTTP
from daemon.providers.scopes import SnapshotBuilder
from store.model import Snapshot
from store.staging import Staging

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """The default progress sink: a sync in a pipe or under systemd shows none."""


@dataclass(frozen=True)
class Provider:
    """What the daemon knows of one provider.

    ``read_settings`` returns the provider's settings, or None when its token is not set (the
    provider is then not enabled). ``read`` fetches every listing into the builder's scopes;
    ``probe`` makes the cheapest reads that prove the credential and returns one line saying
    what the token can see.
    """

    name: str  # the word in the database, on the command line and in logs: "scalr"
    label: str  # how a person reads it: "Scalr"
    env_prefix: str  # its variables start with this: SCALR_API_TOKEN, SCALR_SYNC_INTERVAL
    token_variable: str  # the variable whose presence enables the provider
    how_to_enable: str  # what to set, as the "no provider is configured" error says it
    read_settings: Callable[[EnvValues], Any | None]
    make_http: Callable[[Any, HttpPolicy | None, threading.Event | None], ProviderHTTP]
    read: Callable[[ProviderHTTP, Any, SnapshotBuilder, Progress], None]
    probe: Callable[[ProviderHTTP, Any], str]

    def fetch_snapshot(
        self, http: ProviderHTTP, settings: Any, staging: Staging, progress: Progress = no_progress
    ) -> Snapshot:
        """Read everything into ``staging``; the scope rules decide what the snapshot holds."""
        builder = SnapshotBuilder(self.name, staging)
        self.read(http, settings, builder, progress)
        return builder.build()
