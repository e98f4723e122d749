"""The floor: the least wall time in which the minimum pages can be read at all.

Every minimum page fetched once, with the sync's concurrency per provider (both providers at
once, as a sync reads them), each body read and decoded as JSON, and nothing else: no paging
order, no checks, no database. A sync cannot beat it; its wall time divided by this is the
benchmark's ratio. With PlanetScale's 600-a-minute limit the floor is also at least PlanetScale's
minimum pages at 10 a second (:func:`limited_floor`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.minimum import PageRequest

CONCURRENCY = 8  # daemon.http.HttpPolicy.concurrency: requests in flight to one provider
PS_REQUESTS_PER_SECOND = 600 / 60


def provider_headers(config: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each provider's origin-independent request headers, as its client sends them."""
    return {
        "scalr": {
            "Authorization": f"Bearer {config['SCALR_API_TOKEN']}",
            "Accept": "application/vnd.api+json",
        },
        "planetscale": {
            "Authorization": config["PLANETSCALE_SERVICE_TOKEN"],
            "Accept": "application/json",
        },
    }


def origins(config: dict[str, str]) -> dict[str, str]:
    return {"scalr": config["SCALR_BASE_URL"], "planetscale": config["PLANETSCALE_API_URL"]}


def bare_fetch(config: dict[str, str], pages: dict[str, list[PageRequest]]) -> float:
    """Seconds to GET and decode every page in ``pages``; raises on any non-200 answer."""
    headers, bases = provider_headers(config), origins(config)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    clients = {
        name: httpx.Client(base_url=bases[name], headers=headers[name], limits=limits, timeout=60)
        for name in pages
    }
    pools = {name: ThreadPoolExecutor(CONCURRENCY) for name in pages}
    try:
        started = time.perf_counter()
        futures = [
            pools[name].submit(_get, clients[name], page)
            for name, listing in pages.items()
            for page in listing
        ]
        for future in futures:
            future.result()
        return time.perf_counter() - started
    finally:
        for pool in pools.values():
            pool.shutdown()
        for client in clients.values():
            client.close()


def _get(client: httpx.Client, page: PageRequest) -> None:
    response = client.get(page.path, params=dict(page.params))
    if response.status_code != 200:
        raise RuntimeError(f"floor: {page.path} answered {response.status_code}")
    response.json()


def limited_floor(bare: float, planetscale_pages: int) -> float:
    """The floor under PlanetScale's 600-a-minute limit."""
    return max(bare, planetscale_pages / PS_REQUESTS_PER_SECOND)
