"""A real EK from a software TPM (swtpm), enrolled through the official client.

The EK is created in the endorsement hierarchy with the TCG default RSA-2048 template, exactly as
the Azure device SDKs do, and marshaled as ``TPM2B_PUBLIC``: the stand-in must accept it, echo it
byte for byte, and the registration ID derived from it must be the SDK's.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from tpm2_pytss import ESAPI, TCTILdr
from tpm2_pytss.constants import ESYS_TR
from tpm2_pytss.utils import NVReadEK, create_ek_template

from station.domain.registration import tpm_registration_id
from station_lab.swtpm import SocketSwtpm


@pytest.fixture
def swtpm_ek(monkeypatch) -> Iterator[bytes]:
    monkeypatch.setenv("TSS2_LOG", "all+none")  # NV template probes log harmless ESYS errors
    with SocketSwtpm() as tpm:
        ectx = ESAPI(TCTILdr("swtpm", tpm.tcti_conf))
        try:
            _, template = create_ek_template("EK-RSA2048", NVReadEK(ectx))
            handle, public, *_ = ectx.create_primary(None, template, ESYS_TR.ENDORSEMENT)
            ectx.flush_context(handle)
        finally:
            ectx.close()
        yield public.marshal()


def test_real_swtpm_ek_enrolls_and_round_trips(client, conforms, swtpm_ek):
    assert len(swtpm_ek) == 316  # the size DPS shows for a TCG RSA-2048 EK
    ek = base64.b64encode(swtpm_ek).decode()
    reg_id = tpm_registration_id(swtpm_ek)
    request = {
        "registrationId": reg_id,
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": ek}},
    }
    created = client.enrollment.create_or_update(id=reg_id, enrollment=request)
    conforms("IndividualEnrollment", created)
    assert base64.b64decode(created["attestation"]["tpm"]["endorsementKey"]) == swtpm_ek
    assert len(reg_id) == 52
    assert (
        client.enrollment.get(reg_id.upper())["registrationId"] == reg_id
    )  # ids are case-insensitive
