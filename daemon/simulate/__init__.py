"""Built-in loopback simulators of the Scalr and PlanetScale APIs, used by the demo and the tests.

``server`` holds the shared HTTP, fault, paging and timestamp machinery and ``evolve`` what the two
fake worlds share. Each provider is a package: its ``world`` holds the state, a plausible
population and how it evolves over time, and its ``wire`` the HTTP server that renders that state
in the real API's format. Import from those modules directly; this package re-exports nothing.
"""
