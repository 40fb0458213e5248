"""CA use cases: set up the intermediate, import its certificate, issue device certificates.

Everything here is synchronous and I/O-free: key custody and files go through
:class:`~station.ports.CaAdministration`, signing through
:class:`~station.ports.CertificateAuthority`, records through
:class:`~station.ports.UnitOfWork`.

The rule that matters most: **the issuance-log entry is committed before a certificate is
returned**. :meth:`CaService.issue` signs inside the store's transaction and returns only after
that transaction has committed, so a certificate the station does not know about cannot exist
outside the station.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from station.domain.audit import EventDraft, format_time
from station.domain.certificates import (
    MANIFEST_SIGNING_PROFILE,
    SERIAL_BYTES,
    CertificateFacts,
    CertificateProfile,
    IssuancePlan,
    KeyDescription,
    SignedCertificate,
    SubjectContext,
    check_csr,
    check_csr_size,
    check_intermediate,
    check_issuing_csr,
    check_own_root,
    check_quota,
    decode_group_key,
    from_lab_root,
    plan_issuance,
    plan_issuing_ca,
    plan_manifest_signing,
    plan_verification,
    serial_from_random,
    serial_hex,
)
from station.domain.errors import (
    CaError,
    CaNotReadyError,
    ChainRejectedError,
    DuplicateIdentityError,
    KeyCustodyError,
    NotFoundError,
    ProfileError,
    ValidationError,
)
from station.domain.products import ProductAttestation
from station.domain.records import CertificateRecord, CertificateStatus
from station.domain.registration import normalize_registration_id
from station.domain.states import BatchStatus, DeviceStatus
from station.ports import (
    CaAdministration,
    CertificateAuthority,
    Clock,
    ProductCatalog,
    UnitOfWork,
)
from station.services.authz import Permission, require

_SERIAL_ATTEMPTS = 8
_CERTIFICATE_ATTESTATIONS = frozenset({ProductAttestation.X509, ProductAttestation.X509_INJECTED})


@dataclass(frozen=True)
class CaInitResult:
    """What ``station ca init`` produced: the key and the CSR to take to the offline root."""

    key: KeyDescription
    csr_pem: str


@dataclass(frozen=True)
class CaImportResult:
    """The installed intermediate and any warnings (expiry near)."""

    certificate: CertificateFacts
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class CaStatus:
    """What ``station ca status`` shows."""

    key_uri: str
    key: KeyDescription | None
    key_error: str
    certificate: CertificateFacts | None
    pending_csr: bool
    issued: int
    #: ``[ca] expiry_warning_days``: warn when the certificate expires sooner than this
    warn_days: int = 0
    #: the certificate chains to a lab root (``station ca lab-root``): not for production
    lab_root: bool = False

    def expires_within(self, now: datetime) -> int | None:
        """Days left when the certificate expires within :attr:`warn_days`, else None."""
        if self.certificate is None:
            return None
        left = self.certificate.not_after - now
        return max(left.days, 0) if left < timedelta(days=self.warn_days) else None


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate that is already in the issuance log, plus the chain to install with it."""

    certificate: SignedCertificate
    chain_pem: str
    profile: str
    registration_id: str
    batch: str


#: What every lab root's subject says (``station ca lab-root``); a production root never does.
LAB_ROOT_MARK = "NOT FOR PRODUCTION"


