"""Render labels to PDF with reportlab (deterministic bytes) and to PNG with pdftoppm.

The layout (text fitting, barcode module sizes) comes from
:func:`station.domain.labels.layout.layout_label`
with the reportlab measurer, so what is drawn is exactly what was proven to fit at load time.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from station.adapters.labels.barcodes import ReportlabMeasurer, encode
from station.domain.errors import LabelError
from station.domain.labels.layout import PlacedBarcode, layout_label
from station.domain.labels.model import LabelData, LabelTemplate

PDFTOPPM_TIMEOUT_S = 120.0


class LabelRenderer:
    """Draws labels for a template: one label per page, or tiled on sheets."""

    def __init__(self) -> None:
        self.measurer = ReportlabMeasurer()

    def render_pdf(
        self, template: LabelTemplate, labels: Sequence[LabelData], *, title: str = "labels"
    ) -> bytes:
        """Return the PDF for ``labels`` (same input, same bytes).

        Raises:
            LabelTemplateError: a value does not fit the template.
            LabelError: no labels were given.
        """
        if not labels:
            raise LabelError("there are no labels to render", template=template.name)
        buffer = io.BytesIO()
        page_w, page_h = template.page_size_mm
        canvas = Canvas(buffer, pagesize=(page_w * mm, page_h * mm), invariant=1, pageCompression=1)
        canvas.setTitle(title)
        canvas.setAuthor("station")
        canvas.setCreator("station labels")
        per_page = template.per_page
        for index, data in enumerate(labels):
            if index and index % per_page == 0:
                canvas.showPage()
            if template.sheet is not None:
                left, top = template.sheet.origin(index, template.width_mm, template.height_mm)
            else:
                left, top = 0.0, 0.0
            self._draw_label(canvas, template, data, left, page_h - top)
        canvas.showPage()
        canvas.save()
        return buffer.getvalue()

    def _draw_label(
        self, canvas: Canvas, template: LabelTemplate, data: LabelData, left: float, top: float
    ) -> None:
        """Draw one label whose top-left corner is at (left, top) mm, y measured upwards."""
        texts, barcodes = layout_label(template, data, self.measurer)
        for text_field, fitted in texts:
            box = text_field.box
            canvas.setFont(text_field.font, fitted.size_pt)
            baseline = (top - box.y_mm) * mm - fitted.size_pt * 0.8
            for line in fitted.lines:
                x = (left + box.x_mm) * mm
                if text_field.align == "center":
                    canvas.drawCentredString(x + box.width_mm * mm / 2, baseline, line)
                else:
                    canvas.drawString(x, baseline, line)
                baseline -= fitted.line_height_pt
        for placed in barcodes:
            _draw_barcode(canvas, placed, left, top)


def _draw_barcode(canvas: Canvas, placed: PlacedBarcode, left: float, top: float) -> None:
    """Draw a symbol centred in its box as one filled path of merged horizontal runs."""
    box = placed.field.box
    module = placed.module_mm
    matrix = encode(placed.field.kind, placed.payload)
    symbol_w = matrix.columns * module
    linear = matrix.rows == 1
    symbol_h = box.height_mm if linear else matrix.rows * module
    x0 = left + box.x_mm + (box.width_mm - symbol_w) / 2
    y_top = top - box.y_mm - (box.height_mm - symbol_h) / 2
    row_h = symbol_h if linear else module
    path = canvas.beginPath()
    for row, column, length in matrix.runs():
        path.rect(
            (x0 + column * module) * mm,
            (y_top - (row + 1) * row_h) * mm,
            length * module * mm,
            row_h * mm,
        )
    canvas.setFillGray(0)
    canvas.drawPath(path, stroke=0, fill=1)


def pdf_to_png(pdf: bytes, *, page: int = 1, dpi: int = 300) -> bytes:
    """Rasterise one page of ``pdf`` with poppler's pdftoppm.

    Raises:
        LabelError: pdftoppm is missing or failed.
    """
    tool = shutil.which("pdftoppm")
    if tool is None:
        raise LabelError(
            "pdftoppm is not installed",
            remedy="Run packaging/install-system-deps.sh (it installs poppler-utils).",
        )
    with tempfile.TemporaryDirectory(prefix="station-label-") as tmp:
        source = Path(tmp) / "in.pdf"
        source.write_bytes(pdf)
        target = Path(tmp) / "out"
        try:
            subprocess.run(
                [tool, "-r", str(dpi), "-png", "-singlefile", "-f", str(page), "-l", str(page),
                 str(source), str(target)],
                check=True,
                capture_output=True,
                timeout=PDFTOPPM_TIMEOUT_S,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise LabelError(
                f"pdftoppm could not rasterise page {page}", page=page, error=str(exc)
            ) from exc
        return (Path(tmp) / "out.png").read_bytes()
