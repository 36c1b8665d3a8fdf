"""Memory sizes and durations as people write them in a spec ("2Gi", "1h30m")."""
from __future__ import annotations

import math
import re
from datetime import timedelta

from mlbatch.spec.checks import shown

MEMORY_FORMS = (
    "an integer number of MiB (2048), or a number with a unit: "
    "Ki, Mi, Gi, Ti (powers of 1024, e.g. 512Mi, 2Gi) or K, M, G, T (powers of 1000, e.g. 1500M, 2G)"
)
DURATION_FORMS = (
    "an integer number of seconds (90), or numbers with units d, h, m, s "
    "in that order (30s, 5m, 2h, 1h30m, 1d)"
)

_MIB = 1024 * 1024
# Binary units are exact; decimal ones follow the Kubernetes convention (G = 10**9 bytes),
# so "2G" is slightly less than "2Gi" and rounds up to whole MiB.
_MEMORY_UNITS = {
    "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4,
    "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)

_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$"
)


def parse_memory(value: object) -> int:
    """A memory size in MiB (> 0); an int is already MiB."""
    if isinstance(value, bool):  # YAML `yes` is a bool, and bool is an int subclass
        raise ValueError(f"memory must be {MEMORY_FORMS}; got {shown(value)}")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, str) and (match := _MEMORY_RE.match(value)):
        number, unit = match.groups()
        if unit is None:
            mib = math.ceil(float(number))
        else:
            mib = math.ceil(float(number) * _MEMORY_UNITS[unit.lower()] / _MIB)
    else:
        raise ValueError(f"memory must be {MEMORY_FORMS}; got {shown(value)}")
    if mib <= 0:
        raise ValueError(f"memory must be more than 0; got {shown(value)}")
    return mib


def parse_duration(value: object) -> timedelta:
    """A positive duration; an int is seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"duration must be {DURATION_FORMS}; got {shown(value)}")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = float(value.strip())
    elif isinstance(value, str) and value.strip() and (match := _DURATION_RE.match(value.strip())):
        seconds = sum(
            float(number) * factor
            for number, factor in zip(match.groups(), _DURATION_UNITS.values())
            if number is not None
        )
    else:
        raise ValueError(f"duration must be {DURATION_FORMS}; got {shown(value)}")
    if not seconds > 0:  # also rejects NaN
        raise ValueError(f"duration must be more than 0; got {shown(value)}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration is too long: {shown(value)}") from None
