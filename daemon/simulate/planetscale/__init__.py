"""The simulated PlanetScale service: ``world`` holds its state and evolution, ``wire`` its API."""
