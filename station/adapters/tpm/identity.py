"""A board's TPM identity through the board link: EK, SRK, EK certificates, residency proof.

One :class:`BoardTpmIdentityReader` per slot, used only from the thread that created it (the
slot's worker). It owns one ESAPI context over a :class:`~.tcti.BoardTcti`. When a command fails
below the TPM (link timeout, unplug, a response that cannot be decoded) the context is dropped
and the next call builds a fresh one: ESAPI refuses every call after such a failure.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tpm2_pytss import ESAPI, TSS2_Exception
from tpm2_pytss.constants import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_CAP,
    TPM2_ECC,
    TPM2_PT_NV,
    TPM2_SE,
    TPMA_OBJECT,
    TPMA_SESSION,
)
from tpm2_pytss.types import TPM2B_NV_PUBLIC, TPM2B_PUBLIC, TPMT_SYM_DEF
from tpm2_pytss.utils import NoSuchIndex, create_ek_template, make_credential

from station.adapters.tpm.tcti import BoardTcti, TpmPassthrough
from station.domain.ek_templates import EK_TEMPLATES, EkTemplate
from station.domain.errors import (
    BoardError,
    TpmEkAbsentError,
    TpmError,
    TpmFailureModeError,
    TpmLockoutError,
    TpmMalformedResponseError,
    TpmNonsenseError,
    TpmUnreachableError,
)
from station.domain.tpm import SRK_HANDLE, EkOrigin, EndorsementKey

log = logging.getLogger(__name__)

#: The SRK the Azure device SDKs create (RSA-2048 storage key, AES-128-CFB).
SRK_TEMPLATE = "rsa2048:aes128cfb"
SRK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"
#: The throw-away object a residency challenge is bound to (its name feeds MakeCredential).
CHALLENGE_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign"
_CURVES = {TPM2_ECC.NIST_P256: "p256", TPM2_ECC.NIST_P384: "p384", TPM2_ECC.NIST_P521: "p521"}

_TPM_LAYER = 0
_TCTI_LAYER = 10 << 16
_RC_FAILURE = 0x101
_RC_LOCKOUT = 0x921
_RC_HANDLE = 0x08B  # format-one: the handle does not exist
_RC_TOO_LARGE = (0x04, 0x15)  # format-one error numbers: TPM_RC_VALUE, TPM_RC_SIZE
_MALFORMED = {0x11, 0x13, 0x06}  # MALFORMED_RESPONSE, INSUFFICIENT_RESPONSE, INSUFFICIENT_BUFFER
_EK_NV_RANGE = (0x01C00000, 0x01C07FFF)  # TCG: EK certificates and templates
_KEY_RESOURCE = 1  # IESYSC_KEY_RSRC in ESAPI's serialized ESYS_TR
# Bounds on what a TPM may answer: a broken or lying TPM must not keep a slot busy for ever.
MAX_CAPABILITY_PAGES = 16  # the EK range holds a few dozen indices; 64 per page
MAX_EK_CERTIFICATE_BYTES = 16384  # EK certificates are 0.5-2 KB
NV_CHUNK_BOUNDS = (64, 2048)  # what TPM_PT_NV_BUFFER_MAX may sensibly say
#: Seconds one reader operation (read the EK, the certificates, prove residency) may take in
#: all, TPM commands and link retries included: far above a slow discrete TPM's worst case.
OPERATION_DEADLINE_S = 180.0
_NONSENSE_REMEDY = (
    "Reject the board and set it aside: its TPM (or the firmware relaying it) is faulty or "
    "tampered with. Note the message for the TPM vendor."
)
_NV_RESOURCE = 2  # IESYSC_NV_RSRC


def _layer(exc: TSS2_Exception) -> int:
    return int(exc.rc) & 0xFF0000


def _is_absent(exc: TSS2_Exception) -> bool:
    rc = int(exc.rc)
    return _layer(exc) == _TPM_LAYER and bool(rc & 0x80) and (rc & 0xBF) == _RC_HANDLE


def _is_too_large(exc: TSS2_Exception) -> bool:
    """Whether the TPM refused a parameter as too large (TPM_RC_VALUE or TPM_RC_SIZE)."""
    rc = int(exc.rc)
    return _layer(exc) == _TPM_LAYER and bool(rc & 0x80) and (rc & 0x3F) in _RC_TOO_LARGE


def template_of(public: TPM2B_PUBLIC) -> str:
    """The EK template name (rsa2048, ecc-p384, ...) that matches a key's parameters."""
    area = public.publicArea
    if area.type == TPM2_ALG.RSA:
        return f"rsa{int(area.parameters.rsaDetail.keyBits)}"
    if area.type == TPM2_ALG.ECC:
        curve = area.parameters.eccDetail.curveID
        return f"ecc-{_CURVES.get(curve, f'{int(curve):#x}')}"
    return f"alg-{int(area.type):#x}"


