"""Every attestation flow binds each of its steps, and only those, to a handler."""

from __future__ import annotations

from typing import Any

import pytest

from station.domain.products import ProductAttestation
from station.domain.provision_events import ADMISSION_STEPS, Step, flow_steps, steps_for
from station.services.provision.flows import (
    FLOWS,
    SYMMETRIC_KEY_FLOW,
    TPM_FLOW,
    X509_FLOW,
    X509_INJECTED_FLOW,
    Flow,
)

ALL_FLOWS = (TPM_FLOW, X509_FLOW, X509_INJECTED_FLOW, SYMMETRIC_KEY_FLOW)


def test_every_attestation_kind_has_its_own_flow() -> None:
    assert {flow.attestation for flow in ALL_FLOWS} == set(ProductAttestation)
    for flow in ALL_FLOWS:
        assert FLOWS[flow.attestation] is flow


@pytest.mark.parametrize("flow", ALL_FLOWS, ids=lambda flow: str(flow.attestation))
def test_each_flow_binds_exactly_its_steps_to_handlers(flow: Flow[Any]) -> None:
    assert set(flow.handlers) == set(flow_steps(flow.attestation, lock=True, operational=True))


@pytest.mark.parametrize("attestation", list(ProductAttestation))
def test_the_operational_key_is_proven_before_the_dps_info_and_the_lock(
    attestation: ProductAttestation,
) -> None:
    steps = flow_steps(attestation, lock=True, operational=True)
    assert steps[-3:] == (Step.OPERATIONAL_KEY, Step.WRITE_DPS, Step.LOCK)
    assert Step.OPERATIONAL_KEY not in flow_steps(attestation, lock=True)


@pytest.mark.parametrize("attestation", list(ProductAttestation))
@pytest.mark.parametrize("lock", [True, False])
def test_a_run_is_admission_then_the_flow_then_the_record(
    attestation: ProductAttestation, lock: bool
) -> None:
    steps = steps_for(attestation, lock=lock)
    assert steps == (*ADMISSION_STEPS, *flow_steps(attestation, lock=lock), Step.RECORD)
    assert (Step.LOCK in steps) is lock
