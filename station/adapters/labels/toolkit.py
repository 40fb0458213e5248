"""One object that gives the label service its renderer and its printers."""

from __future__ import annotations

from collections.abc import Sequence

from station.adapters.labels.printers import Printer, open_printer
from station.adapters.labels.render import LabelRenderer, pdf_to_png
from station.adapters.labels.report import BatchReportRenderer
from station.domain.labels.model import LabelData, LabelTemplate
from station.domain.labels.reports import BatchReport


class ReportlabLabels:
    """Renders labels and batch reports with reportlab, and opens printers by spec."""

    def __init__(self) -> None:
        self.renderer = LabelRenderer()
        self.reports = BatchReportRenderer()

    def label_pdf(self, template: LabelTemplate, labels: Sequence[LabelData]) -> bytes:
        """Return the labels as PDF bytes."""
        return self.renderer.render_pdf(template, labels)

    def label_png(self, template: LabelTemplate, label: LabelData, *, dpi: int) -> bytes:
        """Return a PNG preview of one label (on its sheet for sheet templates)."""
        return pdf_to_png(self.renderer.render_pdf(template, [label]), dpi=dpi)

    def report_pdf(self, report: BatchReport) -> bytes:
        """Return the batch report as PDF bytes."""
        return self.reports.render(report)

    def printer(self, spec: str) -> Printer:
        """Open the printer a spec names."""
        return open_printer(spec, self.renderer)
