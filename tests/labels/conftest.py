"""Fixtures for label tests: templates, renderer, a store (in-memory fake and real SQLite)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from station.adapters.labels.render import pdf_to_png
from station.adapters.labels.templates import TemplateLibrary
from station.adapters.labels.toolkit import ReportlabLabels
from station.bootstrap import build_station
from station.domain.errors import PrinterOfflineError
from station.domain.labels.model import LabelData, LabelTemplate
from station.domain.labels.reports import PrintReceipt
from station.domain.records import OperatorRecord, Role
from station.services.labels import LabelService
from tests.support.fake_store import FakeUnitOfWork
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


@pytest.fixture(scope="session")
def library() -> TemplateLibrary:
    return TemplateLibrary()


@pytest.fixture(scope="session")
def toolkit() -> ReportlabLabels:
    return ReportlabLabels()


@pytest.fixture(params=["fake", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock) -> Iterator[object]:
    if request.param == "fake":
        yield FakeUnitOfWork()
        return
    from station.adapters.store.unit_of_work import SqliteUnitOfWork

    real = SqliteUnitOfWork.open(tmp_path / "station.db", clock=clock)
    try:
        yield real
    finally:
        real.close()


class RecordingPrinters:
    """Printers by spec: ``file:`` is real; ``broken`` always fails like an offline printer."""

    def __init__(self, toolkit: ReportlabLabels) -> None:
        self.toolkit = toolkit
        self.jobs: list[tuple[str, list[LabelData]]] = []

    def printer(self, spec: str):
        if spec == "broken":
            return BrokenPrinter()
        real = self.toolkit.printer(spec)
        outer = self

        class Recording:
            name = real.name

            def print_labels(
                self, template: LabelTemplate, labels: Sequence[LabelData], *, title: str
            ) -> PrintReceipt:
                receipt = real.print_labels(template, labels, title=title)
                outer.jobs.append((spec, list(labels)))
                return receipt

        return Recording()


class BrokenPrinter:
    name = "cups:broken"

    def print_labels(self, template, labels, *, title):
        raise PrinterOfflineError("printer 'broken' is offline", printer=self.name)


@pytest.fixture
def printers(toolkit: ReportlabLabels) -> RecordingPrinters:
    return RecordingPrinters(toolkit)


def seed(store, *, qa: str = "quinn") -> list[str]:
    """Record three devices of batch WO-4711 (TPM, X.509, symmetric key) and a QA operator."""
    ids = []
    for seq, manifest in enumerate((tpm_manifest(), x509_manifest(), symmetric_manifest()), 1):
        store.devices.save(device_record(manifest, event_seq=seq))
        ids.append(manifest.registration_id)
    store.operators.save(OperatorRecord(qa, Role.QA, True, "2026-11-01T00:00:00Z"))
    store.operators.save(OperatorRecord("tina", Role.TECHNICIAN, True, "2026-11-01T00:00:00Z"))
    return ids


@pytest.fixture
def make_service(store, library, printers, toolkit, clock, tmp_path):
    def build(printer: str = "") -> LabelService:
        return LabelService(
            store=store,
            templates=library,
            printers=printers,
            renderer=toolkit,
            clock=clock,
            station_id="station-07",
            default_printer=printer or f"file:{tmp_path / 'out' / 'label.pdf'}",
        )

    return build


@pytest.fixture(scope="session")
def have_pdftoppm() -> None:
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm (poppler-utils) is required: run packaging/install-system-deps.sh")


@pytest.fixture
def ids(config, clock) -> list[str]:
    """Registration IDs of the identities ``seed`` records in a fresh station's store."""
    station = build_station(config, clock=clock)
    try:
        return seed(station.store())
    finally:
        station.close()
