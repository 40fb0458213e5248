"""A real EK from a software TPM (swtpm), enrolled through the official client.

The EK is created in the endorsement hierarchy with the TCG default RSA-2048 template, exactly as
the Azure device SDKs do, and marshaled as ``TPM2B_PUBLIC``: the stand-in must accept it, echo it
byte for byte, and the registration ID derived from it must be the SDK's.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from tpm2_pytss import ESAPI, TCTILdr
from tpm2_pytss.constants import ESYS_TR
from tpm2_pytss.utils import NVReadEK, create_ek_template

from station.domain.registration import tpm_registration_id


@pytest.fixture
def swtpm_ek(monkeypatch) -> Iterator[bytes]:
    monkeypatch.setenv("TSS2_LOG", "all+none")  # NV template probes log harmless ESYS errors
    # swtpm's unix socket path must stay short (< ~100 chars), so not under pytest's tmp_path
    state = tempfile.mkdtemp(prefix="dps-swtpm-", dir="/tmp")
    sock = os.path.join(state, "tpm")
    process = subprocess.Popen(
        [
            "swtpm",
            "socket",
            "--tpm2",
            "--tpmstate",
            f"dir={state}",
            "--server",
            f"type=unixio,path={sock}",
            "--ctrl",
            f"type=unixio,path={sock}.ctrl",
            "--flags",
            "not-need-init,startup-clear",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(sock) and os.path.exists(sock + ".ctrl")):
            assert process.poll() is None, "swtpm exited"
            assert time.monotonic() < deadline, "swtpm did not create its sockets"
            time.sleep(0.01)
        ectx = ESAPI(TCTILdr("swtpm", f"path={sock}"))
        try:
            _, template = create_ek_template("EK-RSA2048", NVReadEK(ectx))
            handle, public, *_ = ectx.create_primary(None, template, ESYS_TR.ENDORSEMENT)
            ectx.flush_context(handle)
        finally:
            ectx.close()
        yield public.marshal()
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(state, ignore_errors=True)


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
