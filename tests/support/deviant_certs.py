"""EK certificates with each DER deviation real TPM vendors ship, and really broken ones.

Every certificate is signed over its exact (deviant) ``tbsCertificate`` bytes by a test CA made
here, as a vendor's CA signs what it encodes. The structure is deterministic (keys and ECDSA
signatures are fresh per run). To look at them: ``python -m tests.tpm.deviant_certs OUT_DIR``
writes ``OUT_DIR/anchors/*.pem`` (the test CAs) and ``OUT_DIR/certs/*.der``.

Deviations (accepted, each named in the verdict):

=========================== =====================================================================
``intel-explicit-default``  ``critical FALSE`` encoded in extension 3, as in Intel PTT EK certs
``explicit-default-ca``     ``cA FALSE`` encoded in basicConstraints
``unsorted-set``            a multi-valued issuer RDN in non-DER order (Nuvoton)
``nv-padding-ff``           0xFF fill after the certificate (NV index larger than the cert)
``nv-padding-00``           0x00 fill
``tcg-header``              TCG stored-certificate header (0x1001, type 0, size) in front
``tcg-header-full-cert``    the same with the TCG_FULL_CERT tag (0x1002)
``rsaes-oaep``              SubjectPublicKeyInfo marked RSAES-OAEP (TPM 1.2 style)
``long-length``             a BER (non-minimal) length
``issuer-non-minimal-int``  issued by an intermediate whose serial is a non-minimal INTEGER
=========================== =====================================================================

Broken (refused with the reason): ``broken-*``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from station.adapters.tpm.der import certificate_parts, children, encode, read_tlv

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2044, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 26, tzinfo=UTC)
INTEL_AIA = "https://tsci.intel.com/content/OnDieCA/certs/TGL_00000001_OnDie_CA.cer"
TPM_MANUFACTURER = x509.ObjectIdentifier("2.23.133.2.1")
TPM_MODEL = x509.ObjectIdentifier("2.23.133.2.2")
TPM_VERSION = x509.ObjectIdentifier("2.23.133.2.3")
#: SEQUENCE { id-RSAES-OAEP, SEQUENCE { [2] { SEQUENCE { id-pSpecified, OCTET STRING "TCPA" } } } }
#: Every certificate :func:`build` makes, in order.
NAMES = (
    "plain",
    "intel-explicit-default",
    "explicit-default-ca",
    "unsorted-set",
    "nv-padding-ff",
    "nv-padding-00",
    "tcg-header",
    "tcg-header-full-cert",
    "rsaes-oaep",
    "long-length",
    "issuer-non-minimal-int",
    "broken-signed-over-der",
    "broken-trailing-garbage",
    "broken-tcg-header-length",
    "broken-truncated",
    "broken-extension-shape",
    "broken-tampered",
    "broken-oaep-not-rsa",
)
OAEP_SPKI_ALGORITHM = encode(
    0x30,
    bytes.fromhex("06092a864886f70d010107")
    + encode(
        0x30,
        encode(0xA2, encode(0x30, bytes.fromhex("06092a864886f70d010109") + encode(0x04, b"TCPA"))),
    ),
)


@dataclass
class Node:
    """A mutable DER element: primitive content or a list of children."""

    tag: int
    value: bytes | list[Node]
    long_length: bool = False

    def encode(self) -> bytes:
        """DER (or BER, for ``long_length``) bytes of this element."""
        content = (
            b"".join(child.encode() for child in self.value)
            if isinstance(self.value, list)
            else self.value
        )
        if self.long_length and len(content) < 0x80:
            return bytes([self.tag, 0x81, len(content)]) + content
        return encode(self.tag, content)

    @property
    def kids(self) -> list[Node]:
        """The children (constructed elements only)."""
        assert isinstance(self.value, list)
        return self.value


def parse(data: bytes) -> Node:
    """A :class:`Node` tree of one DER element (primitive contents kept whole)."""
    item = read_tlv(data)
    if item.constructed:
        return Node(
            item.tag, [parse(item.content[c.start : c.end]) for c in children(item.content)]
        )
    return Node(item.tag, item.content)


@dataclass
class TestCa:
    """A test CA: its certificate and key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        """The certificate, PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str = "Station Test TPM Vendor") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_ca(name: x509.Name, issuer: TestCa | None = None, serial: int = 1) -> TestCa:
    """A CA certificate (self-signed without ``issuer``)."""
    key = ec.generate_private_key(ec.SECP384R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA384())
    return TestCa(cert, key)


def resign(tbs: Node, signer: TestCa) -> bytes:
    """A certificate with exactly ``tbs`` (as encoded) signed by ``signer`` (ECDSA-SHA384)."""
    tbs_der = tbs.encode()
    signature = signer.key.sign(tbs_der, ec.ECDSA(hashes.SHA384()))
    algorithm = bytes.fromhex("300a06082a8648ce3d040303")
    return encode(0x30, tbs_der + algorithm + encode(0x03, b"\x00" + signature))


def ek_leaf(
    issuer: TestCa, ek_public: CertificatePublicKeyTypes, *, manufacturer: str = "id:494E5443"
) -> Node:
    """The tbsCertificate of a TCG-style EK certificate (as a tree, ready to be bent).

    Extensions, in order: 1 keyUsage, 2 basicConstraints, 3 authorityInfoAccess,
    4 subjectAltName (TPM manufacturer, model, version).
    """
    san = x509.DirectoryName(
        x509.Name(
            [
                x509.RelativeDistinguishedName(
                    [
                        x509.NameAttribute(TPM_MANUFACTURER, manufacturer),
                        x509.NameAttribute(TPM_MODEL, "PTT"),
                        x509.NameAttribute(TPM_VERSION, "id:00020000"),
                    ]
                )
            ]
        )
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.cert.subject)
        .public_key(ek_public)
        .serial_number(0x1234567)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(INTEL_AIA),
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .sign(issuer.key, hashes.SHA384())
    )
    return parse(cert.tbs_certificate_bytes)


def extensions(tbs: Node) -> list[Node]:
    """The Extension elements of a tbsCertificate tree."""
    return tbs.kids[-1].kids[0].kids


@dataclass
class DeviantSet:
    """Everything built: the anchors folder, the certificates, and the EK they certify."""

    anchors: Path
    certs: dict[str, Path] = field(default_factory=dict)
    ek: rsa.RSAPublicKey | None = None


def build(out_dir: Path, ek: rsa.RSAPublicKey | None = None) -> DeviantSet:
    """Write the test CAs to ``out_dir/anchors`` and every certificate to ``out_dir/certs``.

    The EK certificates certify ``ek`` (a fresh RSA key when None), e.g. a lab board's EK.
    """
    anchors = out_dir / "anchors"
    certs = out_dir / "certs"
    anchors.mkdir(parents=True, exist_ok=True)
    certs.mkdir(parents=True, exist_ok=True)
    ek = ek or rsa.generate_private_key(65537, 2048).public_key()
    root = make_ca(_name("Station Test EK Root"))
    issuing = make_ca(_name("Station Test EK Issuing CA"), root, serial=2)
    # An RDN with three values, encoded by hand in non-DER order below.
    multi = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Station Test Nuvo"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Station Test Multi-valued CA"),
                ]
            )
        ]
    )
    multi_ca = make_ca(multi)
    # An intermediate whose serial is a non-minimal INTEGER (00 00 05), signed as encoded.
    old = make_ca(_name("Station Test Old Intermediate"), root, serial=5)
    old_tbs = parse(old.cert.tbs_certificate_bytes)
    old_tbs.kids[1].value = b"\x00\x00\x05"
    old_der = resign(old_tbs, root)
    for ca_name, pem in (
        ("root", root.pem),
        ("issuing", issuing.pem),
        ("multi-valued", multi_ca.pem),
    ):
        (anchors / f"{ca_name}.pem").write_bytes(pem)
    (anchors / "old-intermediate.der").write_bytes(old_der)
    old_ca = TestCa(old.cert, old.key)

    def leaf(
        signer: TestCa = issuing, bend: Callable[[Node], None] | None = None
    ) -> tuple[Node, TestCa]:
        tbs = ek_leaf(signer, ek)
        if bend is not None:
            bend(tbs)
        return tbs, signer

    def critical_false(tbs: Node) -> None:
        extensions(tbs)[2].kids.insert(1, Node(0x01, b"\x00"))

    def ca_false(tbs: Node) -> None:
        value = extensions(tbs)[1].kids[-1]
        value.value = encode(0x30, encode(0x01, b"\x00"))

    def unsorted(tbs: Node) -> None:
        rdn = tbs.kids[3].kids[0]
        rdn.value = sorted(rdn.kids, key=lambda n: n.encode(), reverse=True)

    def long_length(tbs: Node) -> None:
        tbs.kids[4].long_length = True  # validity

    def oaep(tbs: Node) -> None:
        tbs.kids[6].kids[0] = parse(OAEP_SPKI_ALGORITHM)

    def good(tbs: Node, signer: TestCa) -> bytes:
        return resign(tbs, signer)

    plain, _ = leaf()
    plain_der = good(plain, issuing)
    made: dict[str, bytes] = {
        "plain": plain_der,
        "intel-explicit-default": good(*leaf(bend=critical_false)),
        "explicit-default-ca": good(*leaf(bend=ca_false)),
        "unsorted-set": good(*leaf(signer=multi_ca, bend=unsorted)),
        "nv-padding-ff": plain_der + b"\xff" * 300,
        "nv-padding-00": plain_der + b"\x00" * 300,
        "tcg-header": b"\x10\x01\x00" + len(plain_der).to_bytes(2, "big") + plain_der,
        "tcg-header-full-cert": b"\x10\x01\x00"
        + (len(plain_der) + 2).to_bytes(2, "big")
        + b"\x10\x02"
        + plain_der,
        "rsaes-oaep": good(*leaf(bend=oaep)),
        "long-length": good(*leaf(bend=long_length)),
        "issuer-non-minimal-int": good(*leaf(signer=old_ca)),
    }
    # Really broken: each must be refused, with the reason.
    bent, _ = leaf(bend=critical_false)
    der_form = certificate_parts(resign(ek_leaf(issuing, ek), issuing))
    signature = der_form.algorithm + encode(0x03, b"\x00" + der_form.signature)
    made["broken-signed-over-der"] = encode(0x30, bent.encode() + signature)
    made["broken-trailing-garbage"] = plain_der + b"hello, world"
    made["broken-tcg-header-length"] = b"\x10\x01\x00\x40\x00" + plain_der
    made["broken-truncated"] = plain_der[:-40]
    two_booleans, _ = leaf()
    extensions(two_booleans)[2].kids.insert(1, Node(0x01, b"\x00"))
    extensions(two_booleans)[2].kids.insert(1, Node(0x01, b"\xff"))
    made["broken-extension-shape"] = good(two_booleans, issuing)
    tampered = bytearray(plain_der)
    tampered[plain_der.index(b"PTT") + 2] ^= 0x20
    made["broken-tampered"] = bytes(tampered)
    not_rsa, _ = leaf(bend=oaep)
    not_rsa.kids[6].kids[1].value = b"\x00" + b"\x04" * 65
    made["broken-oaep-not-rsa"] = good(not_rsa, issuing)
    assert tuple(made) == NAMES
    result = DeviantSet(anchors=anchors, ek=ek)
    for name, der in made.items():
        path = certs / f"{name}.der"
        path.write_bytes(der)
        result.certs[name] = path
    return result


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("deviant-certs"))
    print(f"anchors: {built.anchors}")
    for cert_name, cert_path in built.certs.items():
        print(f"{cert_name:28} {cert_path}")
