"""A TPM key's public area (TPMT_PUBLIC) and an NV index's (TPMS_NV_PUBLIC), parsed and named.

The station records an EK exactly as the TPM marshals it; these parsers read what the station
needs from those bytes (algorithm, size or curve, attributes, the public key) and compute the
TPM name the TPM binds credentials and NV reads to, so a board that returns a public area with
another key's name is caught.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from station.adapters.tpm.wire import (
    ALG_ECC,
    ALG_ECDAA,
    ALG_HMAC,
    ALG_KEYEDHASH,
    ALG_NULL,
    ALG_RSA,
    ALG_SHA1,
    ALG_SHA256,
    ALG_SHA384,
    ALG_SHA512,
    ALG_SYMCIPHER,
    ALG_XOR,
    Cursor,
    WireError,
    sized,
)

#: hashlib names of the name algorithms a TPM may use.
HASHES = {ALG_SHA1: "sha1", ALG_SHA256: "sha256", ALG_SHA384: "sha384", ALG_SHA512: "sha512"}
#: TPM ECC curve IDs (Part 2, 6.4) to the station's template suffix and the curve.
CURVES: dict[int, tuple[str, ec.EllipticCurve]] = {
    0x0003: ("p256", ec.SECP256R1()),
    0x0004: ("p384", ec.SECP384R1()),
    0x0005: ("p521", ec.SECP521R1()),
}
#: TPMA_OBJECT userWithAuth: the key's user role is authorized with its (empty) auth value.
USER_WITH_AUTH = 0x00000040


def tpm_name(name_alg: int, area: bytes) -> bytes:
    """The TPM name of a public area: its name algorithm, then that algorithm's digest of it."""
    try:
        digest = hashlib.new(HASHES[name_alg], area).digest()
    except KeyError:
        raise WireError(f"name algorithm {name_alg:#06x} is not one the station knows") from None
    return name_alg.to_bytes(2, "big") + digest


@dataclass(frozen=True)
class SymmetricDefinition:
    """TPMT_SYM_DEF_OBJECT: a storage key's symmetric algorithm (algorithm NULL for none)."""

    algorithm: int
    key_bits: int = 0
    mode: int = 0


@dataclass(frozen=True)
class PublicArea:
    """A parsed TPMT_PUBLIC.

    ``unique`` holds the public key: (modulus,) for RSA, (x, y) for ECC, (digest,) otherwise.
    """

    area: bytes  # the TPMT_PUBLIC as the TPM marshalled it
    type: int
    name_alg: int
    attributes: int
    symmetric: SymmetricDefinition
    key_bits: int  # RSA only
    exponent: int  # RSA only (0 means 65537)
    curve: int  # ECC only
    unique: tuple[bytes, ...]

    @property
    def name(self) -> bytes:
        """The key's TPM name."""
        return tpm_name(self.name_alg, self.area)

    def marshal(self) -> bytes:
        """The TPM2B_PUBLIC."""
        return sized(self.area)

    @property
    def template(self) -> str:
        """The EK template name (rsa2048, ecc-p384, ...) that matches the key's parameters."""
        if self.type == ALG_RSA:
            return f"rsa{self.key_bits}"
        if self.type == ALG_ECC:
            known = CURVES.get(self.curve)
            return f"ecc-{known[0] if known else f'{self.curve:#x}'}"
        return f"alg-{self.type:#x}"

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        """The key as a ``cryptography`` public key.

        Raises:
            ValueError: not an RSA or ECC key, or a key ``cryptography`` refuses.
        """
        if self.type == ALG_RSA:
            exponent = self.exponent or 65537
            modulus = int.from_bytes(self.unique[0], "big")
            return rsa.RSAPublicNumbers(exponent, modulus).public_key()
        if self.type == ALG_ECC and self.curve in CURVES:
            x, y = (int.from_bytes(part, "big") for part in self.unique)
            return ec.EllipticCurvePublicNumbers(x, y, CURVES[self.curve][1]).public_key()
        raise ValueError(f"{self.template} is not an RSA or ECC key the station can use")


