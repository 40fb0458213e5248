"""Regenerate the label golden files (and, with --docs, the label images in docs/images).

Run from the repository root:  .venv/bin/python tests/golden/labels/regenerate.py [--docs]

Golden files: the fixed TPM record of tests/support/label_records.py rendered with the shipped templates
(device-50x25 as PDF + PNG at 200 dpi, tape-62mm as ZPL). Review the PNG by eye before committing.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from station.adapters.labels.render import LabelRenderer, pdf_to_png  # noqa: E402
from station.adapters.labels.report import BatchReportRenderer  # noqa: E402
from station.adapters.labels.templates import TemplateLibrary  # noqa: E402
from station.adapters.labels.zpl import render_zpl  # noqa: E402
from station.domain.labels.model import LabelData  # noqa: E402
from station.domain.labels.reports import ReportDevice, summarize_batch  # noqa: E402
from tests.support.label_records import tpm_manifest, x509_manifest  # noqa: E402

HERE = Path(__file__).resolve().parent
GOLDEN_DPI = 200


def golden_data() -> LabelData:
    """The fixed record every golden file shows."""
    return LabelData.from_manifest(tpm_manifest())


def write_golden() -> None:
    library = TemplateLibrary()
    renderer = LabelRenderer()
    pdf = renderer.render_pdf(library.get("device-50x25"), [golden_data()], title="golden")
    (HERE / "device-50x25.pdf").write_bytes(pdf)
    (HERE / "device-50x25.png").write_bytes(pdf_to_png(pdf, dpi=GOLDEN_DPI))
    zpl = render_zpl(library.get("tape-62mm"), [golden_data()])
    (HERE / "tape-62mm.zpl").write_text(zpl, encoding="utf-8")
    print(f"wrote golden files in {HERE}")


def sample_batch(count: int) -> list[LabelData]:
    """A batch of X.509 devices with plausible serials and IDs."""
    labels = []
    for index in range(count):
        manifest = x509_manifest(f"edgesense-x-{index + 1:06d}-7f3a", serial=f"X-{index + 1:06d}")
        labels.append(LabelData.from_manifest(manifest))
    return labels


def write_docs() -> None:
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    library = TemplateLibrary()
    renderer = LabelRenderer()
    device = renderer.render_pdf(library.get("device-50x25"), [golden_data()])
    (images / "label-device-50x25.png").write_bytes(pdf_to_png(device, dpi=300))
    tape = renderer.render_pdf(library.get("tape-62mm"), [golden_data()])
    (images / "label-tape-62mm.png").write_bytes(pdf_to_png(tape, dpi=300))
    sheet = renderer.render_pdf(library.get("sheet-a4-3x8"), sample_batch(24))
    (images / "label-sheet-a4-3x8.png").write_bytes(pdf_to_png(sheet, dpi=110))
    start = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    devices = [
        ReportDevice(
            registration_id=d.registration_id,
            serial=d.serial,
            attestation="x509" if i % 3 else "tpm",
            status="provisioned",
            thumbprint=("ab" * 32) if i % 3 else ("3f" * 32),
            provisioned_at=(start + timedelta(minutes=4 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for i, d in enumerate(sample_batch(40))
    ]
    failures = ["tpm timeout"] * 4 + ["csr rejected"] * 2 + ["board unplugged"] * 3 + ["noise"]
    report = summarize_batch(
        batch="WO-4711",
        product="edgesense",
        station="station-07",
        generated_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        devices=devices,
        failures=failures,
        labels_printed=40,
        labels_reprinted=2,
    )
    pdf = BatchReportRenderer().render(report)
    (images / "batch-report-page1.png").write_bytes(pdf_to_png(pdf, dpi=80))
    print(f"wrote label images in {images}")


if __name__ == "__main__":
    write_golden()
    if "--docs" in sys.argv[1:]:
        write_docs()
