"""Fixtures for label tests: templates, renderer, a store (in-memory fake and real SQLite)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from station.adapters.labels.templates import TemplateLibrary
from station.adapters.labels.toolkit import ReportlabLabels
from station.bootstrap import build_station
from station.domain.errors import PrinterOfflineError
from station.domain.labels.model import LabelData, LabelTemplate
from station.domain.labels.reports import PrintReceipt
from station.services.labels import LabelService
from tests.support.fake_store import FakeUnitOfWork
from tests.support.labels import seed


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
