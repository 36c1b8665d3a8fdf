from __future__ import annotations

from datetime import timedelta

import pytest

from mlbatch.spec.units import parse_duration, parse_memory


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("512Mi", 512),
        ("2Gi", 2048),
        ("1.5Gi", 1536),
        ("1Ti", 1024 * 1024),
        ("2G", 1908),  # 2 * 10**9 bytes = 1907.3 MiB, rounded up
        ("1500M", 1431),  # 1.5 * 10**9 bytes = 1430.5 MiB
        ("1T", 953_675),
        ("256", 256),
        (4096, 4096),
    ],
)
def test_parse_memory_accepts_binary_decimal_and_plain_mib(text, mib):
    assert parse_memory(text) == mib


@pytest.mark.parametrize("bad", ["2Q", "lots", "", "Gi", "-1Gi", 1.5, None, True, [2]])
def test_parse_memory_rejects_unknown_forms_and_lists_the_accepted_ones(bad):
    with pytest.raises(ValueError) as info:
        parse_memory(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "512Mi" in message and "2Gi" in message and "1500M" in message


@pytest.mark.parametrize("bad", [0, -5, "0Gi", "0"])
def test_parse_memory_rejects_zero_and_negative(bad):
    with pytest.raises(ValueError, match="more than 0"):
        parse_memory(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        ("1d2h3m4s", 93784),
        ("1.5h", 5400),
        ("90", 90),
        (90, 90),
        (timedelta(minutes=2), 120),
    ],
)
def test_parse_duration_accepts_units_and_plain_seconds(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["5x", "m", "", "30m1h", "1 hour", None, True, "-5s"])
def test_parse_duration_rejects_unknown_forms_and_lists_the_accepted_ones(bad):
    with pytest.raises(ValueError) as info:
        parse_duration(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "1h30m" in message and "seconds" in message


@pytest.mark.parametrize("bad", [0, -1, "0s", "0m", timedelta(0)])
def test_parse_duration_rejects_zero_and_negative(bad):
    with pytest.raises(ValueError, match="more than 0"):
        parse_duration(bad)


def test_parse_duration_rejects_a_duration_too_long_for_timedelta():
    with pytest.raises(ValueError, match="too long"):
        parse_duration("999999999999d")
