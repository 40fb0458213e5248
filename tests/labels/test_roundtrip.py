"""Render -> rasterise (pdftoppm) -> decode (zxing-cpp) returns exactly the encoded payloads.

Every shipped template, every barcode on it, for the longest registration IDs: 128 characters
(symmetric key), 64 (X.509 CN limit) and a 52-character TPM ID.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from station.adapters.labels.render import LabelRenderer
from station.adapters.labels.templates import DEFAULT_TEMPLATE_DIR, load_template
from station.domain.errors import LabelError, LabelTemplateError
from station.domain.labels.model import LabelData
from station.domain.labels.payloads import build_payload
from tests.support.label_records import (
    LONGEST_ID,
    LONGEST_X509_ID,
    symmetric_manifest,
    tpm_manifest,
    x509_manifest,
)
from tests.support.labels import decode_page

TEMPLATES = sorted(p.stem for p in DEFAULT_TEMPLATE_DIR.glob("*.toml"))
RECORDS = {
    "tpm-52": tpm_manifest,
    "x509-64": x509_manifest,
    "symmetric-128": symmetric_manifest,
}


def test_the_three_required_media_are_shipped(library) -> None:
    media = {library.get(name).media for name in TEMPLATES}
    assert {str(m) for m in media} == {"die-cut", "continuous", "sheet"}
    kinds = {str(b.kind) for name in TEMPLATES for b in library.get(name).barcodes}
    assert kinds == {"qr", "datamatrix", "code128"}


@pytest.mark.parametrize("template_name", [t for t in TEMPLATES if not t.startswith("sheet")])
@pytest.mark.parametrize("record", sorted(RECORDS))
def test_every_barcode_decodes_to_its_payload(
    library, have_pdftoppm, template_name: str, record: str
) -> None:
    template = library.get(template_name)
    data = LabelData.from_manifest(RECORDS[record]())
    expected = sorted(build_payload(b.payload, data, template) for b in template.barcodes)
    assert len(expected) == len(template.barcodes) >= 1
    pdf = LabelRenderer().render_pdf(template, [data])
    assert decode_page(pdf, dpi=600) == expected


def test_sheet_labels_decode_on_every_position_and_page(library, have_pdftoppm) -> None:
    template = library.get("sheet-a4-3x8")
    assert template.per_page == 24
    data = [LabelData.from_manifest(RECORDS[name]()) for name in sorted(RECORDS)]
    # 26 labels: a full first page (the three records repeated) and two on the second page.
    labels = (data * 9)[:26]
    pdf = LabelRenderer().render_pdf(template, labels)
    expected_first = sorted(
        build_payload(template.barcodes[0].payload, d, template) for d in labels[:24]
    )
    assert decode_page(pdf, page=1, dpi=300) == expected_first
    expected_second = sorted(
        build_payload(template.barcodes[0].payload, d, template) for d in labels[24:]
    )
    assert decode_page(pdf, page=2, dpi=300) == expected_second


def test_payloads_carry_the_longest_ids_unchanged(library) -> None:
    long = LabelData.from_manifest(symmetric_manifest())
    assert long.registration_id == LONGEST_ID and len(LONGEST_ID) == 128
    assert LabelData.from_manifest(x509_manifest()).registration_id == LONGEST_X509_ID
    tape = library.get("tape-62mm")
    compact = build_payload(tape.barcodes[0].payload, long, tape)
    assert f"rid={LONGEST_ID};" in compact


def test_rendering_is_deterministic(library) -> None:
    template = library.get("device-50x25")
    data = [LabelData.from_manifest(tpm_manifest())]
    assert LabelRenderer().render_pdf(template, data) == LabelRenderer().render_pdf(template, data)


def test_data_longer_than_the_template_allows_is_refused_not_cut(library) -> None:
    template = library.get("device-50x25")
    data = LabelData.from_manifest(tpm_manifest(serial="S" * 17))  # the template holds 16
    with pytest.raises(LabelTemplateError, match="holds at most 16"):
        LabelRenderer().render_pdf(template, [data])
    with pytest.raises(LabelError, match="no labels"):
        LabelRenderer().render_pdf(template, [])


def test_a_template_that_cannot_hold_its_data_is_an_error_at_load(tmp_path: Path) -> None:
    source = (DEFAULT_TEMPLATE_DIR / "device-50x25.toml").read_text(encoding="utf-8")
    # A Code 128 of a 128-character registration ID needs ~1,400 modules: not on 50 mm.
    broken = source + (
        '\n[[barcode]]\nid = "linear"\nkind = "code128"\npayload = "registration_id"\n'
        "x_mm = 1\ny_mm = 21\nwidth_mm = 25\nheight_mm = 3\n"
    )
    path = tmp_path / "broken.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(LabelTemplateError, match="linear"):
        load_template(path)
    # Shrinking the registration-ID text box until 128 characters cannot fit is caught too.
    cramped = source.replace("height_mm = 11.2", "height_mm = 4")
    path.write_text(cramped, encoding="utf-8")
    with pytest.raises(LabelTemplateError, match="registration_id"):
        load_template(path)
