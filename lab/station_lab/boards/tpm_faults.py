"""TPM-level faults of a virtual board: a lying EK, failure mode, DA lockout, broken responses.

Also a TPM that answers nonsense: empty NV reads, capability paging that never ends. These sit
between the firmware and swtpm (see :mod:`station_lab.boards.faults` for the switches) so the
station can be tested against boards whose TPM misbehaves, not only their serial line.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from station_lab.boards.faults import Faults
from station_lab.boards.firmware import TpmLink

EK_HANDLE = 0x81010001
LIE_EK_FILE = "lie-ek.bin"
_CC_READ_PUBLIC = 0x173
_CC_NV_READ = 0x14E
_CC_NV_READ_PUBLIC = 0x169
_EK_NV_RANGE = range(0x01C00000, 0x01C08000)
_CC_GET_CAPABILITY = 0x17A
_CAP_HANDLES = 1
_CAP_TPM_PROPERTIES = 6
_PT_NV_BUFFER_MAX = 0x12C
_RC_VALUE_OF_PARAMETER_1 = 0x1C4  # format one: TPM_RC_VALUE, parameter 1 (NV_Read's size)
_NV_HANDLE_TYPE = 0x01
_STUCK_HANDLE = 0x01C00002
_ST_NO_SESSIONS = 0x8001
_ST_SESSIONS = 0x8002
_RC_FAILURE = 0x101
_RC_LOCKOUT = 0x921
_RH_ENDORSEMENT = 0x4000000B
_ALG_SHA256 = 0x000B


def _error(rc: int) -> bytes:
    return struct.pack(">HII", _ST_NO_SESSIONS, 10, rc)


class FaultyTpm:
    """Wrap a board's TPM and apply the TPM-level faults of ``faults``.

    Args:
        tpm: the real TPM (swtpm).
        faults: the board's fault settings.
        state_root: the board's state directory (where ``lie-ek.bin`` is looked up).
    """

    def __init__(self, tpm: TpmLink, faults: Faults, state_root: Path) -> None:
        self._tpm = tpm
        self._faults = faults
        self._lie_file = state_root / LIE_EK_FILE
        self._count = 0

    def transmit(self, command: bytes) -> bytes:
        """Run one command through the faults."""
        self._count += 1
        tag, _, code = struct.unpack(">HII", command[:10])
        if self._faults.tpm_failure:
            return _error(_RC_FAILURE)
        if self._faults.tpm_lockout and tag == _ST_SESSIONS:
            return _error(_RC_LOCKOUT)
        if (
            self._faults.lie_ek
            and code == _CC_READ_PUBLIC
            and len(command) >= 14
            and struct.unpack(">I", command[10:14])[0] == EK_HANDLE
            and self._lie_file.exists()
        ):
            return self._forged_read_public(self._lie_file.read_bytes())
        if code == _CC_GET_CAPABILITY and (
            self._faults.cap_same_handle or self._faults.cap_endless
        ):
            capability, first = struct.unpack(">II", command[10:18])
            if capability == _CAP_HANDLES and first >> 24 == _NV_HANDLE_TYPE:
                return _handles_page(_STUCK_HANDLE if self._faults.cap_same_handle else first)
        if self._faults.nv_buffer:
            small = self._small_nv_buffer(code, command, self._faults.nv_buffer)
            if small is not None:
                return small
        response = self._tpm.transmit(command)
        if self._faults.nv_read_empty and code == _CC_NV_READ:
            return _without_nv_data(response)
        if (
            self._faults.nv_size
            and code == _CC_NV_READ_PUBLIC
            and struct.unpack(">I", command[10:14])[0] in _EK_NV_RANGE
        ):
            return _resized_nv_public(response, self._faults.nv_size)
        if self._count == self._faults.bad_tpm_rsp:
            return response[: len(response) // 2]
        return response

    @staticmethod
    def _small_nv_buffer(code: int, command: bytes, limit: int) -> bytes | None:
        """The answer of a TPM whose NV buffer holds ``limit`` bytes, or None to pass it on."""
        if code == _CC_GET_CAPABILITY:
            capability, first = struct.unpack(">II", command[10:18])
            if capability == _CAP_TPM_PROPERTIES and first == _PT_NV_BUFFER_MAX:
                # moreData = NO, TPMS_CAPABILITY_DATA { TPM_CAP_TPM_PROPERTIES, one property }
                body = struct.pack(">BIIII", 0, _CAP_TPM_PROPERTIES, 1, _PT_NV_BUFFER_MAX, limit)
                return struct.pack(">HII", _ST_NO_SESSIONS, 10 + len(body), 0) + body
        if code == _CC_NV_READ and len(command) >= 22:
            (auth_size,) = struct.unpack(">I", command[18:22])
            size_at = 22 + auth_size
            if len(command) >= size_at + 2:
                (size,) = struct.unpack(">H", command[size_at : size_at + 2])
                if size > limit:
                    return _error(_RC_VALUE_OF_PARAMETER_1)
        return None

    @staticmethod
    def _forged_read_public(tpm2b_public: bytes) -> bytes:
        # A consistent answer for another TPM's EK: its public area, its name (nameAlg SHA-256
        # over TPMT_PUBLIC) and a qualified name under the endorsement hierarchy.
        area = tpm2b_public[2:]
        name = struct.pack(">H", _ALG_SHA256) + hashlib.sha256(area).digest()
        parent = struct.pack(">I", _RH_ENDORSEMENT)
        qualified = struct.pack(">H", _ALG_SHA256) + hashlib.sha256(parent + name).digest()
        body = (
            tpm2b_public
            + struct.pack(">H", len(name))
            + name
            + struct.pack(">H", len(qualified))
            + qualified
        )
        return struct.pack(">HII", _ST_NO_SESSIONS, 10 + len(body), 0) + body


def _handles_page(handle: int) -> bytes:
    # moreData = YES, TPMS_CAPABILITY_DATA { TPM_CAP_HANDLES, TPML_HANDLE { 1, handle } }
    body = struct.pack(">BIII", 1, _CAP_HANDLES, 1, handle)
    return struct.pack(">HII", _ST_NO_SESSIONS, 10 + len(body), 0) + body


def _without_nv_data(response: bytes) -> bytes:
    # A successful NV_Read answer whose TPM2B_MAX_NV_BUFFER is empty (sessions kept as they are).
    tag, _, rc = struct.unpack(">HII", response[:10])
    if rc != 0 or tag != _ST_SESSIONS:
        return response
    (parameter_size,) = struct.unpack(">I", response[10:14])
    sessions = response[14 + parameter_size :]
    body = struct.pack(">IH", 2, 0) + sessions
    return struct.pack(">HII", tag, 10 + len(body), 0) + body


def _resized_nv_public(response: bytes, size: int) -> bytes:
    # NV_ReadPublic with another dataSize, and the name recomputed to match (ESAPI checks it).
    tag, _, rc = struct.unpack(">HII", response[:10])
    if rc != 0:
        return response
    (public_size,) = struct.unpack(">H", response[10:12])
    area = bytearray(response[12 : 12 + public_size])
    struct.pack_into(">H", area, len(area) - 2, size)
    (name_alg,) = struct.unpack(">H", area[4:6])
    if name_alg != _ALG_SHA256:
        return response
    name = struct.pack(">H", _ALG_SHA256) + hashlib.sha256(bytes(area)).digest()
    body = struct.pack(">H", len(area)) + bytes(area) + struct.pack(">H", len(name)) + name
    return struct.pack(">HII", tag, 10 + len(body), 0) + body
