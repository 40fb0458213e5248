"""Golden files: the fixed record renders to the same PDF bytes, ZPL text and (nearly) PNG pixels.

Regenerate with tests/golden/labels/regenerate.py (see tests/golden/REGENERATE.md).
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageChops

from station.adapters.labels.render import LabelRenderer
from station.adapters.labels.zpl import render_zpl
from station.domain.labels.model import LabelData
from tests.support.label_records import tpm_manifest

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "labels"
DPI = 200  # must match regenerate.py


def data() -> LabelData:
    return LabelData.from_manifest(tpm_manifest())


def test_pdf_bytes_match_the_golden_file(library) -> None:
    pdf = LabelRenderer().render_pdf(library.get("device-50x25"), [data()], title="golden")
    assert pdf == (GOLDEN / "device-50x25.pdf").read_bytes()


def test_zpl_matches_the_golden_file(library) -> None:
    zpl = render_zpl(library.get("tape-62mm"), [data()])
    assert zpl == (GOLDEN / "tape-62mm.zpl").read_text(encoding="utf-8")


def test_png_preview_matches_the_golden_image(library, toolkit, have_pdftoppm) -> None:
    # The GUI's preview path; pixels may differ only by poppler anti-aliasing, not by layout.
    png = toolkit.label_png(library.get("device-50x25"), data(), dpi=DPI)
    fresh = Image.open(io.BytesIO(png))
    golden = Image.open(GOLDEN / "device-50x25.png")
    assert fresh.size == golden.size == (394, 197)
    diff = ImageChops.difference(fresh.convert("L"), golden.convert("L"))
    changed = sum(diff.histogram()[65:])
    assert changed <= fresh.size[0] * fresh.size[1] // 1000
