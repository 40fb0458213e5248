"""Labels per second for a 1,000-device batch sheet, against floors measured in the same run.

Run:  .venv/bin/python benchmarks/bench_labels.py [--count 1000]

* station: ``LabelRenderer.render_pdf`` of the A4 3x8 sheet template (GS1 Digital Link QR, five
  fitted text fields per label), 1,000 distinct devices -> 42 pages.
* floor (encode): zxing-cpp encoding the same 1,000 QR payloads and nothing else.
* floor (draw): reportlab drawing the same symbols as merged runs with no layout or text.
* peer: reportlab's own ``QrCodeWidget`` for the same payloads (timed on a sample, then scaled).
* ZPL: the same devices as ZPL for the 62 mm tape template (Data Matrix + Code 128 + text).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zxingcpp
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from station.adapters.labels import barcodes
from station.adapters.labels.render import LabelRenderer
from station.adapters.labels.templates import TemplateLibrary
from station.adapters.labels.zpl import render_zpl
from station.domain.labels.model import LabelData
from station.domain.labels.payloads import build_payload

PEER_SAMPLE = 50


def batch(count: int) -> list[LabelData]:
    return [
        LabelData(
            registration_id=f"edgesense-x-{i:06d}-{(i * 2654435761) % 2**32:08x}",
            device_id=f"edgesense-x-{i:06d}",
            serial=f"X-{i:06d}",
            model="EdgeSense-X",
            batch="WO-4711",
            product="edgesense",
            date="2026-11-26",
            thumbprint=f"{(i * 40503) % 2**64:016x}",
            attestation="x509",
        )
        for i in range(count)
    ]


def timed(func, *args):
    start = time.perf_counter()
    result = func(*args)
    elapsed = time.perf_counter() - start
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    count = parser.parse_args().count
    library = TemplateLibrary()
    sheet = library.get("sheet-a4-3x8")
    tape = library.get("tape-62mm")
    labels = batch(count)
    payloads = [build_payload(sheet.barcodes[0].payload, d, sheet) for d in labels]

    # floor 1: encoding only
    def encode_all() -> None:
        for text in payloads:
            zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode).to_image(
                scale=1, add_quiet_zones=False
            )

    _, t_encode = timed(encode_all)

    # floor 2: drawing the (pre-encoded) symbols as merged runs, no layout, no text
    matrices = [barcodes.encode(barcodes.BarcodeKind.QR, p) for p in payloads]

    def draw_all() -> bytes:
        buffer = io.BytesIO()
        canvas = Canvas(buffer, invariant=1, pageCompression=1)
        for index, matrix in enumerate(matrices):
            if index and index % 24 == 0:
                canvas.showPage()
            path = canvas.beginPath()
            x0, y0 = (index % 3) * 70 * mm, (index // 3 % 8) * 37 * mm
            for row, column, length in matrix.runs():
                path.rect(x0 + column * 0.5 * mm, y0 + row * 0.5 * mm, length * 0.5 * mm, 0.5 * mm)
            canvas.drawPath(path, stroke=0, fill=1)
        canvas.save()
        return buffer.getvalue()

    _, t_draw = timed(draw_all)

    barcodes.encode.cache_clear()  # the station run pays for its own encoding
    pdf, t_station = timed(LabelRenderer().render_pdf, sheet, labels)

    def peer() -> None:
        buffer = io.BytesIO()
        canvas = Canvas(buffer, invariant=1)
        for text in payloads[:PEER_SAMPLE]:
            widget = QrCodeWidget(text, barWidth=30 * mm, barHeight=30 * mm)
            drawing = Drawing(30 * mm, 30 * mm)
            drawing.add(widget)
            renderPDF.draw(drawing, canvas, 0, 0)
            canvas.showPage()
        canvas.save()

    _, t_peer_sample = timed(peer)
    t_peer = t_peer_sample * count / PEER_SAMPLE

    barcodes.encode.cache_clear()
    zpl, t_zpl = timed(render_zpl, tape, labels)

    pages = -(-count // sheet.per_page)
    print(f"labels: {count} on {pages} A4 pages ({sheet.name}), PDF {len(pdf) / 1e6:.2f} MB")
    print(f"station PDF sheet      {t_station:7.2f} s  {count / t_station:8.0f} labels/s")
    print(f"floor: QR encode only  {t_encode:7.2f} s  {count / t_encode:8.0f} labels/s")
    print(f"floor: draw runs only  {t_draw:7.2f} s  {count / t_draw:8.0f} labels/s")
    print(
        f"peer: reportlab QrCodeWidget {t_peer:7.2f} s  {count / t_peer:8.0f} labels/s "
        f"(timed on {PEER_SAMPLE}, scaled)"
    )
    print(
        f"station ZPL tape       {t_zpl:7.2f} s  {count / t_zpl:8.0f} labels/s "
        f"({len(zpl) / 1e3:.0f} kB)"
    )
    print(
        f"ratios: station / (encode + draw floors) = {t_station / (t_encode + t_draw):.2f}x; "
        f"peer / station = {t_peer / t_station:.1f}x"
    )


if __name__ == "__main__":
    main()
