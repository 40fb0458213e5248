"""The :class:`~station.ports.DeviceCrypto` over ``cryptography``.

Injected keys (boards without a secure element) are P-256 keys made in this process. Their PKCS#8
bytes live in one ``bytearray`` that :meth:`SoftInjectedKey.wipe` overwrites with zeros; the
``cryptography`` key object is dropped at the same time. Python cannot promise that no other copy
ever existed in freed memory (OpenSSL's own key copy is freed by ``cryptography``), so the honest
claim is: the station never writes the key anywhere but to the board, and holds no reference after
the wipe.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.adapters.ca.x509_facts import csr_facts, load_csr
from station.domain.certificates import CsrFacts
from station.domain.errors import ProvisionError


class SoftInjectedKey:
    """A P-256 key made in memory for one board, written to it, then wiped."""

    def __init__(self) -> None:
        self._key: ec.EllipticCurvePrivateKey | None = ec.generate_private_key(ec.SECP256R1())
        self._pkcs8 = bytearray(
            self._key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def csr_der(self, common_name: str) -> bytes:
        """A CSR with subject ``CN=<common_name>``, signed by this key (DER).

        Raises:
            ProvisionError: the key was already wiped.
        """
        key = self._live()
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        )
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def private_key_der(self) -> bytes:
        """The unencrypted PKCS#8 DER the board's ``privkey`` object takes."""
        self._live()
        return bytes(self._pkcs8)

    def wipe(self) -> None:
        """Overwrite the key bytes and drop the key object (idempotent)."""
        for index in range(len(self._pkcs8)):
            self._pkcs8[index] = 0
        self._pkcs8 = bytearray()
        self._key = None

    @property
    def wiped(self) -> bool:
        """Whether :meth:`wipe` ran."""
        return self._key is None

    def _live(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            raise ProvisionError("the injected key was already wiped")
        return self._key


class CryptographyDeviceCrypto:
    """Certificate parsing and signature checks for the provisioning steps."""

    def new_injected_key(self) -> SoftInjectedKey:
        """A fresh in-memory P-256 key."""
        return SoftInjectedKey()

    def chain_der(self, pem: str) -> bytes:
        """Every certificate in ``pem``, DER, concatenated in order."""
        certificates = x509.load_pem_x509_certificates(pem.encode("ascii"))
        return b"".join(c.public_bytes(serialization.Encoding.DER) for c in certificates)

    def issuer(self, pem: str) -> str:
        """The issuer of the first certificate in ``pem``, RFC 4514."""
        return x509.load_pem_x509_certificate(pem.encode("ascii")).issuer.rfc4514_string()

    def public_key_sha256(self, pem: str) -> str:
        """SHA-256 (hex) of the first certificate's SubjectPublicKeyInfo, DER."""
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).hexdigest()

    def csr_facts(self, der: bytes) -> CsrFacts:
        """Parse a board's CSR (DER) into the facts the CSR rules decide on.

        Raises:
            CsrRejectedError: the bytes are not a CSR, or its key cannot be read.
        """
        return csr_facts(load_csr(der))

    def verify_possession(self, certificate_pem: str, nonce: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (ECDSA-SHA256, DER) over ``nonce`` verifies with the cert's key."""
        public = x509.load_pem_x509_certificate(certificate_pem.encode("ascii")).public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return False
        try:
            public.verify(signature, nonce, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True
