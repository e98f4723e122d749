"""The simulated Scalr account: ``world`` holds its state and evolution, ``wire`` its API."""
