"""A misbehaving board TPM gives a clear error, and the slot is usable afterwards."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from tpm2_pytss import ESAPI
from tpm2_pytss.constants import TPM2_CAP, TPM2_PT, TPMA_PERMANENT

from station.adapters.board.session import BoardSession
from station.adapters.tpm.identity import BoardTpmIdentityReader
from station.domain.errors import (
    TpmFailureModeError,
    TpmLockoutError,
    TpmMalformedResponseError,
    TpmUnreachableError,
)
from station.domain.products import EkCertificateResult
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards
from tests.support.board_tcti import BoardTcti
from tests.support.tpm import direct_swtpm, lab_ca_files, put_in_lockout, service_trusting

Connect = Callable[..., BoardSession]
Readers = Callable[[BoardSession], BoardTpmIdentityReader]
#: TPM-level lab faults are board firmware behaviour: both reference firmwares inject them.
pytestmark = pytest.mark.parametrize("lab", ["python", "c"], indirect=True)


@pytest.mark.parametrize("nth", [1, 4, 8, 9])
def test_truncated_tpm_response_is_reported_and_the_context_rebuilt(
    lab: LabBoards,
    connect: Connect,
    readers: Readers,
    nth: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (board,) = lab.start(1, "tpm", Faults(bad_tpm_rsp=nth))
    reader = readers(connect(board.port))
    service = service_trusting(lab_ca_files(lab))
    with caplog.at_level(logging.WARNING), pytest.raises(TpmMalformedResponseError) as caught:
        service.identify(reader)
    assert "cannot be decoded" in caught.value.message and caught.value.remedy
    assert "bytes" in caught.value.message  # the cause: what was wrong with the answer
    assert any("malformed TPM response" in r.getMessage() for r in caplog.records)
    assert reader.rebuilds == 1
    # Same slot, same reader: the next attempt works, the reader having forgotten its state.
    result = service.identify(reader)
    assert result.resident and result.ek_certificate.status is EkCertificateResult.VALID


def test_tpm_in_failure_mode(lab: LabBoards, connect: Connect, readers: Readers) -> None:
    (board,) = lab.start(1, "tpm", Faults(tpm_failure=True))
    session = connect(board.port)
    reader = readers(session)
    service = service_trusting(lab_ca_files(lab))
    for _ in range(2):  # the same clear answer every time, never "called in the wrong order"
        with pytest.raises(TpmFailureModeError) as caught:
            service.identify(reader)
        assert "failure mode" in caught.value.message
        assert "Power-cycle" in caught.value.remedy
    assert session.hello().serial == board.serial  # the board itself still answers
    # Power-cycled (re-plugged without the fault), the slot reads the identity.
    lab.replug(board.index)
    result = service.identify(readers(connect(board.port)))
    assert result.resident


def test_tpm_in_lockout(lab: LabBoards, connect: Connect, readers: Readers) -> None:
    (board,) = lab.start(1, "tpm", Faults(tpm_lockout=True))
    reader = readers(connect(board.port))
    service = service_trusting(lab_ca_files(lab))
    with pytest.raises(TpmLockoutError) as caught:
        service.identify(reader)
    assert "lockout" in caught.value.message and "lockout password" in caught.value.remedy
    # Unauthorized commands still work on the same context: the slot stays usable.
    key = reader.read_endorsement_key(template="rsa2048", create_if_absent=False)
    assert len(key.public) == 316


def test_board_unplugged_mid_tpm_command(
    lab: LabBoards, connect: Connect, readers: Readers
) -> None:
    (board,) = lab.start(1, "tpm", Faults(unplug_at="tpm"))
    reader = readers(connect(board.port, slow_timeout_s=1.0, retries=1))
    service = service_trusting(lab_ca_files(lab))
    with pytest.raises(TpmUnreachableError) as caught:
        service.identify(reader)
    assert caught.value.details["cause"] in ("board.timeout", "board.disconnected")
    assert caught.value.remedy
    with pytest.raises(TpmUnreachableError):  # still a clear error, from a rebuilt context
        reader.read_endorsement_key(template="rsa2048", create_if_absent=False)
    lab.replug(board.index)
    result = service.identify(readers(connect(board.port)))
    assert result.resident and result.ek_certificate.status is EkCertificateResult.VALID


def test_lost_tpm_answer_is_retried_transparently(
    lab: LabBoards, connect: Connect, readers: Readers
) -> None:
    (board,) = lab.start(1, "tpm", Faults(mute_once="tpm"))
    session = connect(board.port, slow_timeout_s=1.0)
    result = service_trusting(lab_ca_files(lab)).identify(readers(session))
    assert result.resident and session.stats.retries == 1


def test_real_dictionary_attack_lockout_does_not_stop_the_identity_read(
    lab: LabBoards, connect: Connect, readers: Readers, tmp_path: Path
) -> None:
    # The station authorizes only with hierarchy auth and policy sessions, which DA lockout
    # does not block: a locked-out TPM still yields (and proves) its identity.
    (board,) = lab.start(1, "tpm")
    lab.stop()
    with direct_swtpm(board.state_dir / "tpm") as tcti:
        put_in_lockout(tcti, tmp_path)
    lab.replug(board.index)
    session = connect(board.port)
    result = service_trusting(lab_ca_files(lab)).identify(readers(session))
    assert result.resident and result.ek_certificate.status is EkCertificateResult.VALID
    ectx = ESAPI(BoardTcti(session))
    try:
        _, data = ectx.get_capability(TPM2_CAP.TPM_PROPERTIES, TPM2_PT.PERMANENT, 1)
    finally:
        ectx.close()
    (permanent,) = [p.value for p in data.data.tpmProperties if p.property == TPM2_PT.PERMANENT]
    assert permanent & TPMA_PERMANENT.INLOCKOUT  # it really was (and is) in lockout
