"""CA fixtures: a SoftHSM2 token per test, the CA service over a fake (or real) store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hsm.softhsm import SoftHsmToken
from station.domain.records import OperatorRecord, Role
from tests.support.ca import CaRig, build_rig
from tests.support.fake_store import FakeUnitOfWork


@pytest.fixture
def ca_rig(softhsm: SoftHsmToken, tmp_path: Path) -> Iterator[CaRig]:
    store = FakeUnitOfWork(transactional=frozenset({"certificates"}))
    store.operators.save(
        OperatorRecord(name="root", role=Role.ADMIN, enabled=True, created_at="2026-01-01")
    )
    store.operators.save(
        OperatorRecord(name="tina", role=Role.TECHNICIAN, enabled=True, created_at="2026-01-01")
    )
    built = build_rig(softhsm, store, tmp_path / "ca")
    yield built
    for service in built._services:  # type: ignore[attr-defined]
        service.close()


@pytest.fixture
def ready(ca_rig: CaRig) -> CaRig:
    """A CA rig whose CA has a P-256 key in SoftHSM2 and a lab-root-signed intermediate."""
    service = ca_rig.service
    service.init(
        ca_rig.key_uri(), common_name="Test Station CA", organization="ACME", operator="root"
    )
    service.lab_root(operator="root")
    return ca_rig
