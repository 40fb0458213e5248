"""The device's TPM at first boot, as the Azure device SDKs use it (dps-api.md §7).

* EK: read from persistent handle 0x81010001, created with the TCG default RSA-2048 template and
  persisted only if absent (so the EK the station read is the one the device presents).
* SRK: persistent handle 0x81000001, RSA-2048 storage key, created the same way if absent.
* The DPS challenge blob is unpacked, its inner wrapping key recovered with
  ``ActivateCredential`` (EK under a ``PolicySecret(TPM_RH_ENDORSEMENT)`` session), the HMAC key
  imported under the SRK, loaded and persisted at 0x81000100; it then signs the SAS.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Final

from tpm2_pytss import ESAPI, TCTILdr, TSS2_Exception
from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_SE
from tpm2_pytss.types import (
    TPM2B_DATA,
    TPM2B_ENCRYPTED_SECRET,
    TPM2B_ID_OBJECT,
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
    TPMT_SYM_DEF,
    TPMT_SYM_DEF_OBJECT,
)
from tpm2_pytss.utils import NVReadEK, create_ek_template

from station.domain.errors import DeviceRegistrationError

EK_HANDLE: Final = 0x81010001
SRK_HANDLE: Final = 0x81000001
DPS_KEY_HANDLE: Final = 0x81000100
SRK_ATTRIBUTES: Final = (
    "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"
)


def _tpm_error(message: str, exc: BaseException) -> DeviceRegistrationError:
    return DeviceRegistrationError(
        message,
        remedy="Check that the board's TPM is running and holds the enrolled endorsement key.",
        tpm_error=str(exc),
    )


class DeviceTpm:
    """One open ESAPI context to the device's TPM (close it, or use ``with``).

    Args:
        esapi: an open context, e.g. ``ESAPI(TCTILdr("swtpm", "path=..."))`` or one over a
            board link; :meth:`open` builds one from a TCTI name and configuration.
    """

    def __init__(self, esapi: ESAPI) -> None:
        self._ectx = esapi
        self._hmac_key: ESYS_TR | None = None

    @classmethod
    def open(cls, tcti: str, config: str) -> DeviceTpm:
        """Open the TPM through a TCTI (``"swtpm"``, ``"path=/run/tpm.sock"``).

        Raises:
            DeviceRegistrationError: the TPM cannot be reached.
        """
        try:
            return cls(ESAPI(TCTILdr(tcti, config)))
        except TSS2_Exception as exc:
            raise _tpm_error(f"cannot open the TPM ({tcti}:{config})", exc) from exc

    def close(self) -> None:
        """Close the ESAPI context."""
        self._ectx.close()

    def __enter__(self) -> DeviceTpm:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ keys
    def endorsement_key(self) -> bytes:
        """The EK's marshaled TPM2B_PUBLIC (created and persisted at 0x81010001 if absent)."""
        return bytes(self._persistent(EK_HANDLE, self._create_ek)[1].marshal())

    def storage_root_key(self) -> bytes:
        """The SRK's marshaled TPM2B_PUBLIC (created and persisted at 0x81000001 if absent)."""
        return bytes(self._persistent(SRK_HANDLE, self._create_srk)[1].marshal())

    def _persistent(
        self, handle: int, create: Callable[[], ESYS_TR]
    ) -> tuple[ESYS_TR, TPM2B_PUBLIC]:
        try:
            tr = self._ectx.tr_from_tpmpublic(handle)
        except TSS2_Exception:
            tr = None
        try:
            if tr is None:
                transient = create()
                tr = self._ectx.evict_control(ESYS_TR.OWNER, transient, handle)
                self._ectx.flush_context(transient)
            public, _, _ = self._ectx.read_public(tr)
        except TSS2_Exception as exc:
            raise _tpm_error(f"cannot read or create the TPM key at {handle:#x}", exc) from exc
        return tr, public

    def _create_ek(self) -> ESYS_TR:
        _, template = create_ek_template("EK-RSA2048", NVReadEK(self._ectx))
        handle, *_ = self._ectx.create_primary(None, template, ESYS_TR.ENDORSEMENT)
        return handle

    def _create_srk(self) -> ESYS_TR:
        template = TPM2B_PUBLIC.parse("rsa2048:aes128cfb", objectAttributes=SRK_ATTRIBUTES)
        handle, *_ = self._ectx.create_primary(None, template, ESYS_TR.OWNER)
        return handle

    # ------------------------------------------------------------------ the DPS key
    def import_authentication_key(self, blob: bytes) -> None:
        """Activate and import the HMAC key in DPS's ``authenticationKey`` blob.

        Raises:
            DeviceRegistrationError: the blob is malformed, or this TPM cannot activate it (it
                does not hold the EK and SRK the blob was made for).
        """
        try:
            parts, offset = [], 0
            for kind in (
                TPM2B_ID_OBJECT,
                TPM2B_ENCRYPTED_SECRET,
                TPM2B_PRIVATE,
                TPM2B_ENCRYPTED_SECRET,
                TPM2B_PUBLIC,
                TPM2B_DATA,
            ):
                value, used = kind.unmarshal(blob[offset:])
                parts.append(value)
                offset += used
        except Exception as exc:  # tpm2-pytss raises assorted types on truncated input
            raise _tpm_error("the DPS authentication key blob is malformed", exc) from exc
        id_object, secret, duplicate, seed, public, _ = parts
        ek, _ = self._persistent(EK_HANDLE, self._create_ek)
        srk, _ = self._persistent(SRK_HANDLE, self._create_srk)
        session = self._ectx.start_auth_session(
            ESYS_TR.NONE,
            ESYS_TR.NONE,
            TPM2_SE.POLICY,
            TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
            TPM2_ALG.SHA256,
        )
        try:
            self._ectx.policy_secret(ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
            inner = self._ectx.activate_credential(
                srk, ek, id_object, secret, session1=ESYS_TR.PASSWORD, session2=session
            )
        except TSS2_Exception as exc:
            raise _tpm_error("this TPM cannot activate DPS's credential", exc) from exc
        finally:
            self._ectx.flush_context(session)
        symdef = TPMT_SYM_DEF_OBJECT(algorithm=TPM2_ALG.AES)
        symdef.keyBits.aes = len(bytes(inner)) * 8
        symdef.mode.aes = TPM2_ALG.CFB
        try:
            private = self._ectx.import_(
                srk, TPM2B_DATA(bytes(inner)), public, duplicate, seed, symdef
            )
            loaded = self._ectx.load(srk, private, public)
            self._hmac_key = self._persist_dps_key(loaded)
        except TSS2_Exception as exc:
            raise _tpm_error("the TPM refused to import DPS's key", exc) from exc

    def _persist_dps_key(self, loaded: ESYS_TR) -> ESYS_TR:
        # Like the SDKs: the imported key lives at 0x81000100, replacing an earlier one.
        try:
            old = self._ectx.tr_from_tpmpublic(DPS_KEY_HANDLE)
        except TSS2_Exception:
            old = None
        if old is not None:
            self._ectx.evict_control(ESYS_TR.OWNER, old, DPS_KEY_HANDLE)
        persistent = self._ectx.evict_control(ESYS_TR.OWNER, loaded, DPS_KEY_HANDLE)
        self._ectx.flush_context(loaded)
        return persistent

    def hmac_sha256(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` with the imported DPS key, computed inside the TPM.

        Raises:
            DeviceRegistrationError: no key was imported, or the TPM refused.
        """
        if self._hmac_key is None:
            raise DeviceRegistrationError(
                "no DPS authentication key has been imported into the TPM",
                remedy="Register once without a token to get DPS's challenge first.",
            )
        try:
            return bytes(self._ectx.hmac(self._hmac_key, data, TPM2_ALG.SHA256))
        except TSS2_Exception as exc:
            raise _tpm_error("the TPM could not sign the registration token", exc) from exc
