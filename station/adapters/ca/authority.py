"""The signing CA: an HSM-held key plus the installed intermediate certificate."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import hsm
from station.adapters.ca.builder import build_and_sign, throwaway_public_key
from station.adapters.ca.x509_facts import (
    certificate_facts,
    csr_facts,
    load_csr,
    spki,
)
from station.domain.certificates import (
    CertificateFacts,
    CsrFacts,
    IssuancePlan,
    SignedCertificate,
)
from station.domain.errors import ChainRejectedError, CsrRejectedError


class X509Authority:
    """Implements :class:`station.ports.CertificateAuthority` with cryptography and :mod:`hsm`.

    Args:
        signer: the CA key, open in its token.
        chain: the installed intermediate first, then any further intermediates (no root).
    """

    def __init__(self, signer: hsm.Signer, chain: list[x509.Certificate]) -> None:
        if spki(chain[0]) != spki(signer.public_key()):
            signer.close()
            raise ChainRejectedError(
                "the installed CA certificate does not belong to the configured CA key",
                remedy="Import the certificate issued for this key, or fix [ca] key_uri.",
                reason="key_mismatch",
            )
        self._signer = signer
        self._chain = chain
        self._facts = certificate_facts(chain[0])
        self._chain_pem = "".join(
            cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in chain
        )

    def inspect_csr(self, data: bytes) -> CsrFacts:
        """Parse a CSR into facts."""
        return csr_facts(load_csr(data))

    def sign(self, plan: IssuancePlan, public_key_der: bytes) -> SignedCertificate:
        """Build and sign; an empty ``public_key_der`` means a throwaway key (verification)."""
        if public_key_der:
            try:
                key = serialization.load_der_public_key(public_key_der)
            except ValueError as exc:
                raise CsrRejectedError(
                    "CSR refused: its public key cannot be decoded", reason="malformed"
                ) from exc
            if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
                raise CsrRejectedError("CSR refused: unusable public key", reason="key_type")
        else:
            key = throwaway_public_key()
        return build_and_sign(plan, key, issuer=self._chain[0], signer=self._signer)

    def certificate(self) -> CertificateFacts:
        """The intermediate in use."""
        return self._facts

    def chain_pem(self) -> str:
        """The intermediate(s), PEM."""
        return self._chain_pem

    def close(self) -> None:
        """Close the key's session."""
        self._signer.close()
