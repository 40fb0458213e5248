"""``tpm:`` keys: an ECDSA CA key or an HMAC group key held in the station's own TPM (tpm2-pytss).

The key is a child of an ECC storage primary in the owner hierarchy, created inside the TPM
(``fixedtpm|fixedparent|sensitivedataorigin``) and made persistent at the URI's handle. It has no
signing scheme of its own, so the caller's hash (SHA-256 or SHA-384) is used per signature. The
owner hierarchy is assumed to have an empty authorization value (the default on a fresh TPM).
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.utils import Buffer
from tpm2_pytss import ESAPI, TSS2_Exception
from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_RH, TPM2_ST
from tpm2_pytss.cryptography import public_to_key
from tpm2_pytss.types import (
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPM2B_SENSITIVE_DATA,
    TPMS_SENSITIVE_CREATE,
    TPMT_SIG_SCHEME,
    TPMT_TK_HASHCHECK,
)

from hsm.errors import (
    BackendError,
    KeyExistsError,
    KeyNotFoundError,
    TokenNotFoundError,
    TokenRemovedError,
    UnsupportedKeyError,
)
from hsm.keys import KeyAlgorithm, KeyCustody, NonExtractableEcKey, algorithm_of
from hsm.uri import TpmUri

_PRIMARY_TEMPLATE = "ecc256:null:aes128cfb"
_PRIMARY_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda"
_KEY_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign|noda"
_CURVES = {KeyAlgorithm.EC_P256: "ecc256:null", KeyAlgorithm.EC_P384: "ecc384:null"}
_HASHES = {"sha256": TPM2_ALG.SHA256, "sha384": TPM2_ALG.SHA384, "sha512": TPM2_ALG.SHA512}


_CONNECT_ATTEMPTS = 20
_CONNECT_PAUSE_S = 0.025


def _connect(uri: TpmUri) -> Any:
    # A TPM without a resource manager (/dev/tpm0, swtpm's socket) serves one client at a time
    # and needs a moment after the previous context closed; retry briefly before giving up.
    for _ in range(_CONNECT_ATTEMPTS - 1):
        try:
            return ESAPI(uri.tcti)
        except TSS2_Exception:
            time.sleep(_CONNECT_PAUSE_S)
    try:
        return ESAPI(uri.tcti)
    except TSS2_Exception as exc:
        raise TokenNotFoundError(
            f"cannot reach the TPM for {uri.describe()}: {exc}",
            remedy="Check that the TPM (or swtpm) is running and the tcti= part of the key URI.",
            tcti=uri.tcti,
        ) from exc


def _raise_io(exc: TSS2_Exception, uri: TpmUri) -> NoReturn:
    if "tcti" in str(exc):
        raise TokenRemovedError(
            f"the TPM for {uri.describe()} stopped answering: {exc}",
            remedy="Check the TPM resource manager (or swtpm) and retry; nothing was signed.",
            tcti=uri.tcti,
        ) from exc
    raise BackendError(
        f"the TPM refused an operation on {uri.describe()}: {exc}",
        remedy="Check the key handle and the TPM's state (tpm2_getcap handles-persistent).",
        tcti=uri.tcti,
    ) from exc


def _handle(ectx: Any, uri: TpmUri) -> Any:
    try:
        return ectx.tr_from_tpmpublic(uri.handle)
    except TSS2_Exception as exc:
        if "tcti" in str(exc):
            _raise_io(exc, uri)
        raise KeyNotFoundError(
            f"the TPM has no key at handle 0x{uri.handle:08x}",
            remedy="Run 'station ca init --key tpm:...' first, or fix the handle in the key URI.",
            handle=f"0x{uri.handle:08x}",
        ) from exc


class TpmEcKey(NonExtractableEcKey):
    """An EC private key held in a TPM, usable wherever cryptography wants a key."""

    def __init__(self, ectx: Any, handle: Any, uri: TpmUri) -> None:
        self._ectx = ectx
        self._handle = handle
        self._uri = uri
        try:
            public, _, _ = ectx.read_public(handle)
        except TSS2_Exception as exc:
            _raise_io(exc, uri)
        area = public.publicArea
        if area.type != TPM2_ALG.ECC:
            raise UnsupportedKeyError(f"{uri.describe()} is not an ECC key")
        attrs = str(area.objectAttributes).lower()
        if "restricted" in attrs or "sign" not in attrs:
            raise UnsupportedKeyError(
                f"{uri.describe()} is not an unrestricted signing key",
                remedy="Point the URI at a key created by 'station ca init --key tpm:...'.",
            )
        self._fixed = "fixedtpm" in attrs
        self._local = "sensitivedataorigin" in attrs
        loaded = public_to_key(area)
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            raise UnsupportedKeyError(f"{uri.describe()} is not an EC key")
        self._public = loaded
        algorithm_of(loaded)

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """Sign ``data`` with ECDSA inside the TPM."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedKeyError("only ECDSA signatures are supported")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            raise UnsupportedKeyError("the TPM key signs unhashed data only")
        tpm_hash = _HASHES.get(algorithm.name)
        if tpm_hash is None:
            raise UnsupportedKeyError(f"hash {algorithm.name} is not supported by the TPM key")
        hasher = hashes.Hash(algorithm)
        hasher.update(data)
        scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
        scheme.details.any.hashAlg = tpm_hash
        ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
        try:
            signature = self._ectx.sign(self._handle, hasher.finalize(), scheme, ticket)
        except TSS2_Exception as exc:
            _raise_io(exc, self._uri)
        return bytes(signature)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        return self._public

    def location(self) -> str:
        """The TPM handle, for messages."""
        return self._uri.describe()

    def custody(self) -> KeyCustody:
        """Where the key lives; a ``fixedtpm`` key can never be exported."""
        return KeyCustody(
            backend="tpm",
            location=self._uri.describe(),
            algorithm=str(algorithm_of(self._public)),
            sensitive=True,
            extractable=not self._fixed,
            generated_on_device=self._local,
        )

    def close(self) -> None:
        """Close the ESAPI context."""
        self._ectx.close()


