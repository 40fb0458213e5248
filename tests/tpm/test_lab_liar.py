"""A TPM that lies: every loop over its answers ends, with "TPM answered nonsense" and a remedy.

Each case is a lab TPM fault between the board firmware and its swtpm, reached over a real pty.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from station.adapters.board.session import BoardSession
from station.adapters.tpm.identity import MAX_CAPABILITY_PAGES, BoardTpmIdentityReader
from station.domain.errors import TpmNonsenseError
from station.domain.products import EkCertificateResult
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards
from tests.support.tpm import lab_ca_files, service_trusting

Connect = Callable[..., BoardSession]
Readers = Callable[[BoardSession], BoardTpmIdentityReader]


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (
            Faults(nv_read_empty=True),
            "TPM answered nonsense: NV_Read of 0x01c00002 at offset 0 asked for",
        ),
        (
            Faults(nv_size=65535),
            "TPM answered nonsense: NV index 0x01c00002 says it holds 65535 bytes; an EK "
            "certificate has 1 to 16384",
        ),
        (
            Faults(cap_same_handle=True),
            "TPM answered nonsense: GetCapability(handles from 0x01c00003) listed 0x01c00002, "
            "not ascending",
        ),
        (
            Faults(cap_endless=True),
            f"TPM answered nonsense: GetCapability still had more NV handles after "
            f"{MAX_CAPABILITY_PAGES} pages",
        ),
    ],
    ids=["nv-read-empty", "nv-size-huge", "cap-same-handle", "cap-endless"],
)
def test_endless_or_empty_answers_end_the_read(
    lab: LabBoards, connect: Connect, readers: Readers, fault: Faults, said: str
) -> None:
    (board,) = lab.start(1, "tpm", fault)
    session = connect(board.port)
    reader = readers(session)
    service = service_trusting(lab_ca_files(lab))
    with pytest.raises(TpmNonsenseError) as caught:
        service.identify(reader)
    assert caught.value.message.startswith(said), caught.value.message
    assert "Reject the board" in caught.value.remedy
    assert caught.value.code == "tpm.nonsense"
    # The EK was read before the certificate: the slot and the link are still usable.
    assert reader.read_endorsement_key(template="rsa2048", create_if_absent=False).public


def test_a_tpm_slower_than_the_operation_deadline_is_stopped(
    lab: LabBoards, connect: Connect
) -> None:
    # Every command takes the slow profile's 20 ms or more; reading the EK certificate needs
    # several commands, so a 10 ms budget for the operation runs out part way.
    (board,) = lab.start(1, "tpm", Faults(slow_tpm=1.0))
    reader = BoardTpmIdentityReader(connect(board.port), port=board.port, deadline_s=0.01)
    try:
        with pytest.raises(TpmNonsenseError) as caught:
            reader.read_ek_certificates("rsa2048")
        assert "time allowed to read the EK certificate ran out" in caught.value.message
        assert caught.value.remedy
    finally:
        reader.close()


@pytest.mark.parametrize("buffer", [0, 256], ids=["whole", "small-buffer"])
def test_the_ek_certificate_is_read_whole_or_in_the_tpms_own_chunks(
    lab: LabBoards, connect: Connect, readers: Readers, buffer: int
) -> None:
    (board,) = lab.start(1, "tpm", Faults(nv_buffer=buffer))
    session = connect(board.port)
    reader = readers(session)
    sent = session.stats.requests
    ((_, certificate),) = reader.read_ek_certificates("rsa2048")
    # GetCapability(handles) and NV_ReadPublic, then the reads: one when the TPM takes the
    # whole certificate; else the refused one, a GetCapability for the buffer size, the chunks
    chunks = 1 if buffer == 0 else 2 + -(-len(certificate) // buffer)
    assert len(certificate) > 3 * 256
    assert session.stats.requests - sent == 2 + chunks
    identity = service_trusting(lab_ca_files(lab)).identify(reader)
    assert identity.ek_certificate.status is EkCertificateResult.VALID
