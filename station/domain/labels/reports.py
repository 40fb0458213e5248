"""The batch report's content and a printer's receipt."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ReportDevice:
    """One device row of a batch report."""

    registration_id: str
    serial: str
    attestation: str
    status: str
    thumbprint: str
    provisioned_at: str


@dataclass(frozen=True)
class BatchReport:
    """Everything the batch report PDF shows (built by the label service, drawn by an adapter)."""

    batch: str
    product: str
    station: str
    generated_at: str
    first_at: str
    last_at: str
    devices: tuple[ReportDevice, ...]
    by_attestation: tuple[tuple[str, int], ...]
    by_result: tuple[tuple[str, int], ...]
    failure_reasons: tuple[tuple[str, int], ...]  # pareto order: most frequent first
    units_per_hour: tuple[tuple[str, int], ...]  # ("2026-11-26T09", 12), in time order
    labels_printed: int
    labels_reprinted: int

    @property
    def passed(self) -> int:
        """Devices that reached ``provisioned``."""
        return dict(self.by_result).get("provisioned", 0)

    @property
    def attempts(self) -> int:
        """Passed devices plus recorded failures."""
        return self.passed + sum(count for _, count in self.failure_reasons)

    @property
    def yield_percent(self) -> float:
        """First-pass yield: passed / attempts, in percent (0 when nothing was attempted)."""
        return 100.0 * self.passed / self.attempts if self.attempts else 0.0


def summarize_batch(
    *,
    batch: str,
    product: str,
    station: str,
    generated_at: datetime,
    devices: Sequence[ReportDevice],
    failures: Sequence[str],
    labels_printed: int = 0,
    labels_reprinted: int = 0,
) -> BatchReport:
    """Count a batch: by attestation, by result, failure pareto and units per hour."""
    times = sorted(d.provisioned_at for d in devices if d.provisioned_at)
    per_hour = Counter(t[:13] for t in times)
    reasons = Counter(failures)
    return BatchReport(
        batch=batch,
        product=product,
        station=station,
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        first_at=times[0] if times else "",
        last_at=times[-1] if times else "",
        devices=tuple(devices),
        by_attestation=tuple(sorted(Counter(d.attestation for d in devices).items())),
        by_result=tuple(sorted(Counter(d.status for d in devices).items())),
        failure_reasons=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        units_per_hour=tuple(sorted(per_hour.items())),
        labels_printed=labels_printed,
        labels_reprinted=labels_reprinted,
    )


@dataclass(frozen=True)
class PrintReceipt:
    """What a printer accepted: the station counts a label as printed only with a receipt."""

    printer: str  # the printer spec ("cups:QA-Zebra", "zpl://10.0.0.5:9100", "file:/tmp/x.pdf")
    labels: int
    job: str = ""  # the spooler's job id, a file path, or the bytes sent
