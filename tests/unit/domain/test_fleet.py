"""The fleet ledger's pure rules: claim keys and their order, modes per product, the stop text."""

from __future__ import annotations

from station.domain.errors import DuplicateIdentityError
from station.domain.fleet import (
    ClaimConflict,
    ClaimKind,
    ClaimOwner,
    ClaimVerdict,
    FleetDuplicateError,
    FleetIdentity,
    FleetPolicy,
    FleetQuotaError,
    StationSummary,
    UniquenessMode,
    duplicate_error,
)

BOARD = FleetIdentity(
    station="line-2",
    product="thermo",
    batch="WO-1",
    registration_id="dev-1",
    serial="SN1",
    operator="tom",
    ek_sha256="AB" * 32,
)


def test_claims_cover_the_present_keys_in_one_fixed_order() -> None:
    claims = BOARD.claims()
    assert claims == (
        (ClaimKind.EK, "", "ab" * 32),  # lower-cased
        (ClaimKind.REGISTRATION_ID, "", "dev-1"),
        (ClaimKind.SERIAL, "thermo", "SN1"),  # a serial is unique per product
    )
    assert claims == tuple(sorted(claims))  # every station locks keys in this order


def test_modes_per_product() -> None:
    policy = FleetPolicy(default_mode=UniquenessMode.ONLINE, deferred_products=frozenset({"cheap"}))
    assert policy.mode_for("thermo") is UniquenessMode.ONLINE
    assert policy.mode_for("cheap") is UniquenessMode.DEFERRED
    assert FleetPolicy(online_products=frozenset({"x"})).mode_for("x") is UniquenessMode.ONLINE
    assert FleetPolicy().mode_for("x") is UniquenessMode.DEFERRED


def test_a_duplicate_names_the_other_board_station_and_operator_once() -> None:
    owner = ClaimOwner("line-1", "dev-9", "SN1", "tina", "WO-1")
    verdict = ClaimVerdict(
        conflicts=(
            ClaimConflict(ClaimKind.SERIAL, "SN1", owner),
            ClaimConflict(ClaimKind.EK, "ab" * 32, owner),
        )
    )
    error = duplicate_error(BOARD, verdict)
    assert isinstance(error, FleetDuplicateError) and isinstance(error, DuplicateIdentityError)
    assert error.message == (
        "board SN1 is a duplicate across the fleet: its serial and EK hash already belong to "
        "board SN1 (dev-9) at line-1 by tina"
    )
    assert "not locked" in error.remedy
    assert duplicate_error(BOARD, ClaimVerdict()) is None


def test_a_full_quota_is_its_own_error() -> None:
    error = duplicate_error(BOARD, ClaimVerdict(quota_full=True, quota=100))
    assert isinstance(error, FleetQuotaError) and "quota of 100" in error.message


def test_lag_and_yield() -> None:
    summary = StationSummary("line-1", 10, 14, "", 0.0, 5, 3, 1, 2)
    assert summary.lag == 4 and summary.yield_pct == 75.0
    assert StationSummary("x", 5, 3, "", 0.0, 0, 0, 0, 0).lag == 0  # a stale head is no lag
