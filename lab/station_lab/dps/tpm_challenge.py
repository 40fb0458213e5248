"""The DPS side of the TPM attestation handshake (dps-api.md §7).

DPS proves that a device holds the enrolled EK without ever seeing a signature from it: it makes a
fresh HMAC key, wraps it for import under the device's storage root key (SRK), and protects the
inner wrapping key with ``MakeCredential`` to the EK and the SRK's name. Only the TPM that holds
both keys can run ``ActivateCredential`` + ``Import`` and then sign the registration SAS with the
HMAC key. The blob sent as ``authenticationKey`` is, in this order::

    TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET ‖ TPM2B_PRIVATE ‖ TPM2B_ENCRYPTED_SECRET ‖
    TPM2B_PUBLIC ‖ TPM2B_DATA

(credential blob, its secret, the duplicated HMAC key, the seed encrypted to the SRK, the HMAC
key's public area, and an empty URI data field), as the Azure device SDKs parse it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from tpm2_pytss.constants import TPM2_ALG, TPMA_OBJECT
from tpm2_pytss.types import (
    TPM2B_DATA,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE,
    TPMT_PUBLIC,
    TPMT_SENSITIVE,
    TPMT_SYM_DEF_OBJECT,
)
from tpm2_pytss.utils import make_credential, wrap

from station_lab.dps import errors as codes
from station_lab.dps.errors import ApiError

HMAC_KEY_BYTES: Final = 32
INNER_WRAP_KEY_BYTES: Final = 16  # AES-128: the device imports with keyBits = 8 x this


@dataclass(frozen=True)
class TpmChallenge:
    """A challenge for one device: the blob to send and the HMAC key the device will sign with.

    ``key`` is base64, the form :meth:`station_lab.dps.auth.DeviceToken.signed_with` takes.
    """

    authentication_key: str
    key: str


def make_challenge(endorsement_key: bytes, storage_root_key: bytes) -> TpmChallenge:
    """Build the ``authenticationKey`` blob for an EK and an SRK (both marshaled TPM2B_PUBLIC).

    Raises:
        ApiError: 400004 when either key cannot be used (not an RSA/ECC storage-capable key).
    """
    try:
        ek, _ = TPM2B_PUBLIC.unmarshal(endorsement_key)
        srk, _ = TPM2B_PUBLIC.unmarshal(storage_root_key)
    except Exception as exc:  # tpm2-pytss raises assorted types for bad marshaling
        raise ApiError(
            codes.INVALID_ENDORSEMENT_KEY, "The endorsement or storage root key is malformed."
        ) from exc
    hmac_key = secrets.token_bytes(HMAC_KEY_BYTES)
    public, sensitive = _hmac_key_object(hmac_key)
    symdef = TPMT_SYM_DEF_OBJECT(algorithm=TPM2_ALG.AES)
    symdef.keyBits.aes = INNER_WRAP_KEY_BYTES * 8
    symdef.mode.aes = TPM2_ALG.CFB
    try:
        inner_key, duplicate, seed = wrap(
            srk.publicArea, public, sensitive, secrets.token_bytes(INNER_WRAP_KEY_BYTES), symdef
        )
        id_object, secret = make_credential(ek, bytes(inner_key), srk.get_name())
    except Exception as exc:  # unusable key types surface as ValueError/TypeError/TSS2_Exception
        raise ApiError(
            codes.INVALID_ENDORSEMENT_KEY,
            "The endorsement or storage root key cannot be used for credential activation.",
        ) from exc
    blob = b"".join(
        (
            id_object.marshal(),
            secret.marshal(),
            duplicate.marshal(),
            seed.marshal(),
            public.marshal(),
            TPM2B_DATA().marshal(),
        )
    )
    return TpmChallenge(
        authentication_key=base64.b64encode(blob).decode("ascii"),
        key=base64.b64encode(hmac_key).decode("ascii"),
    )


def _hmac_key_object(key: bytes) -> tuple[TPM2B_PUBLIC, TPM2B_SENSITIVE]:
    """An HMAC-SHA256 keyed-hash object holding ``key``, usable with a password (empty auth)."""
    public = TPM2B_PUBLIC(
        TPMT_PUBLIC(
            type=TPM2_ALG.KEYEDHASH,
            nameAlg=TPM2_ALG.SHA256,
            objectAttributes=TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT,
        )
    )
    public.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG.HMAC
    public.publicArea.parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG.SHA256
    sensitive = TPM2B_SENSITIVE(TPMT_SENSITIVE(sensitiveType=TPM2_ALG.KEYEDHASH))
    seed = secrets.token_bytes(32)
    sensitive.sensitiveArea.sensitive.bits = key
    sensitive.sensitiveArea.seedValue = seed
    # A keyed-hash object's unique field is H(seedValue || key): the TPM checks it on import.
    public.publicArea.unique.keyedHash = hashlib.sha256(seed + key).digest()
    return public, sensitive
