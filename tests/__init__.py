"""The test suite: ``helpers.py`` is its library, ``conftest.py`` its fixtures."""
