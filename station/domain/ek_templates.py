"""The EK templates of the TCG EK Credential Profile the station knows, and where each EK lives.

A TPM may carry several endorsement keys: the low-range RSA 2048 and ECC P-256 EKs (profile 2.0)
and the high-range ones (profile 2.3+: RSA 2048/3072/4096, ECC P-256/P-384/P-521). Each has its
certificate in its own NV index. A product names one template (``ek_template``): that EK is the
one the station reads, checks, proves resident, records and enrolls with DPS; its registration
ID is derived from it.

Persistent handles: 0x81010001 (RSA 2048) and 0x81010002 (ECC P-256) are the TCG's; the high
range has no handle of its own in the profile, and the station uses 0x810100NN for the
certificate index 0x01c000NN, as swtpm_setup does (its ECC P-384 EK sits at 0x81010016).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EkTemplate:
    """One EK template: its names, persistent handle and certificate NV indices."""

    name: str  # the station's name, as in product recipes
    tcg_name: str  # the TCG / tpm2-pytss name (EK-RSA2048, EK-HIGH-ECC384, ...)
    handle: int  # persistent handle of the EK
    cert_indices: tuple[int, ...]  # NV indices of its certificate, low range first
    high_range: bool = False  # needs a certificate (and its template) in NV to be created


EK_TEMPLATES: dict[str, EkTemplate] = {
    t.name: t
    for t in (
        EkTemplate("rsa2048", "EK-RSA2048", 0x81010001, (0x01C00002, 0x01C00012)),
        EkTemplate("ecc-p256", "EK-ECC256", 0x81010002, (0x01C0000A, 0x01C00014)),
        EkTemplate("ecc-p384", "EK-HIGH-ECC384", 0x81010016, (0x01C00016,), high_range=True),
        EkTemplate("ecc-p521", "EK-HIGH-ECC521", 0x81010018, (0x01C00018,), high_range=True),
        EkTemplate("rsa3072", "EK-HIGH-RSA3072", 0x8101001C, (0x01C0001C,), high_range=True),
        EkTemplate("rsa4096", "EK-HIGH-RSA4096", 0x8101001E, (0x01C0001E,), high_range=True),
    )
}