def _template(name: str) -> EkTemplate:
    try:
        return EK_TEMPLATES[name]
    except KeyError:
        raise TpmError(f"unknown EK template {name!r}", template=name) from None


class BoardTpmIdentityReader:
    """Implements :class:`station.ports.TpmIdentityReader` over a board link.

    Args:
        link: the board session (its ``tpm`` operation carries the TPM commands).
        port: the port name, for messages.
    """

    def __init__(
        self, link: TpmPassthrough, *, port: str = "", deadline_s: float = OPERATION_DEADLINE_S
    ) -> None:
        self._link = link
        self.port = port
        self._deadline_s = deadline_s
        self._deadline = (time.monotonic() + deadline_s, "use the TPM")
        self._owner = threading.get_ident()
        self._tcti: BoardTcti | None = None
        self._ectx: ESAPI | None = None
        self._nv_buffer_max = 0
        self._ek_handles: dict[str, ESYS_TR] = {}  # per EK template, for the current context
        self._srk: ESYS_TR | None = None  # the persistent SRK, once ensured in this context
        self.rebuilds = 0  # how many times a broken context was replaced (diagnostics)

    # ------------------------------------------------------------------ context
    def _context(self) -> ESAPI:
        if threading.get_ident() != self._owner:
            raise RuntimeError("a TPM reader belongs to the thread that created it")
        if self._ectx is None:
            # The station reports every TPM error itself (with a remedy); the TSS's own stderr
            # log would only repeat it in C-library words. TSS2_LOG, when set, still wins.
            os.environ.setdefault("TSS2_LOG", "all+none")
            self._tcti = BoardTcti(self._link, deadline=lambda: self._deadline)
            self._ectx = ESAPI(self._tcti)
        return self._ectx

    def _drop_context(self) -> None:
        if self._ectx is not None:
            self.rebuilds += 1
            try:
                self._ectx.close()
            except TSS2_Exception:  # a broken context may refuse to close cleanly
                log.debug("closing a broken ESAPI context failed", exc_info=True)
        self._ectx = None
        self._tcti = None
        self._nv_buffer_max = 0
        self._ek_handles = {}
        self._srk = None

    def close(self) -> None:
        """Release the ESAPI context (the board link is the caller's)."""
        if self._ectx is not None:
            self._ectx.close()
        self._ectx = None
        self._tcti = None
        self._ek_handles = {}
        self._srk = None

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Run one operation within its deadline; translate TSS errors into TpmError subclasses.

        Ctrl-C during a TPM command surfaces as KeyboardInterrupt (the context is dropped).
        """
        self._deadline = (time.monotonic() + self._deadline_s, what)
        try:
            yield
        except TSS2_Exception as exc:
            if self._tcti is not None and self._tcti.interrupted:
                self._drop_context()
                raise KeyboardInterrupt from None
            raise self._translate(exc, what) from exc

    def _nonsense(self, what: str) -> TpmNonsenseError:
        return TpmNonsenseError(
            f"TPM answered nonsense: {what}", remedy=_NONSENSE_REMEDY, port=self.port
        )

    def _translate(self, exc: TSS2_Exception, what: str) -> TpmError:
        rc = int(exc.rc)
        details: dict[str, Any] = {"port": self.port, "rc": f"{rc:#x}", "step": what}
        cause = self._tcti.last_error if self._tcti is not None else None
        if _layer(exc) != _TPM_LAYER:
            # Below the TPM: ESAPI is unusable now (and drops the cause, kept by the TCTI).
            self._drop_context()
        if isinstance(cause, TpmNonsenseError):
            return TpmNonsenseError(cause.message, remedy=cause.remedy, **details)
        if isinstance(cause, TpmMalformedResponseError):
            return TpmMalformedResponseError(
                f"the TPM on {self.port} sent a response that cannot be decoded (while trying "
                f"to {what}): {cause.message}",
                remedy="Retry; if it keeps happening, the board firmware or TPM is faulty.",
                **cause.details,
                **details,
            )
        if isinstance(cause, BoardError):
            log.warning("TPM %s on %s failed on the board link: %s", what, self.port, cause)
            return TpmUnreachableError(
                f"cannot {what}: {cause.message}",
                remedy=cause.remedy or "Check the board's cable and power, then retry.",
                cause=cause.code,
                **details,
            )
        if _layer(exc) == _TPM_LAYER and rc == _RC_FAILURE:
            return TpmFailureModeError(
                f"the TPM on {self.port} is in failure mode (while trying to {what})",
                remedy="Power-cycle the board; if the TPM stays in failure mode, reject the board.",
                **details,
            )
        if _layer(exc) == _TPM_LAYER and rc == _RC_LOCKOUT:
            return TpmLockoutError(
                f"the TPM on {self.port} is in dictionary-attack lockout (while trying to {what})",
                remedy="Set the board aside until the lockout expires, or have the TPM owner "
                "reset it with the lockout password.",
                **details,
            )
        if _layer(exc) == _TCTI_LAYER or (
            _layer(exc) != _TPM_LAYER and (rc & 0xFFFF) in _MALFORMED
        ):
            log.warning("malformed TPM response on %s during %s: %s", self.port, what, exc)
            return TpmMalformedResponseError(
                f"the TPM on {self.port} sent a response that cannot be decoded (while trying "
                f"to {what})",
                remedy="Retry; if it keeps happening, the board firmware or TPM is faulty.",
                **details,
            )
        return TpmError(
            f"the TPM on {self.port} refused to {what}: {exc}",
            remedy="Retry once; if it fails again, reject the board and note the error code.",
            **details,
        )

    def _flush_quietly(self, ectx: ESAPI, handle: ESYS_TR | None) -> None:
        # Cleanup after a failure must not hide the failure itself.
        current = self._ectx
        if handle is None or current is None or current is not ectx:
            return
        try:
            current.flush_context(handle)
        except TSS2_Exception:
            log.debug("flushing a transient TPM object failed", exc_info=True)

    # ------------------------------------------------------------------ persistent keys
    def _persistent(self, ectx: ESAPI, handle: int) -> ESYS_TR | None:
        try:
            return ectx.tr_from_tpmpublic(handle)
        except TSS2_Exception as exc:
            if _is_absent(exc):
                return None
            raise

    def _persist(self, ectx: ESAPI, transient: ESYS_TR, handle: int) -> ESYS_TR:
        try:
            persistent = ectx.evict_control(ESYS_TR.OWNER, transient, handle)
        finally:
            ectx.flush_context(transient)
        return persistent

    @staticmethod
    def _metadata(ectx: ESAPI, handle: ESYS_TR) -> tuple[bytes, int, bytes]:
        # ESAPI already holds what TPM2_ReadPublic / NV_ReadPublic returned when the handle was
        # loaded (tr_from_tpmpublic); its serialized ESYS_TR is handle, TPM2B_NAME, resource
        # type, then the public area. Reusing it saves one TPM round trip on a slow link.
        blob = bytes(ectx.tr_serialize(handle))
        (size,) = struct.unpack(">H", blob[4:6])
        name = blob[6 : 6 + size]
        (kind,) = struct.unpack(">I", blob[6 + size : 10 + size])
        return name, kind, blob[10 + size :]

    def _public_of(self, ectx: ESAPI, handle: ESYS_TR) -> TPM2B_PUBLIC:
        """The public area of a loaded key, checked against the name the TPM gave for it."""
        try:
            name, kind, rest = self._metadata(ectx, handle)
            if kind != _KEY_RESOURCE:
                raise ValueError(f"resource type {kind}")
            public, _ = TPM2B_PUBLIC.unmarshal(rest)
        except (ValueError, struct.error, TSS2_Exception):
            log.debug("ESYS_TR metadata unusable; asking the TPM again", exc_info=True)
            public, tpm_name, _ = ectx.read_public(handle)
            name = bytes(tpm_name)
        if bytes(public.get_name()) != bytes(name):
            raise TpmMalformedResponseError(
                f"the TPM on {self.port} returned a key whose name does not match its public area",
                remedy="Retry; if it keeps happening, the board firmware or TPM is faulty.",
                port=self.port,
            )
        return public

    def _nv_size(self, ectx: ESAPI, handle: ESYS_TR) -> int:
        try:
            _, kind, rest = self._metadata(ectx, handle)
            if kind != _NV_RESOURCE:
                raise ValueError(f"resource type {kind}")
            nv_public, _ = TPM2B_NV_PUBLIC.unmarshal(rest)
        except (ValueError, struct.error, TSS2_Exception):
            log.debug("ESYS_TR metadata unusable; asking the TPM again", exc_info=True)
            nv_public, _ = ectx.nv_read_public(handle)
        return int(nv_public.nvPublic.dataSize)

    def read_endorsement_key(self, *, template: str, create_if_absent: bool) -> EndorsementKey:
        """See :meth:`station.ports.TpmIdentityReader.read_endorsement_key`."""
        spec = _template(template)
        with self._guard("read the endorsement key"):
            ectx = self._context()
            handle = self._persistent(ectx, spec.handle)
            origin = EkOrigin.FOUND
            if handle is None:
                if not create_if_absent:
                    raise TpmEkAbsentError(
                        f"the TPM on {self.port} has no {template} endorsement key at "
                        f"{spec.handle:#010x}",
                        remedy="This product does not allow the station to create one: check "
                        "the board's TPM provisioning, or set create_ek_if_absent in the recipe.",
                        port=self.port,
                        template=template,
                    )
                handle = self._create_ek(ectx, spec)
                origin = EkOrigin.CREATED
            public = self._public_of(ectx, handle)
            if template_of(public) != template:
                raise TpmError(
                    f"the key at {spec.handle:#010x} on {self.port} is a {template_of(public)} "
                    f"key, not the {template} EK the product expects",
                    remedy="Check the product's ek_template against the board's TPM; if they "
                    "match, the TPM's provisioning is wrong: reject the board.",
                    port=self.port,
                )
            self._ek_handles[template] = handle
        return EndorsementKey(public=bytes(public.marshal()), template=template, origin=origin)

    def _create_ek(self, ectx: ESAPI, spec: EkTemplate) -> ESYS_TR:
        # The TCG default template, or the one the manufacturer stored in NV (EK profile). High
        # range templates need their certificate in NV (tpm2-pytss raises ValueError without).
        try:
            _, ek_template = create_ek_template(spec.tcg_name, self._nv_reader(ectx))
        except ValueError as exc:
            raise TpmEkAbsentError(
                f"the TPM on {self.port} cannot make a {spec.name} EK: {exc}",
                remedy="High-range EKs are only made for TPMs that carry their certificate: "
                "check the product's ek_template.",
                port=self.port,
            ) from exc
        transient, *_ = ectx.create_primary(None, ek_template, ESYS_TR.ENDORSEMENT)
        log.info("created and persisted an EK (%s) on %s", spec.name, self.port)
        return self._persist(ectx, transient, spec.handle)

    def _nv_reader(self, ectx: ESAPI) -> Callable[[int], bytes]:
        """NV reads for create_ek_template, within this reader's bounds.

        tpm2-pytss's own reader loops until the index is read: an NV_Read answered with zero
        bytes would keep it going for ever.
        """

        def read(index: int) -> bytes:
            try:
                handle = ectx.tr_from_tpmpublic(int(index))
            except TSS2_Exception as exc:
                if _is_absent(exc):
                    raise NoSuchIndex(index) from exc
                raise
            return self._nv_read(ectx, int(index), handle, self._nv_size(ectx, handle))

        return read

    def ensure_storage_root_key(self) -> bytes:
        """See :meth:`station.ports.TpmIdentityReader.ensure_storage_root_key`."""
        with self._guard("read or create the storage root key"):
            ectx = self._context()
            handle = self._persistent(ectx, SRK_HANDLE)
            if handle is None:
                srk_template = TPM2B_PUBLIC.parse(SRK_TEMPLATE, objectAttributes=SRK_ATTRIBUTES)
                transient, *_ = ectx.create_primary(None, srk_template, ESYS_TR.OWNER)
                handle = self._persist(ectx, transient, SRK_HANDLE)
            public = self._public_of(ectx, handle)
            self._srk = handle
        return bytes(public.marshal())

    # ------------------------------------------------------------------ EK certificates
    def read_ek_certificates(self, template: str) -> list[tuple[int, bytes]]:
        """See :meth:`station.ports.TpmIdentityReader.read_ek_certificates`."""
        found = []
        with self._guard("read the EK certificate"):
            ectx = self._context()
            present = self._nv_indices(ectx)
            for index in _template(template).cert_indices:
                if index not in present:
                    continue
                handle = ectx.tr_from_tpmpublic(index)
                size = self._nv_size(ectx, handle)
                found.append((index, self._nv_read(ectx, index, handle, size)))
        return found

    def _nv_indices(self, ectx: ESAPI) -> set[int]:
        # One GetCapability lists the defined EK-credential indices, instead of probing each
        # candidate index and getting an error back for the absent ones. Each page must move
        # forward, and there are only so many pages.
        present: set[int] = set()
        first = _EK_NV_RANGE[0]
        for _ in range(MAX_CAPABILITY_PAGES):
            more, data = ectx.get_capability(TPM2_CAP.HANDLES, first, 64)
            handles = [int(h) for h in data.data.handles]
            if any(h < first for h in handles) or handles != sorted(set(handles)):
                raise self._nonsense(
                    f"GetCapability(handles from {first:#010x}) listed "
                    f"{', '.join(f'{h:#010x}' for h in handles[:4])}, not ascending from there"
                )
            present.update(h for h in handles if h <= _EK_NV_RANGE[1])
            if not more or not handles or handles[-1] >= _EK_NV_RANGE[1]:
                return present
            first = handles[-1] + 1
        raise self._nonsense(
            f"GetCapability still had more NV handles after {MAX_CAPABILITY_PAGES} pages"
        )

    def _nv_read(self, ectx: ESAPI, index: int, handle: ESYS_TR, size: int) -> bytes:
        if not 0 < size <= MAX_EK_CERTIFICATE_BYTES:
            raise self._nonsense(
                f"NV index {index:#010x} says it holds {size} bytes; an EK certificate has "
                f"1 to {MAX_EK_CERTIFICATE_BYTES}"
            )
        # First ask for as much as a TPM's NV buffer may sensibly hold: most TPMs hand over an
        # EK certificate in one NV_Read. One whose buffer is smaller refuses the size (a TPM
        # error, the context stays usable); only then is its buffer size asked for.
        chunk = self._nv_buffer_max or NV_CHUNK_BOUNDS[1]
        data = bytearray()
        # NV_Read returns exactly the bytes asked for, so the loop ends after size/chunk reads.
        while len(data) < size:
            want = min(chunk, size - len(data))
            try:
                part = bytes(ectx.nv_read(handle, want, len(data)))
            except TSS2_Exception as exc:
                if self._nv_buffer_max or not _is_too_large(exc):
                    raise
                chunk = self._buffer_max(ectx)
                continue
            if len(part) != want:
                raise self._nonsense(
                    f"NV_Read of {index:#010x} at offset {len(data)} asked for {want} bytes and "
                    f"returned {len(part)}"
                )
            data += part
        return bytes(data)

    def _buffer_max(self, ectx: ESAPI) -> int:
        if not self._nv_buffer_max:
            self._nv_buffer_max = 512
            _, data = ectx.get_capability(TPM2_CAP.TPM_PROPERTIES, TPM2_PT_NV.BUFFER_MAX, 1)
            for prop in data.data.tpmProperties:
                if prop.property == TPM2_PT_NV.BUFFER_MAX and prop.value:
                    low, high = NV_CHUNK_BOUNDS
                    self._nv_buffer_max = min(max(int(prop.value), low), high)
        return self._nv_buffer_max

    # ------------------------------------------------------------------ residency
    def prove_residency(self, ek: bytes) -> bool:
        """See :meth:`station.ports.TpmIdentityReader.prove_residency`.

        MakeCredential runs here, in software, against the EK the board *presented*; only the
        TPM that holds that EK's private key can recover the secret with ActivateCredential.

        The credential is bound to an object loaded in the TPM: the SRK when
        :meth:`ensure_storage_root_key` ran first (the provisioning flow's order), else a
        throw-away primary made for it and flushed after (two TPM commands more). Either way
        the secret is fresh and only the EK's private key opens it.
        """
        try:
            ek_public, _ = TPM2B_PUBLIC.unmarshal(ek)
        except Exception as exc:  # tpm2-pytss raises assorted types on bad input
            raise TpmError(
                "the recorded endorsement key is not a TPM2B_PUBLIC", reason=str(exc)
            ) from exc
        secret = secrets.token_bytes(32)
        with self._guard("prove the endorsement key is resident"):
            ectx = self._context()
            template_name = template_of(ek_public)
            ek_handle = self._ek_handles.get(template_name)
            if ek_handle is None:
                ek_handle = self._persistent(ectx, _template(template_name).handle)
            if ek_handle is None:
                return False
            made = None  # a throw-away challenge object, when there is no SRK to bind to
            challenge = self._srk
            if challenge is None:
                template = TPM2B_PUBLIC.parse("hmac:sha256", objectAttributes=CHALLENGE_ATTRIBUTES)
                template.publicArea.unique.keyedHash = secrets.token_bytes(32)
                challenge = made = ectx.create_primary(None, template, ESYS_TR.NULL)[0]
            session = None
            try:
                credential, encrypted_seed = make_credential(
                    ek_public, secret, ectx.tr_get_name(challenge)
                )
                attributes = ek_public.publicArea.objectAttributes
                if attributes & TPMA_OBJECT.USERWITHAUTH:
                    # High-range EK templates allow user actions with the (empty) EK auth.
                    user_auth = ESYS_TR.PASSWORD
                else:
                    session = user_auth = ectx.start_auth_session(
                        ESYS_TR.NONE,
                        ESYS_TR.NONE,
                        TPM2_SE.POLICY,
                        TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
                        TPM2_ALG.SHA256,
                    )
                    ectx.policy_secret(ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
                    # The TPM ends the session with the command that uses it: one flush less.
                    ectx.trsess_set_attributes(session, 0, TPMA_SESSION.CONTINUESESSION)
                try:
                    recovered = ectx.activate_credential(
                        challenge,
                        ek_handle,
                        credential,
                        encrypted_seed,
                        session1=ESYS_TR.PASSWORD,
                        session2=user_auth,
                    )
                    session = None
                except TSS2_Exception as exc:
                    if _layer(exc) != _TPM_LAYER or int(exc.rc) in (_RC_FAILURE, _RC_LOCKOUT):
                        raise
                    log.warning(
                        "TPM on %s could not activate the credential (rc %#x): EK not resident",
                        self.port,
                        int(exc.rc),
                    )
                    return False
            finally:
                for handle in (session, made):
                    self._flush_quietly(ectx, handle)
        return hmac.compare_digest(bytes(recovered), secret)
