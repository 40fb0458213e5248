"""Certificates and EKs for tests: structurally valid, made fresh, no private key kept."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tpm2_pytss.types import TPM2B_PUBLIC

# The TCG default EK policy (PolicySecret(TPM_RH_ENDORSEMENT)), as in every SDK's EK template.
EK_AUTH_POLICY = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")
EK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|restricted|decrypt"


def new_ek(seed: int = 0) -> str:
    """A structurally valid RSA-2048 EK (TCG template) as DPS stores it: base64 TPM2B_PUBLIC."""
    public = TPM2B_PUBLIC.parse("rsa2048:aes128cfb", objectAttributes=EK_ATTRIBUTES)
    public.publicArea.authPolicy = EK_AUTH_POLICY
    public.publicArea.unique.rsa = (seed.to_bytes(4, "big") + os.urandom(252))[:256]
    return base64.b64encode(public.marshal()).decode("ascii")


def new_cert(common_name: str, *, issuer_key: Any = None, issuer_cn: str = "") -> str:
    """A PEM certificate with subject CN ``common_name`` (self-signed unless an issuer is given)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]) if issuer_cn else subject
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(issuer_key or key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
