"""EK-certificate trust for offline factories: import vendor CAs (audited), list what is trusted.

Which vendors a station trusts decides which TPM boards pass, so every import is an audit event
(``tpm.trust_imported``, one per certificate, subject = its SHA-256 fingerprint) with the
operator, the station, the certificate's subject and the file it came from.
"""

from __future__ import annotations

from pathlib import Path

from station.domain.audit import EventDraft
from station.domain.tpm import TrustEntry, TrustImportReport, TrustSkip, WantedIssuer
from station.ports import Clock, EkTrustStore, UnitOfWork
from station.services.authz import Permission, require

TRUST_IMPORTED = "tpm.trust_imported"


class TpmTrustService:
    """Import and list EK-certificate trust anchors.

    Args:
        trust: the trust folders.
        store: where the audit events go.
        clock: the import time.
        station_id: this station, for the audit trail.
    """

    def __init__(
        self,
        trust: EkTrustStore,
        store: UnitOfWork,
        *,
        clock: Clock,
        station_id: str,
    ) -> None:
        self._trust = trust
        self._store = store
        self._clock = clock
        self._station_id = station_id

    def import_path(self, path: Path, *, operator: str) -> TrustImportReport:
        """Import the CA certificates in ``path`` (file or folder); audit each one imported.

        ``operator`` (who imports: an admin, since a trust anchor decides which TPMs the line
        accepts) is named in each audit event.

        Raises:
            PermissionDeniedError: the operator is not an admin (nothing is read or copied).
            ConfigError: the trust folder cannot be written.
        """
        require(self._store, operator, Permission.TRUST_EK_ISSUERS)
        report = self._trust.import_path(path, now=self._clock.now())
        for entry in report.imported:
            self._store.audit.append(
                EventDraft(
                    kind=TRUST_IMPORTED,
                    subject=entry.fingerprint,
                    payload={
                        "subject": entry.subject,
                        "source": entry.source,
                        "file": entry.file,
                        "signed_by": entry.signed_by,
                    },
                    operator=operator,
                    station=self._station_id,
                )
            )
        return report

    def entries(self) -> tuple[list[TrustEntry], list[TrustSkip]]:
        """Every anchor the station trusts, and the trust files it could not use."""
        return self._trust.entries()

    def wanted(self) -> list[WantedIssuer]:
        """Issuers EK certificates named that no anchor provides."""
        return self._trust.wanted()