class CaService:
    """The station's CA use cases.

    Args:
        store: the identity store (issuance log, batches, operators, audit).
        admin: key custody and CA files.
        authority: opens the signing CA on first use (the HSM session stays open afterwards).
        profiles: certificate profiles by name.
        clock: the station clock.
        station_id: written into audit events.
        default_profile: the profile used when none is named.
        quota_spare: certificates a batch may use beyond its size (rework, retries).
        expiry_warning_days: warn on import/status when the chain expires sooner than this.
        random_bytes: randomness for serial numbers (injected for golden tests).
        products: the product recipes (``ca issue --batch`` checks the batch's attestation).
    """

    def __init__(
        self,
        *,
        store: UnitOfWork,
        admin: CaAdministration,
        authority: Callable[[], CertificateAuthority],
        profiles: Mapping[str, CertificateProfile],
        clock: Clock,
        station_id: str,
        default_profile: str = "device-identity",
        quota_spare: int = 0,
        expiry_warning_days: int = 30,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        products: ProductCatalog | None = None,
    ) -> None:
        self._store = store
        self._admin = admin
        self._authority_factory = authority
        self._authority: CertificateAuthority | None = None
        self._profiles = dict(profiles)
        self._clock = clock
        self._station_id = station_id
        self._default_profile = default_profile
        self._quota_spare = quota_spare
        self._warn_days = expiry_warning_days
        self._random = random_bytes
        self._products = products

    # ------------------------------------------------------------------ lifecycle
    def init(
        self,
        key_uri: str,
        *,
        algorithm: str = "ec-p256",
        common_name: str,
        organization: str = "",
        operator: str,
    ) -> CaInitResult:
        """Generate the CA key in its token and write the intermediate's CSR.

        Args:
            key_uri: where to generate the key (``pkcs11:...;object=<new label>``, ``tpm:...``).
            algorithm: ``ec-p256``, ``ec-p384`` or ``rsa-3072``.
            common_name: the intermediate's CN ("ACME Line 3 Station CA").
            organization: the intermediate's O (optional).
            operator: who acts (an admin; named in the audit event).

        Raises:
            PermissionDeniedError: the operator is not an admin (the token is not touched).
            KeyCustodyError: the token refused (exists, wrong PIN, missing token, ...).
        """
        require(self._store, operator, Permission.CA_INIT)
        if not common_name.strip():
            raise CaError("the CA needs a common name", remedy="Pass --common-name.")
        key = self._admin.generate_key(key_uri, algorithm)
        subject: list[tuple[str, str]] = [("CN", common_name.strip())]
        if organization.strip():
            subject.append(("O", organization.strip()))
        csr = self._admin.make_csr(key.uri, tuple(subject))
        self._audit(
            operator,
            "ca.key_generated",
            key.uri,
            {
                "backend": key.backend,
                "algorithm": key.algorithm,
                "key_sha256": key.public_key_sha256,
            },
        )
        return CaInitResult(key=key, csr_pem=csr)

    def import_chain(self, chain_pem: bytes, root_pem: bytes, *, operator: str) -> CaImportResult:
        """Install the intermediate the root signed, after checking it can be trusted.

        Refused unless it matches the station's key, is a CA with pathLen 0 and keyCertSign,
        chains to ``root_pem`` and is valid now. Warns when it expires within the warning window.

        Admins only: the refusal comes before anything is read or installed.

        Raises:
            PermissionDeniedError: the operator is not an admin.
            ChainRejectedError: naming the failed check.
            CaNotReadyError: no CA key yet.
        """
        require(self._store, operator, Permission.CA_IMPORT)
        uri = self._require_key_uri()
        facts = self._admin.inspect_chain(chain_pem, root_pem, uri)
        verdict = check_intermediate(facts, now=self._clock.now(), warn_days=self._warn_days)
        self._admin.install_chain(chain_pem, root_pem)
        self._close_authority()  # the next issuance loads the new chain
        self._audit(
            operator,
            "ca.chain_imported",
            facts.intermediate.subject,
            {
                "thumbprint": facts.intermediate.thumbprint_sha256,
                "root": facts.root.thumbprint_sha256,
                "not_after": format_time(facts.intermediate.not_after),
            },
        )
        return CaImportResult(certificate=facts.intermediate, warnings=verdict.warnings)

    def lab_root(self, *, operator: str, force: bool = False) -> CaImportResult:
        """Lab and tests only: a throwaway SoftHSM2 root signs the pending CSR, then import it.

        A chain that a real root signed (one imported with ``ca import``) is never replaced by
        a lab root by accident: only with ``force``.

        Admins only, checked before the lab root key is made or used.

        Raises:
            PermissionDeniedError: the operator is not an admin.
            ChainRejectedError: a production chain is installed and ``force`` is not set.
            CaNotReadyError: ``ca init`` has not written a CSR yet.
        """
        require(self._store, operator, Permission.CA_LAB_ROOT)
        installed = self._admin.installed_certificate()
        if installed is not None and LAB_ROOT_MARK not in installed.issuer and not force:
            raise ChainRejectedError(
                f"this station's CA chain was signed by {installed.issuer}, not a lab root; "
                "a lab root would replace it with a NOT FOR PRODUCTION root",
                remedy="On a production station, do not. To replace it anyway (a rehearsal "
                "station), run 'station ca lab-root --force'.",
                issuer=installed.issuer,
            )
        csr = self._admin.pending_csr()
        if not csr:
            raise CaNotReadyError(
                "there is no intermediate CSR to sign",
                remedy="Run 'station ca init --key URI' first.",
            )
        chain, root = self._admin.lab_root_sign(csr, now=self._clock.now())
        return self.import_chain(chain, root, operator=operator)

    def import_group_key(self, uri: str, group_key_base64: str, *, operator: str) -> KeyDescription:
        """Import a DPS enrollment-group key into the token or TPM (admins only).

        The key is the base64 text DPS shows for the group; it is stored as a sensitive,
        non-extractable secret, and device keys are later derived inside the token. Neither the
        key nor anything derived from it is logged.

        Raises:
            PermissionDeniedError: the operator is not an admin.
            ValidationError: the text is not base64 or the key is shorter than 16 bytes.
            KeyCustodyError: the token refused (label taken, wrong PIN, ...).
        """
        require(self._store, operator, Permission.IMPORT_GROUP_KEY)
        key = decode_group_key(group_key_base64)
        description = self._admin.import_group_key(uri, key)
        self._audit(
            operator,
            "ca.group_key_imported",
            uri,
            {"backend": description.backend, "location": description.location},
        )
        return description

    def status(self) -> CaStatus:
        """Key location, intermediate subject and validity, and the issued count.

        A missing or refusing token does not raise: its message is in ``key_error``.
        """
        uri = self._admin.key_uri()
        key: KeyDescription | None = None
        key_error = ""
        if uri:
            try:
                key = self._admin.describe_key(uri)
            except KeyCustodyError as exc:
                key_error = exc.message
        certificate = self._admin.installed_certificate()
        return CaStatus(
            key_uri=uri,
            key=key,
            key_error=key_error,
            certificate=certificate,
            pending_csr=bool(self._admin.pending_csr()),
            issued=self._store.certificates.count(),
            warn_days=self._warn_days,
            lab_root=certificate is not None and from_lab_root(certificate),
        )

    def chain(self) -> tuple[CertificateFacts, ...]:
        """The certificates above every device certificate: intermediate(s), then the root.

        Reads the installed files only; the CA key is not opened.
        """
        return self._admin.installed_chain()

    # ------------------------------------------------------------------ issuance
    def issue(
        self,
        csr: bytes,
        registration_id: str,
        *,
        profile: str = "",
        batch: str = "",
        job_id: int | None = None,
        context: SubjectContext | None = None,
        manual: bool = False,
        operator: str,
    ) -> IssuedCertificate:
        """Issue a device certificate for ``registration_id`` from a board's CSR.

        The certificate takes only the CSR's public key; subject, usages and validity come from
        the profile. The issuance-log entry and its audit event are committed before this
        returns. (Called inside a caller's own ``store`` block, the entry commits with
        the caller's transaction: the caller must not hand the certificate out before that.)

        The batch quota counts every certificate logged for the batch, voided ones included:
        a board that keeps failing after signing uses up the spare, which is the point.

        Args:
            csr: the CSR, PEM or DER.
            registration_id: the device's registration ID (becomes the CN).
            profile: a profile name (default: the configured default).
            batch: the batch the device belongs to; its quota is enforced.
            job_id: the provisioning job, recorded with the certificate.
            context: values for the profile's subject templates.
            manual: issued by an admin outside a provisioning job (``station ca issue``); the
                audit event says so, which is what lets ``db verify`` accept a certificate that
                belongs to no device and no job.
            operator: who acts (one who may provision; named in the issuance's audit event).

        Raises:
            PermissionDeniedError: the operator may not provision.
            CsrRejectedError: the CSR breaks the policy (``details["reason"]``).
            QuotaExceededError: the batch used its quota.
            InvalidRegistrationIdError: the registration ID breaks the X.509 rules.
            KeyCustodyError: the HSM could not sign.
        """
        require(self._store, operator, Permission.PROVISION)
        chosen = self._profile(profile)
        if chosen.signs_manifests:
            raise ProfileError(
                f"profile {chosen.name!r} certifies the batch-manifest key, never a device",
                remedy="Use a device profile; run 'station ca manifest-key' for the manifest key.",
                profile=chosen.name,
            )
        check_csr_size(len(csr))
        authority = self._ca()
        facts = authority.inspect_csr(csr)
        reg_id = check_csr(facts, registration_id)
        ca_cert = authority.certificate()
        with self._store:
            if batch:
                record = self._store.batches.get(batch)
                if record is None:
                    raise NotFoundError(
                        f"batch {batch} does not exist",
                        remedy="Create the batch before provisioning into it.",
                        batch=batch,
                    )
                check_quota(
                    batch=batch,
                    issued=self._store.batches.counts(batch).certificates,
                    batch_size=record.size,
                    spare=self._quota_spare,
                )
            now = self._clock.now()
            plan = plan_issuance(
                chosen,
                reg_id,
                serial=self._fresh_serial(),
                now=now,
                ca_not_after=ca_cert.not_after,
                context=context or SubjectContext(batch=batch),
            )
            signed = self._sign(authority, plan, facts.public_key_der)
            self._log(operator, signed, plan, now=now, batch=batch, job_id=job_id, manual=manual)
        return IssuedCertificate(
            certificate=signed,
            chain_pem=authority.chain_pem(),
            profile=plan.profile,
            registration_id=reg_id,
            batch=batch,
        )

    def issue_as_admin(
        self,
        csr: bytes,
        registration_id: str,
        *,
        profile: str = "",
        batch: str = "",
        operator: str,
    ) -> IssuedCertificate:
        """``station ca issue``: the same issuance, for admins only (rework, policy tests).

        The line's checks apply too: no second live certificate for a registration ID that is
        provisioned, being provisioned, or already holds one; and a ``batch`` must be an open
        batch of a product whose devices get certificates (X.509 attestation).

        Raises:
            PermissionDeniedError: the operator is not an admin.
            DuplicateIdentityError: the registration ID is taken (see above).
            ValidationError: the batch is closed or of another attestation.
        """
        require(self._store, operator, Permission.ISSUE_CERTIFICATE)
        wanted = normalize_registration_id(registration_id, x509=True)
        self._check_unclaimed(wanted)
        if batch:
            self._check_certificate_batch(batch)
        return self.issue(csr, wanted, profile=profile, batch=batch, manual=True, operator=operator)

    def _check_unclaimed(self, registration_id: str) -> None:
        device = self._store.devices.get(registration_id)
        if device is not None and device.status != DeviceStatus.VOIDED:
            raise DuplicateIdentityError(
                f"registration ID {registration_id} is already provisioned (batch "
                f"{device.batch}, board {device.serial})",
                remedy="Void the device first ('station devices void') if it really needs a new "
                "certificate.",
                registration_id=registration_id,
            )
        live = [
            c
            for c in self._store.certificates.for_device(registration_id)
            if c.status == CertificateStatus.ISSUED
        ]
        if live:
            raise DuplicateIdentityError(
                f"registration ID {registration_id} already holds live certificate "
                f"{live[0].serial_number}",
                remedy="Void that certificate first, or use another registration ID.",
                registration_id=registration_id,
            )
        if any(j.registration_id == registration_id for j in self._store.jobs.open()):
            raise DuplicateIdentityError(
                f"registration ID {registration_id} is being provisioned on the line right now",
                remedy="Let the job finish or void it ('station provision void').",
                registration_id=registration_id,
            )

    def _check_certificate_batch(self, batch: str) -> None:
        record = self._store.batches.get(batch)
        if record is None:
            raise NotFoundError(f"batch {batch} does not exist", batch=batch)
        if record.status != BatchStatus.OPEN:
            raise ValidationError(
                f"batch {batch} is {record.status}, not open", remedy="Name an open batch."
            )
        if self._products is not None:
            attestation = self._products.product(record.product).attestation
            if attestation not in _CERTIFICATE_ATTESTATIONS:
                raise ValidationError(
                    f"batch {batch} is a {attestation} batch: its devices get no certificate",
                    remedy="Name a batch of an X.509 product, or none.",
                    batch=batch,
                    attestation=str(attestation),
                )

    def certify_manifest_key(self, *, operator: str) -> IssuedCertificate:
        """``station ca manifest-key``: certify the HSM's batch-manifest key; admins only.

        The key is generated in its token when it does not exist yet (it never leaves it). The
        certificate uses the manifest-signing profile (CN = the station ID, the manifest-signing
        extended key usage only), is logged and audited like every issuance, and its chain is
        written where the station's exports read it.

        Raises:
            PermissionDeniedError: the operator is not an admin.
            CaNotReadyError: no CA, or no manifest key configured.
            ProfileError: the manifest-signing profile is missing or not one.
            KeyCustodyError: the HSM refused.
        """
        require(self._store, operator, Permission.CERTIFY_MANIFEST_KEY)
        chosen = self._profile(MANIFEST_SIGNING_PROFILE)
        public_key = self._admin.manifest_key_public()
        authority = self._ca()
        ca_cert = authority.certificate()
        with self._store:
            now = self._clock.now()
            plan = plan_manifest_signing(
                chosen,
                self._station_id,
                serial=self._fresh_serial(),
                now=now,
                ca_not_after=ca_cert.not_after,
            )
            signed = self._sign(authority, plan, public_key)
            self._log(operator, signed, plan, now=now, batch="", job_id=None, manual=True)
        chain = authority.chain_pem()
        self._admin.install_manifest_chain(signed.pem + chain)
        return IssuedCertificate(
            certificate=signed,
            chain_pem=chain,
            profile=plan.profile,
            registration_id="",
            batch="",
        )

    def sign_issuing_csr(
        self,
        csr_pem: bytes,
        *,
        root_key_uri: str,
        operator: str,
        root_pem: bytes = b"",
        days: int = 365,
    ) -> IssuedCertificate:
        """Bring your own root: sign the issuing-CA CSR a DPS credential policy generated.

        Azure Device Registry's certificate management lets a policy's issuing CA be signed by
        the customer's root. The root key stays in the HSM; the root must be ECC, have path
        length 1 and at least 365 days left; the issuing CA gets path length 0 and ends no
        later than the root. Logged and audited like every issuance (profile
        ``adr-issuing-ca``); admins only.

        Args:
            csr_pem: the CSR downloaded from the policy (PEM or DER).
            root_key_uri: the root's key in the HSM.
            operator: who signs (must be an admin).
            root_pem: the root certificate (default: the installed ``[ca] root_file``).
            days: the issuing CA's validity, cut at the root's expiry.

        Raises:
            PermissionDeniedError: not an admin.
            OwnRootRefusedError: the root or the CSR breaks the service's rules.
            CsrRejectedError: the file is not a CSR.
            KeyCustodyError: the HSM refused.
        """
        require(self._store, operator, Permission.SIGN_ISSUING_CSR)
        root_pem = root_pem or self._admin.root_pem()
        if not root_pem:
            raise CaNotReadyError(
                "no root certificate to sign with",
                remedy="Pass --root ROOT.pem (or install the root with 'station ca import').",
            )
        now = self._clock.now()
        root = self._admin.inspect_own_root(root_pem, root_key_uri)
        check_own_root(root, now=now)
        common_name = check_issuing_csr(self._admin.inspect_issuing_csr(csr_pem))
        with self._store:
            plan = plan_issuing_ca(
                common_name,
                serial=self._fresh_serial(),
                now=now,
                days=days,
                root_not_after=root.certificate.not_after,
            )
            signed = self._admin.sign_issuing_ca(
                csr_pem, plan, root_pem=root_pem, key_uri=root_key_uri
            )
            self._log(operator, signed, plan, now=now, batch="", job_id=None, manual=True)
        return IssuedCertificate(
            certificate=signed,
            chain_pem=root_pem.decode("ascii", errors="replace"),
            profile=plan.profile,
            registration_id="",
            batch="",
        )

    def verify_code(self, code: str, *, operator: str) -> IssuedCertificate:
        """Sign a DPS proof-of-possession certificate (subject CN = ``code``); admins only.

        The certificate is logged like any other (profile ``dps-verification``).
        """
        require(self._store, operator, Permission.SIGN_VERIFICATION)
        authority = self._ca()
        ca_cert = authority.certificate()
        with self._store:
            now = self._clock.now()
            plan = plan_verification(
                code, serial=self._fresh_serial(), now=now, ca_not_after=ca_cert.not_after
            )
            signed = self._sign(authority, plan, b"")
            # logged as voided at once: it proves key possession to DPS and is never a device's
            self._log(
                operator,
                signed,
                plan,
                now=now,
                batch="",
                job_id=None,
                status=CertificateStatus.VOIDED,
                void_reason="DPS verification certificate, not a device identity",
            )
        return IssuedCertificate(
            certificate=signed,
            chain_pem=authority.chain_pem(),
            profile=plan.profile,
            registration_id="",
            batch="",
        )

    def open(self) -> None:
        """Open the signing CA now (HSM session, key), not at the first issuance.

        A line gets ready before its first board this way, and a missing token or a wrong PIN
        is reported while nobody waits for a board.

        Raises:
            CaNotReadyError: no CA key configured; KeyCustodyError: the HSM refused.
        """
        self._ca()

    @property
    def is_open(self) -> bool:
        """Whether the signing CA (HSM session and key) is open."""
        return self._authority is not None

    def close(self) -> None:
        """Close the signing CA if it was opened."""
        self._close_authority()

    # ------------------------------------------------------------------ helpers
    def _profile(self, name: str) -> CertificateProfile:
        chosen = name or self._default_profile
        try:
            return self._profiles[chosen]
        except KeyError:
            raise ProfileError(
                f"there is no certificate profile {chosen!r}",
                remedy=f"Use one of: {', '.join(sorted(self._profiles)) or '(none installed)'}.",
                profile=chosen,
            ) from None

    def _ca(self) -> CertificateAuthority:
        if self._authority is None:
            self._authority = self._authority_factory()
        return self._authority

    def _sign(
        self, authority: CertificateAuthority, plan: IssuancePlan, public_key_der: bytes
    ) -> SignedCertificate:
        try:
            return authority.sign(plan, public_key_der)
        except KeyCustodyError:
            # the session is dead (token pulled, TPM reset): reopen on the next attempt
            self._close_authority()
            raise

    def _close_authority(self) -> None:
        if self._authority is not None:
            self._authority.close()
            self._authority = None

    def _require_key_uri(self) -> str:
        uri = self._admin.key_uri()
        if not uri:
            raise CaNotReadyError(
                "the station has no CA key yet",
                remedy="Run 'station ca init --key URI' (or set [ca] key_uri).",
            )
        return uri

    def _fresh_serial(self) -> int:
        for _ in range(_SERIAL_ATTEMPTS):
            try:
                serial = serial_from_random(self._random(SERIAL_BYTES))
            except ValueError:
                continue
            if self._store.certificates.get(serial_hex(serial)) is None:
                return serial
        raise CaError(
            "could not draw a fresh certificate serial number",
            remedy="The random source is broken; do not issue until it is fixed.",
        )

    def _log(
        self,
        operator: str,
        signed: SignedCertificate,
        plan: IssuancePlan,
        *,
        now: datetime,
        batch: str,
        job_id: int | None,
        status: str = CertificateStatus.ISSUED,
        void_reason: str = "",
        manual: bool = False,
    ) -> None:
        self._store.certificates.save(
            CertificateRecord(
                serial_number=signed.serial_hex,
                registration_id=plan.registration_id,
                thumbprint_sha256=signed.thumbprint_sha256,
                certificate_pem=signed.pem,
                not_before=format_time(signed.not_before),
                not_after=format_time(signed.not_after),
                profile=plan.profile,
                status=status,
                issued_at=format_time(now),
                batch=batch,
                job_id=job_id,
                void_reason=void_reason,
            )
        )
        self._audit(
            operator,
            "ca.certificate_issued",
            plan.registration_id or signed.subject,
            {
                "serial": signed.serial_hex,
                "thumbprint": signed.thumbprint_sha256,
                "profile": plan.profile,
                "batch": batch,
                "not_after": format_time(signed.not_after),
                "manual": manual,
            },
        )

    def _audit(self, operator: str, kind: str, subject: str, payload: Mapping[str, Any]) -> None:
        self._store.audit.append(
            EventDraft(
                kind=kind,
                subject=subject,
                payload=dict(payload),
                operator=operator,
                station=self._station_id,
            )
        )
