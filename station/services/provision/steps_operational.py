"""The operational-key step: prove on the line that the board can renew a DPS-issued certificate.

For products whose operational certificates come from DPS certificate management (preview),
the board sends a CSR at every registration and DPS issues the chain. DPS takes only a CSR for
an EC P-384 key whose CN is the registration ID, so the station has the board make that key (in
its ``operational`` slot) and a CSR, and checks both with DPS's rules before the board is locked.
A board that cannot would fail in the field; here it stops with a reason and a remedy, and
nothing is recorded. The onboarding credential (X.509, symmetric key or TPM) is the flow's own.
"""

from __future__ import annotations

import hashlib

from station.domain.certificates import OPERATIONAL_CURVE, check_operational_csr
from station.domain.errors import (
    BoardReportedError,
    CredentialPolicyUnknownError,
    CsrRejectedError,
    NotFoundError,
    OperationalKeyError,
)
from station.domain.manifest import OperationalCertificate
from station.protocol.ops import CURVE_P384, OPERATIONAL_KEY
from station.services.provision.context import StepContext

_UNSUPPORTED = ("unsupported", 4)
_LOCKED = ("locked", 5)


def operational_key(ctx: StepContext, state: object) -> str:
    """Check the policy, have the board make its P-384 key and CSR, and verify the CSR."""
    spec = ctx.board.recipe.operational_certificate
    if spec is None:  # the table only binds this step for such products
        raise RuntimeError("operational-key ran for a product without operational certificates")
    try:
        ctx.ports.products.credential_policy(spec.credential_policy)
    except NotFoundError as exc:
        raise CredentialPolicyUnknownError(
            f"the product names the DPS credential policy {spec.credential_policy!r}, "
            "which the station does not know",
            remedy=exc.remedy,
            credential_policy=spec.credential_policy,
        ) from exc
    reg_id = ctx.run.registration_id
    public: bytes | None
    try:
        public = ctx.link.keygen(key=OPERATIONAL_KEY, curve=CURVE_P384, replace=True)
    except BoardReportedError as exc:
        if exc.details.get("status") in _LOCKED:
            # a job resumed after the lock (a crash before record): the key made before the
            # lock stays; its CSR, which a locked board still signs, is checked as usual
            public = None
        elif exc.details.get("status") in _UNSUPPORTED:
            raise OperationalKeyError(
                "the board cannot make an EC P-384 key, which DPS certificates need",
                remedy="Set the board aside for QA: its secure element or firmware does not "
                "support P-384 (keygen with curve p384 and key slot 'operational').",
                reason="curve_unsupported",
            ) from exc
        else:
            raise
    try:
        facts = ctx.ports.crypto.csr_facts(ctx.link.csr(reg_id, key=OPERATIONAL_KEY))
    except CsrRejectedError as exc:
        raise OperationalKeyError(
            f"the board's operational CSR cannot be read ({exc.message})",
            remedy="Set the board aside for QA: its firmware answers csr with garbage.",
            reason="malformed",
        ) from exc
    check_operational_csr(facts, reg_id)
    public = public if public is not None else facts.public_key_der
    if facts.public_key_der != public:
        raise OperationalKeyError(
            "the operational CSR is for another key than the one keygen returned",
            remedy="Set the board aside for QA: its secure element is faulty or counterfeit.",
            reason="key_mismatch",
        )
    ctx.run.operational = OperationalCertificate(
        credential_policy=spec.credential_policy,
        public_key_sha256=hashlib.sha256(public).hexdigest(),
        key_curve=CURVE_P384,
    )
    return f"P-384 ({OPERATIONAL_CURVE}) CSR for {reg_id} verified, policy {spec.credential_policy}"