def read_public(cursor: Cursor) -> PublicArea:
    """Read a TPM2B_PUBLIC from ``cursor``."""
    area = cursor.sized("TPM2B_PUBLIC")
    if not area:
        raise WireError("TPM2B_PUBLIC: empty public area")
    return parse_area(area)


def parse_public(data: bytes) -> PublicArea:
    """Parse a whole marshalled TPM2B_PUBLIC (nothing before or after it).

    Raises:
        WireError: ``data`` is not exactly one TPM2B_PUBLIC.
    """
    cursor = Cursor(data)
    public = read_public(cursor)
    cursor.done("TPM2B_PUBLIC")
    return public


def parse_area(area: bytes) -> PublicArea:
    """Parse a TPMT_PUBLIC that must fill ``area`` exactly."""
    c = Cursor(area)
    kind = c.u16("public type")
    name_alg = c.u16("name algorithm")
    attributes = c.u32("object attributes")
    c.sized("auth policy")
    symmetric = SymmetricDefinition(ALG_NULL)
    key_bits = exponent = curve = 0
    if kind in (ALG_RSA, ALG_ECC):
        symmetric = _symmetric(c)
        scheme = c.u16("scheme")
        if scheme != ALG_NULL:
            c.u16("scheme hash")
            if scheme == ALG_ECDAA:
                c.u16("ECDAA count")
        if kind == ALG_RSA:
            key_bits = c.u16("RSA key bits")
            exponent = c.u32("RSA exponent")
            unique: tuple[bytes, ...] = (c.sized("RSA modulus"),)
        else:
            curve = c.u16("ECC curve")
            if c.u16("KDF scheme") != ALG_NULL:
                c.u16("KDF hash")
            unique = (c.sized("ECC x"), c.sized("ECC y"))
    elif kind == ALG_KEYEDHASH:
        scheme = c.u16("keyed-hash scheme")
        if scheme in (ALG_HMAC, ALG_XOR):
            c.u16("keyed-hash scheme hash")
            if scheme == ALG_XOR:
                c.u16("XOR KDF")
        elif scheme != ALG_NULL:
            raise WireError(f"keyed-hash scheme {scheme:#06x} is not a TPM scheme")
        unique = (c.sized("keyed-hash unique"),)
    elif kind == ALG_SYMCIPHER:
        symmetric = _symmetric(c)
        unique = (c.sized("symmetric unique"),)
    else:
        raise WireError(f"public area of unknown type {kind:#06x}")
    c.done("TPMT_PUBLIC")
    return PublicArea(
        area, kind, name_alg, attributes, symmetric, key_bits, exponent, curve, unique
    )


def _symmetric(c: Cursor) -> SymmetricDefinition:
    algorithm = c.u16("symmetric algorithm")
    if algorithm == ALG_NULL:
        return SymmetricDefinition(algorithm)
    return SymmetricDefinition(algorithm, c.u16("symmetric key bits"), c.u16("symmetric mode"))


@dataclass(frozen=True)
class NvPublic:
    """A parsed TPMS_NV_PUBLIC: an NV index's size and the name NV commands are bound to."""

    index: int
    data_size: int
    name: bytes


def read_nv_public(cursor: Cursor) -> NvPublic:
    """Read a TPM2B_NV_PUBLIC from ``cursor``."""
    area = cursor.sized("TPM2B_NV_PUBLIC")
    c = Cursor(area)
    index = c.u32("NV index")
    name_alg = c.u16("NV name algorithm")
    c.u32("NV attributes")
    c.sized("NV auth policy")
    size = c.u16("NV data size")
    c.done("TPMS_NV_PUBLIC")
    return NvPublic(index, size, tpm_name(name_alg, area))
