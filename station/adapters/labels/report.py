"""The batch report PDF (reportlab): summary, yield, pareto of failures, units per hour, devices."""

from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm as _mm
from reportlab.pdfgen.canvas import Canvas

from station.domain.labels.reports import BatchReport

mm: float = float(_mm)
PAGE_W, PAGE_H = float(A4[0]), float(A4[1])
LEFT = 18 * mm
RIGHT = PAGE_W - 18 * mm
BOTTOM = 18 * mm
ROW = 4.4 * mm


class BatchReportRenderer:
    """Draws a :class:`BatchReport` onto A4 pages (same report, same bytes)."""

    def render(self, report: BatchReport) -> bytes:
        """Return the report as PDF bytes."""
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1)
        canvas.setTitle(f"Batch report {report.batch}")
        canvas.setAuthor("station")
        y = self._summary(canvas, report, PAGE_H - 20 * mm)
        y = self._bar_chart(
            canvas,
            "Failure reasons (pareto)",
            [(f"{rank}", n) for rank, (_, n) in enumerate(report.failure_reasons, 1)],
            y - 8 * mm,
            cumulative=True,
            empty="No failures recorded.",
        )
        y = self._legend(canvas, report.failure_reasons, y + 6 * mm)
        y = self._bar_chart(
            canvas,
            "Units per hour (UTC)",
            [(hour[5:].replace("T", " ") + "h", n) for hour, n in report.units_per_hour],
            y - 8 * mm,
            cumulative=False,
            empty="No devices provisioned.",
        )
        self._devices(canvas, report, y - 8 * mm)
        canvas.showPage()
        canvas.save()
        return buffer.getvalue()

    def _summary(self, canvas: Canvas, report: BatchReport, y: float) -> float:
        canvas.setFont("Helvetica-Bold", 16)
        canvas.drawString(LEFT, y, f"Batch report: {report.batch}")
        canvas.setFont("Helvetica", 9)
        lines = [
            f"Product: {report.product}    Station: {report.station}",
            f"First unit: {report.first_at or '-'}    Last unit: {report.last_at or '-'}",
            f"Generated: {report.generated_at}",
            f"Devices recorded: {len(report.devices)}    Passed: {report.passed}    "
            f"Failed attempts: {report.attempts - report.passed}",
            "By attestation: "
            + (", ".join(f"{k} {v}" for k, v in report.by_attestation) or "-")
            + "    By result: "
            + (", ".join(f"{k} {v}" for k, v in report.by_result) or "-"),
            f"Labels printed: {report.labels_printed}    Reprinted: {report.labels_reprinted}",
        ]
        y -= 8 * mm
        for line in lines:
            canvas.drawString(LEFT, y, line)
            y -= ROW
        # the figure QA looks for first, on a line of its own
        canvas.setFont("Helvetica-Bold", 12)
        canvas.drawString(
            LEFT,
            y - 1.5 * mm,
            f"First-pass yield: {report.yield_percent:.1f} %  "
            f"({report.passed} of {report.attempts} attempts passed)",
        )
        canvas.setFont("Helvetica", 9)
        return y - ROW - 2 * mm

    def _bar_chart(
        self,
        canvas: Canvas,
        title: str,
        bars: Sequence[tuple[str, int]],
        top: float,
        *,
        cumulative: bool,
        empty: str,
    ) -> float:
        canvas.setFont("Helvetica-Bold", 11)
        canvas.drawString(LEFT, top, title)
        if not bars:
            canvas.setFont("Helvetica", 9)
            canvas.drawString(LEFT, top - 6 * mm, empty)
            return top - 8 * mm
        shown = list(bars[:24])
        height = 45 * mm
        base = top - 6 * mm - height
        width = RIGHT - LEFT
        slot = width / len(shown)
        peak = max(n for _, n in shown)
        canvas.setStrokeGray(0.6)
        canvas.line(LEFT, base, RIGHT, base)
        total = sum(n for _, n in bars)
        running = 0
        points = []
        for index, (label, count) in enumerate(shown):
            bar_h = height * count / peak
            x = LEFT + index * slot + slot * 0.15
            canvas.setFillGray(0.35)
            canvas.rect(x, base, slot * 0.7, bar_h, stroke=0, fill=1)
            canvas.setFillGray(0)
            canvas.setFont("Helvetica", 7)
            canvas.drawCentredString(x + slot * 0.35, base + bar_h + 1.2 * mm, str(count))
            canvas.saveState()
            canvas.translate(x + slot * 0.35, base - 1.5 * mm)
            canvas.rotate(-35)
            canvas.drawString(0, -2 * mm, label[:28])
            canvas.restoreState()
            running += count
            points.append((x + slot * 0.35, base + height * running / total))
        if cumulative and len(points) > 1:
            canvas.setStrokeColorRGB(0.8, 0.1, 0.1)
            path = canvas.beginPath()
            path.moveTo(*points[0])
            for point in points[1:]:
                path.lineTo(*point)
            canvas.drawPath(path, stroke=1, fill=0)
            canvas.setFillColorRGB(0.8, 0.1, 0.1)
            canvas.drawRightString(RIGHT, base + height + 1.5 * mm, "cumulative % (line)")
            canvas.setFillGray(0)
            canvas.setStrokeGray(0)
        return base - 14 * mm

    def _legend(self, canvas: Canvas, reasons: Sequence[tuple[str, int]], y: float) -> float:
        """The pareto's bars by number, each reason in full with its count and cumulative %."""
        total = sum(n for _, n in reasons)
        running = 0
        canvas.setFont("Helvetica", 8)
        for rank, (reason, count) in enumerate(reasons[:24], 1):
            running += count
            canvas.drawRightString(LEFT + 6 * mm, y, f"{rank}")
            canvas.drawString(LEFT + 9 * mm, y, reason[:95])
            canvas.drawRightString(RIGHT - 22 * mm, y, f"{count}")
            canvas.drawRightString(RIGHT, y, f"{100 * running / total:.0f} % cum.")
            y -= ROW * 0.9
        return y - 4 * mm

    def _devices(self, canvas: Canvas, report: BatchReport, y: float) -> None:
        columns = (LEFT, LEFT + 82 * mm, LEFT + 112 * mm, LEFT + 132 * mm)

        def header(at: float) -> float:
            canvas.setFont("Helvetica-Bold", 8)
            for x, name in zip(
                columns,
                ("Registration ID", "Serial", "Attestation", "Thumbprint / EK"),
                strict=True,
            ):
                canvas.drawString(x, at, name)
            return at - ROW

        canvas.setFont("Helvetica-Bold", 11)
        canvas.drawString(LEFT, y, f"Devices ({len(report.devices)})")
        y = header(y - 6 * mm)
        for device in report.devices:
            rid = device.registration_id
            chunks = [rid[i : i + 46] for i in range(0, len(rid), 46)] or [""]
            needed = ROW * len(chunks)
            if y - needed < BOTTOM:
                canvas.showPage()
                y = header(PAGE_H - 20 * mm)
            canvas.setFont("Courier", 7)
            canvas.drawString(columns[1], y, device.serial[:18])
            canvas.drawString(columns[2], y, device.attestation)
            canvas.drawString(columns[3], y, device.thumbprint[:24] or "-")
            for chunk in chunks:
                canvas.drawString(columns[0], y, chunk)
                y -= ROW
