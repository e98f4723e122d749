"""Built-in loopback simulators of the Scalr and PlanetScale APIs, used by the demo and the tests.

``server`` holds the shared HTTP/fault machinery, ``scalr`` and ``planetscale`` the two providers,
and ``world`` the evolving fake organisations that feed them.
"""

from daemon.simulate.planetscale import (
    PlanetScaleSimulator,
    PlanetScaleState,
    PSOrganization,
    PSTeam,
    PSUser,
)
from daemon.simulate.scalr import (
    ScalrServiceAccount,
    ScalrSimulator,
    ScalrState,
    ScalrTeam,
    ScalrUser,
)
from daemon.simulate.server import Fault, RecordedRequest, SimServer

__all__ = [
    "Fault",
    "PSOrganization",
    "PSTeam",
    "PSUser",
    "PlanetScaleSimulator",
    "PlanetScaleState",
    "RecordedRequest",
    "ScalrServiceAccount",
    "ScalrSimulator",
    "ScalrState",
    "ScalrTeam",
    "ScalrUser",
    "SimServer",
]
