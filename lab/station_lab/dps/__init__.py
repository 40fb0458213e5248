"""The local DPS stand-in: the Azure DPS service (enrollment) and device registration APIs.

Start it with ``station lab dps`` or in-process with :class:`LocalDps` / :func:`running_dps`.
See docs/lab-dps.md for what it implements and its knobs.
"""

from __future__ import annotations

from station_lab.dps.allocation import LinkedHub
from station_lab.dps.app import (
    DEFAULT_ID_SCOPE,
    GLOBAL_ENDPOINT,
    DpsOptions,
    LocalDps,
    running_dps,
)
from station_lab.dps.limits import FaultPlan
from station_lab.dps.server import read_access_log
from station_lab.dps.versions import (
    CREDENTIAL_POLICY_API_VERSIONS,
    DEFAULT_API_VERSIONS,
    STABLE_API_VERSION,
)

__all__ = [
    "CREDENTIAL_POLICY_API_VERSIONS",
    "DEFAULT_API_VERSIONS",
    "DEFAULT_ID_SCOPE",
    "GLOBAL_ENDPOINT",
    "STABLE_API_VERSION",
    "DpsOptions",
    "FaultPlan",
    "LinkedHub",
    "LocalDps",
    "read_access_log",
    "running_dps",
]