def _require_free_handle(ectx: Any, uri: TpmUri, remedy: str) -> None:
    """Refuse to overwrite a key already persisted at the URI's handle."""
    try:
        ectx.tr_from_tpmpublic(uri.handle)
    except TSS2_Exception as exc:
        if "tcti" in str(exc):
            _raise_io(exc, uri)
        return
    raise KeyExistsError(
        f"TPM handle 0x{uri.handle:08x} already holds a key",
        remedy=remedy,
        handle=f"0x{uri.handle:08x}",
    )


def open_tpm_signer(uri: TpmUri) -> TpmEcKey:
    """Open the persistent TPM key ``uri`` names."""
    ectx = _connect(uri)
    try:
        return TpmEcKey(ectx, _handle(ectx, uri), uri)
    except BaseException:
        ectx.close()
        raise


def generate_tpm_key(uri: TpmUri, algorithm: KeyAlgorithm) -> TpmEcKey:
    """Create a signing key inside the TPM and persist it at the URI's handle."""
    template = _CURVES.get(algorithm)
    if template is None:
        raise UnsupportedKeyError(
            f"the TPM backend supports ec-p256 and ec-p384, not {algorithm}",
            remedy="Use --algorithm ec-p256 or ec-p384.",
        )
    ectx = _connect(uri)
    try:
        _require_free_handle(ectx, uri, "Pick another persistent handle, or use the existing key.")
        try:
            primary_public = TPM2B_PUBLIC.parse(_PRIMARY_TEMPLATE, objectAttributes=_PRIMARY_ATTRS)
            primary, *_ = ectx.create_primary(
                TPM2B_SENSITIVE_CREATE(), primary_public, ESYS_TR.OWNER
            )
            key_public = TPM2B_PUBLIC.parse(template, objectAttributes=_KEY_ATTRS)
            private, public, *_ = ectx.create(primary, TPM2B_SENSITIVE_CREATE(), key_public)
            transient = ectx.load(primary, private, public)
            ectx.evict_control(ESYS_TR.OWNER, transient, uri.handle)
            ectx.flush_context(transient)
            ectx.flush_context(primary)
        except TSS2_Exception as exc:
            _raise_io(exc, uri)
        return TpmEcKey(ectx, _handle(ectx, uri), uri)
    except BaseException:
        ectx.close()
        raise


class TpmGroupKey:
    """An enrollment-group key sealed in the TPM as a ``fixedtpm`` HMAC key."""

    def __init__(self, ectx: Any, handle: Any, uri: TpmUri) -> None:
        self._ectx = ectx
        self._handle = handle
        self._uri = uri
        try:
            public, _, _ = ectx.read_public(handle)
        except TSS2_Exception as exc:
            _raise_io(exc, uri)
        if public.publicArea.type != TPM2_ALG.KEYEDHASH:
            raise UnsupportedKeyError(f"{uri.describe()} is not an HMAC key")

    def derive(self, registration_id: str) -> bytes:
        """Return HMAC-SHA256(group key, registration ID), computed inside the TPM."""
        try:
            digest = self._ectx.hmac(self._handle, registration_id.encode("utf-8"), TPM2_ALG.SHA256)
        except TSS2_Exception as exc:
            _raise_io(exc, self._uri)
        return bytes(digest)

    def custody(self) -> KeyCustody:
        """The key is ``fixedtpm``: it cannot leave this TPM."""
        return KeyCustody(
            backend="tpm",
            location=self._uri.describe(),
            algorithm="hmac-sha256",
            sensitive=True,
            extractable=False,
            generated_on_device=False,
        )

    def close(self) -> None:
        """Close the ESAPI context."""
        self._ectx.close()


def import_tpm_group_key(uri: TpmUri, key: bytes) -> None:
    """Seal ``key`` into the TPM as a persistent, non-duplicable HMAC-SHA256 key."""
    if len(key) > 128:
        raise UnsupportedKeyError(
            f"a group key of {len(key)} bytes does not fit a TPM HMAC key (at most 128)"
        )
    ectx = _connect(uri)
    try:
        _require_free_handle(ectx, uri, "Pick another persistent handle for the group key.")
        try:
            primary_public = TPM2B_PUBLIC.parse(_PRIMARY_TEMPLATE, objectAttributes=_PRIMARY_ATTRS)
            primary, *_ = ectx.create_primary(
                TPM2B_SENSITIVE_CREATE(), primary_public, ESYS_TR.OWNER
            )
            template = TPM2B_PUBLIC.parse(
                "hmac:sha256", objectAttributes="fixedtpm|fixedparent|userwithauth|sign|noda"
            )
            sensitive = TPM2B_SENSITIVE_CREATE(
                TPMS_SENSITIVE_CREATE(data=TPM2B_SENSITIVE_DATA(key))
            )
            private, public, *_ = ectx.create(primary, sensitive, template)
            transient = ectx.load(primary, private, public)
            ectx.evict_control(ESYS_TR.OWNER, transient, uri.handle)
            ectx.flush_context(transient)
            ectx.flush_context(primary)
        except TSS2_Exception as exc:
            _raise_io(exc, uri)
    finally:
        ectx.close()


def open_tpm_group_key(uri: TpmUri) -> TpmGroupKey:
    """Open the group key at the URI's persistent handle."""
    ectx = _connect(uri)
    try:
        return TpmGroupKey(ectx, _handle(ectx, uri), uri)
    except BaseException:
        ectx.close()
        raise
