"""The label tests' plain helpers: barcodes read back from a PDF page, a seeded store.

The fixtures (templates, renderer, stores, printers, ``make_service``) are in
``tests/labels/conftest.py``.
"""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image

from station.adapters.labels.render import pdf_to_png
from station.domain.records import OperatorRecord, Role
from tests.support.label_records import (
    device_record,
    symmetric_manifest,
    tpm_manifest,
    x509_manifest,
)


def decode_page(pdf: bytes, *, page: int = 1, dpi: int = 600) -> list[str]:
    """Rasterise one page with pdftoppm and return every decoded barcode text, sorted."""
    image = Image.open(io.BytesIO(pdf_to_png(pdf, page=page, dpi=dpi)))
    return sorted(result.text for result in zxingcpp.read_barcodes(image))


def seed(store, *, qa: str = "quinn") -> list[str]:
    """Record three devices of batch WO-4711 (TPM, X.509, symmetric key) and a QA operator."""
    ids = []
    for seq, manifest in enumerate((tpm_manifest(), x509_manifest(), symmetric_manifest()), 1):
        store.devices.save(device_record(manifest, event_seq=seq))
        ids.append(manifest.registration_id)
    store.operators.save(OperatorRecord(qa, Role.QA, True, "2026-11-01T00:00:00Z"))
    store.operators.save(OperatorRecord("tina", Role.TECHNICIAN, True, "2026-11-01T00:00:00Z"))
    return ids
