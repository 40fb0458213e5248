"""TPM2_MakeCredential in software: a secret only the TPM holding an EK's private key can open.

TPM 2.0 Part 1, "Credential Protection" (24) and "Secret Sharing" (B.10.3 for RSA, C.6.4 for
ECC): a fresh seed is encrypted to the EK (RSA-OAEP with label "IDENTITY", or ECDH with an
ephemeral key and KDFe); from it KDFa derives an AES key that encrypts the secret and an HMAC
key that binds the result to the name of the object the TPM must have loaded. Only
TPM2_ActivateCredential with that EK and that object gives the secret back.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode

from station.adapters.tpm.public import HASHES, PublicArea
from station.adapters.tpm.wire import ALG_AES, ALG_CFB, sized

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def kdfa(
    hash_name: str, key: bytes, label: bytes, context_u: bytes, context_v: bytes, bits: int
) -> bytes:
    """KDFa (Part 1, 11.4.10.2): SP 800-108 counter mode with HMAC; ``label`` without its 0."""
    return KBKDFHMAC(
        algorithm=_HASHES[hash_name],
        mode=Mode.CounterMode,
        length=bits // 8,
        rlen=4,
        llen=4,
        location=CounterLocation.BeforeFixed,
        label=label,  # KBKDFHMAC puts the 0 octet between label and context
        context=context_u + context_v,
        fixed=None,
    ).derive(key)


def kdfe(hash_name: str, z: bytes, use: bytes, party_u: bytes, party_v: bytes, bits: int) -> bytes:
    """KDFe (Part 1, 11.4.10.3): SP 800-56A concatenation KDF; ``use`` without its 0."""
    other = use + b"\x00" + party_u + party_v
    return ConcatKDFHash(_HASHES[hash_name], bits // 8, other).derive(z)


def make_credential(ek: PublicArea, secret: bytes, object_name: bytes) -> tuple[bytes, bytes]:
    """The TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET that carry ``secret`` to ``ek``'s TPM.

    Args:
        ek: the endorsement key (a restricted decryption key with an AES-CFB symmetric).
        secret: at most the EK name algorithm's digest size.
        object_name: the TPM name of the object ActivateCredential will be given.

    Raises:
        ValueError: the EK is not a storage key the TPM could activate a credential with.
    """
    if ek.name_alg not in HASHES:
        raise ValueError(f"EK name algorithm {ek.name_alg:#06x} is not supported")
    hash_name = HASHES[ek.name_alg]
    digest_size = hashlib.new(hash_name).digest_size
    if not 0 < len(secret) <= digest_size:
        raise ValueError(f"a credential holds 1 to {digest_size} bytes")
    symmetric = ek.symmetric
    if (symmetric.algorithm, symmetric.mode) != (ALG_AES, ALG_CFB):
        raise ValueError("the EK's symmetric algorithm is not AES-CFB")
    seed, encrypted_seed = _seed(ek, hash_name, digest_size)
    aes_key = kdfa(hash_name, seed, b"STORAGE", object_name, b"", symmetric.key_bits)
    # The TPM's credential encryption is AES-CFB with a zero IV (the key is used once).
    encryptor = Cipher(algorithms.AES(aes_key), CFB(bytes(16))).encryptor()
    encrypted_identity = encryptor.update(sized(secret)) + encryptor.finalize()
    hmac_key = kdfa(hash_name, seed, b"INTEGRITY", b"", b"", digest_size * 8)
    integrity = hmac.new(hmac_key, encrypted_identity + object_name, hash_name).digest()
    return sized(sized(integrity) + encrypted_identity), sized(encrypted_seed)


def _seed(ek: PublicArea, hash_name: str, digest_size: int) -> tuple[bytes, bytes]:
    key = ek.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        seed = os.urandom(digest_size)
        algorithm = _HASHES[hash_name]
        oaep = padding.OAEP(padding.MGF1(algorithm), algorithm, b"IDENTITY\x00")
        return seed, key.encrypt(seed, oaep)
    ephemeral = ec.generate_private_key(key.curve)
    z = ephemeral.exchange(ec.ECDH(), key)
    size = (key.curve.key_size + 7) // 8
    mine = ephemeral.public_key().public_numbers()
    ours_x, ours_y = mine.x.to_bytes(size, "big"), mine.y.to_bytes(size, "big")
    theirs_x = key.public_numbers().x.to_bytes(size, "big")
    seed = kdfe(hash_name, z, b"IDENTITY", ours_x, theirs_x, digest_size * 8)
    return seed, sized(ours_x) + sized(ours_y)
