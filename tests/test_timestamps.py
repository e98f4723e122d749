"""The database's one timestamp format, reached from every ISO-8601 spelling a provider sends."""

from __future__ import annotations

import pytest

from store import timestamps


@pytest.mark.parametrize(
    "given, stored",
    [
        ("2026-08-19T16:40:02Z", "2026-08-19T16:40:02.000Z"),
        ("2023-05-06T07:08:09.000Z", "2023-05-06T07:08:09.000Z"),
        ("2023-05-06 07:08:09.1z", "2023-05-06T07:08:09.100Z"),
        ("2023-05-06T07:08:09.123456789Z", "2023-05-06T07:08:09.123Z"),
        ("2023-05-06T07:08:09", "2023-05-06T07:08:09.000Z"),
        ("2023-05-06T00:08:09+02:00", "2023-05-05T22:08:09.000Z"),
        ("2023-05-06T23:08:09.5-0130", "2023-05-07T00:38:09.500Z"),
        (" 2024-02-29T12:00:00Z ", "2024-02-29T12:00:00.000Z"),
    ],
)
def test_normalise_spells_every_instant_the_same_way(given, stored):
    assert timestamps.normalise(given) == stored
    assert timestamps.format_instant(timestamps.parse_instant(given)) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "2023-13-06T07:08:09Z",
        "2023-02-30T07:08:09Z",
        "2023-05-06T24:00:00Z",
        "2023-05-06T07:60:00Z",
        "2023-05-06",
        "yesterday",
    ],
)
def test_normalise_refuses_what_is_not_an_instant(bad):
    with pytest.raises(ValueError):
        timestamps.normalise(bad)


def test_normalise_keeps_none_and_empty_as_none():
    assert timestamps.normalise(None) is None
    assert timestamps.normalise("") is None
