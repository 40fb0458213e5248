"""The TPM identity use case: read a board's EK, check its certificate, prove it is resident.

``station tpm read`` calls :meth:`TpmIdentityService.read_identity` (everything at once). The
provisioning step machine runs the same checks one persisted step at a time, through
:meth:`~TpmIdentityService.best_certificate`, :meth:`~TpmIdentityService.admit_certificate` and
:meth:`~TpmIdentityService.require_residency`, so both apply one policy. What is recorded is the EK
exactly as the TPM holds it at 0x81010001, and the registration ID derived from it.

Order matters: the EK certificate is only evidence about a key; the residency proof is what ties
that key to the TPM on this board. A board that fails the proof is rejected whatever its
certificate says, and a certificate result the product blocks stops the board too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from station.domain.errors import EkCertificateRejectedError, TpmEkAbsentError, TpmResidencyError
from station.domain.products import EkCertificateResult, ProductRecipe
from station.domain.tpm import EkCertificateCheck, TpmIdentityResult
from station.ports import Clock, EkCertificateVerifier, TpmIdentityReader

_REMEDIES = {
    EkCertificateResult.ABSENT: "This product requires an EK certificate; reject the board or "
    "ask the TPM vendor for its certificate.",
    EkCertificateResult.UNTRUSTED: "Add the TPM vendor's root or intermediate CA to the trust "
    "folder ([tpm] trust_dir), or reject the board if its vendor is unknown.",
    EkCertificateResult.MISMATCH: "The TPM's certificate belongs to another key: reject the "
    "board and report it as suspect.",
    EkCertificateResult.EXPIRED: "The EK certificate (or its issuer) is outside its validity "
    "period: check the station clock, then reject the board.",
    EkCertificateResult.MALFORMED: "The EK certificate cannot be read: reject the board and "
    "report it to the TPM vendor.",
}


class TpmIdentityService:
    """Read and vet TPM identities.

    Args:
        verifier: checks EK certificates against the station's trust anchors.
        clock: the time certificates are checked at.
    """

    def __init__(self, verifier: EkCertificateVerifier, *, clock: Clock) -> None:
        self._verifier = verifier
        self._clock = clock

    def identify(
        self,
        reader: TpmIdentityReader,
        *,
        template: str = "rsa2048",
        create_if_absent: bool = False,
        evidence: tuple[str, ...] = (),
    ) -> TpmIdentityResult:
        """Read the identity and gather the evidence, without applying any product policy.

        Steps: EK (created only if absent and allowed), SRK (created if absent), EK certificate
        from NV (checked against the EK and the trust anchors; with ``evidence``, also those of
        the other EKs named), residency proof.

        Raises:
            TpmEkAbsentError: no EK and creating one is not allowed.
            TpmError: the TPM failed or could not be reached.
        """
        key = reader.read_endorsement_key(template=template, create_if_absent=create_if_absent)
        srk = reader.ensure_storage_root_key()
        check = self.best_certificate(reader, key.template, key.public, evidence=evidence)
        resident = reader.prove_residency(key.public)
        return TpmIdentityResult.build(key, srk=srk, ek_certificate=check, resident=resident)

    def best_certificate(
        self,
        reader: TpmIdentityReader,
        template: str,
        ek: bytes,
        *,
        evidence: tuple[str, ...] = (),
    ) -> EkCertificateCheck:
        """Read the EK certificates from NV and check each against its EK: the best verdict.

        ``evidence`` names other EK templates whose certificates may vouch for the TPM too (a
        TPM whose enrolled RSA EK is not certified but whose ECC EK is). Such an EK is only
        used when the TPM holds it: its certificates count once the TPM proved it resident.

        Raises:
            TpmResidencyError: an evidence EK with certificates is not resident (a lying board).
            TpmError: the TPM failed or could not be reached.
        """
        now = self._clock.now()
        checks = self._checks(reader, template, ek, now)
        for other in evidence:
            try:
                key = reader.read_endorsement_key(template=other, create_if_absent=False)
            except TpmEkAbsentError:
                continue  # this TPM has no such EK: nothing to vouch with
            found = self._checks(reader, other, key.public, now)
            if found and not reader.prove_residency(key.public):
                raise _not_resident("", evidence_ek=other)
            checks += found
        if not checks:
            return replace(self._verifier.check(None, ek=ek, now=now), ek_template=template)
        # A TPM may carry several certificates (both NV ranges, several EKs): the best wins.
        rank = [
            EkCertificateResult.VALID,
            EkCertificateResult.EXPIRED,
            EkCertificateResult.UNTRUSTED,
            EkCertificateResult.MALFORMED,
            EkCertificateResult.MISMATCH,
        ]
        return min(checks, key=lambda c: rank.index(c.status) if c.status in rank else len(rank))

    def _checks(
        self, reader: TpmIdentityReader, template: str, ek: bytes, now: datetime
    ) -> list[EkCertificateCheck]:
        return [
            replace(
                self._verifier.check(data, ek=ek, now=now, nv_index=index), ek_template=template
            )
            for index, data in reader.read_ek_certificates(template)
        ]

    def admit(self, result: TpmIdentityResult, product: ProductRecipe) -> None:
        """Apply ``product``'s policy to an identity.

        Raises:
            TpmResidencyError: the TPM could not prove it holds the EK (always blocking).
            EkCertificateRejectedError: the certificate result is one the product blocks.
        """
        if not result.resident:
            raise _not_resident(
                result.registration_id, ek_certificate=result.ek_certificate.status.value
            )
        self.admit_certificate(
            result.ek_certificate, product, registration_id=result.registration_id
        )

    def require_residency(
        self, reader: TpmIdentityReader, ek: bytes, *, registration_id: str = ""
    ) -> None:
        """Prove the TPM holds ``ek`` (credential activation), or raise.

        Raises:
            TpmResidencyError: the TPM could not activate a credential made for ``ek``.
            TpmError: the TPM failed or could not be reached.
        """
        if not reader.prove_residency(ek):
            raise _not_resident(registration_id)

    def admit_certificate(
        self, cert: EkCertificateCheck, product: ProductRecipe, *, registration_id: str = ""
    ) -> None:
        """Apply ``product``'s EK-certificate policy.

        Raises:
            EkCertificateRejectedError: the certificate result is one the product blocks.
        """
        if product.blocks(cert.status):
            raise EkCertificateRejectedError(
                f"EK certificate is {cert.status.value}"
                + (f": {cert.reason}" if cert.reason else "")
                + f" (product {product.name} blocks this)",
                remedy=_REMEDIES.get(cert.status, ""),
                status=cert.status.value,
                vendor=cert.vendor,
                product=product.name,
                registration_id=registration_id,
            )

    def read_identity(self, reader: TpmIdentityReader, product: ProductRecipe) -> TpmIdentityResult:
        """Identify the board's TPM with ``product``'s EK rules and admit it, or raise.

        Raises:
            TpmEkAbsentError, TpmError: see :meth:`identify`.
            TpmResidencyError, EkCertificateRejectedError: see :meth:`admit`.
        """
        result = self.identify(
            reader,
            template=product.ek_template,
            create_if_absent=product.create_ek_if_absent,
            evidence=product.evidence_eks,
        )
        self.admit(result, product)
        return result

    def check_certificate(self, data: bytes, *, ek: bytes | None = None) -> EkCertificateCheck:
        """Check one EK certificate (DER or PEM), optionally against an EK (TPM2B_PUBLIC)."""
        return self._verifier.check(data, ek=ek, now=self._clock.now())


def _not_resident(registration_id: str, **details: str) -> TpmResidencyError:
    return TpmResidencyError(
        "the board's TPM could not prove it holds the endorsement key it presented",
        remedy="Reject the board and set it aside as suspect (cloned or tampered).",
        registration_id=registration_id,
        **details,
    )
