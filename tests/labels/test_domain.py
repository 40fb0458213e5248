"""Label rules: template parsing (the adapter over the domain checks), fitting, payloads, scan parsing, batch summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from station.adapters.labels.templates import parse_template
from station.domain.errors import LabelTemplateError, ScanMismatchError
from station.domain.labels.layout import check_template_fits, fit_text
from station.domain.labels.model import BarcodeKind, Box, Gs1Settings, LabelData, TextField
from station.domain.labels.payloads import compact_payload, gs1_digital_link, is_valid_gtin
from station.domain.labels.reports import ReportDevice, summarize_batch
from station.domain.labels.scans import parse_scanned
from tests.support.label_records import LONGEST_ID, symmetric_manifest, tpm_manifest


class Mono:
    """A monospace measurer: every glyph is 0.6 em; symbols are one module per character."""

    def text_width(self, text: str, font: str, size_pt: float) -> float:
        return len(text) * 0.6 * size_pt

    def symbol_modules(self, kind: BarcodeKind, payload: str) -> tuple[int, int]:
        if kind is BarcodeKind.CODE128:
            return 11 * len(payload) + 35, 1
        side = 10 + len(payload) // 4
        return side, side


MINIMAL = """
name = "t"
[media]
width_mm = 50
height_mm = 25
[[text]]
id = "rid"
text = "{registration_id}"
x_mm = 1
y_mm = 1
width_mm = 30
height_mm = 20
font = "Courier"
size_pt = 6
min_size_pt = 3
max_lines = 10
"""


def field(width_mm: float, height_mm: float, **kw) -> TextField:
    return TextField(id="f", text="{serial}", box=Box(0, 0, width_mm, height_mm), **kw)


def test_fit_keeps_size_when_text_fits() -> None:
    fitted = fit_text("ABC", field(30, 5, size_pt=8), Mono())
    assert fitted is not None and fitted.lines == ("ABC",) and fitted.size_pt == 8


def test_fit_shrinks_before_wrapping() -> None:
    text = "X" * 20  # 20 * 0.6 * 8 pt = 96 pt > 30 mm (85 pt): shrinks to <= 7 pt
    fitted = fit_text(text, field(30, 5, size_pt=8, min_size_pt=5, max_lines=3), Mono())
    assert fitted is not None and fitted.lines == (text,) and fitted.size_pt <= 7.1


def test_fit_wraps_when_shrinking_is_not_enough_and_keeps_every_character() -> None:
    text = LONGEST_ID
    fitted = fit_text(text, field(30, 20, size_pt=6, min_size_pt=4, max_lines=10), Mono())
    assert fitted is not None and len(fitted.lines) > 1
    assert "".join(fitted.lines) == text  # wrapped, never cut


def test_fit_prefers_breaking_at_spaces_and_drops_only_the_space() -> None:
    fitted = fit_text("hello world again", field(12, 20, size_pt=6, max_lines=4), Mono())
    assert fitted is not None and fitted.lines == ("hello", "world", "again")


def test_fit_returns_none_rather_than_cutting() -> None:
    assert fit_text("X" * 200, field(20, 3, size_pt=6, min_size_pt=5), Mono()) is None


def test_parse_minimal_template_and_defaults() -> None:
    template = parse_template(MINIMAL, source="t.toml")
    assert template.width_mm == 50 and template.per_page == 1
    assert template.texts[0].bindings == ("registration_id",)
    check_template_fits(template, Mono())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("{registration_id}", "{secret}"), "unknown field"),
        (lambda s: s.replace("x_mm = 1", "x_mm = 30"), "ends outside"),
        (lambda s: s.replace('font = "Courier"', 'font = "Comic"'), "font must be"),
        (lambda s: s + "\ncolour = 'red'\n", "unknown key"),
        (lambda s: s.replace("width_mm = 50", "width_mm = -5"), "greater than zero"),
        (lambda s: s.replace('name = "t"', ""), "name must be"),
        (
            lambda s: (
                s + "[[barcode]]\nid='b'\nkind='pdf417'\nx_mm=0\ny_mm=0\nwidth_mm=5\nheight_mm=5\n"
            ),
            "kind must be one of",
        ),
        (lambda s: s.replace("[media]", "[sheet]\nrows = 12\n[media]\nkind = 'sheet'"), "on A4"),
        (lambda s: s.replace("[media]", "[sheet]\nrows = 2\n[media]"), "needs media.kind"),
        (lambda s: "name = [", "not valid TOML"),
    ],
)
def test_malformed_templates_are_refused_with_the_reason(edit, message: str) -> None:
    with pytest.raises(LabelTemplateError, match=message):
        parse_template(edit(MINIMAL), source="t.toml")


def test_template_that_cannot_hold_its_longest_data_fails_at_load() -> None:
    small = MINIMAL.replace("max_lines = 10", "max_lines = 2")
    template = parse_template(small, source="t.toml")
    with pytest.raises(LabelTemplateError, match="cannot hold"):
        check_template_fits(template, Mono())


def test_barcode_with_too_small_modules_fails_at_load() -> None:
    text = MINIMAL + (
        "[[barcode]]\nid='c'\nkind='code128'\npayload='registration_id'\n"
        "x_mm=32\ny_mm=1\nwidth_mm=17\nheight_mm=10\nmin_module_mm=0.19\n"
    )
    template = parse_template(text, source="t.toml")
    with pytest.raises(LabelTemplateError, match=r"barcode 'c'.*cannot hold"):
        check_template_fits(template, Mono())


def test_gs1_template_needs_a_valid_gtin() -> None:
    text = MINIMAL + (
        "[gs1]\ngtin='09506000134353'\n[[barcode]]\nid='q'\nkind='qr'\n"
        "payload='gs1_digital_link'\nx_mm=32\ny_mm=1\nwidth_mm=17\nheight_mm=17\n"
    )
    with pytest.raises(LabelTemplateError, match="gtin"):
        parse_template(text, source="t.toml")
    assert is_valid_gtin("09506000134352") and not is_valid_gtin("09506000134353")


def test_payload_forms_round_trip_through_the_scan_parser() -> None:
    data = LabelData.from_manifest(tpm_manifest(serial="SN;=%/ 1"))
    compact = compact_payload(data)
    assert compact.startswith(f"rid={data.registration_id};sn=SN%3B%3D%25/ 1;b=WO-4711;tp=")
    scanned = parse_scanned(compact)
    assert (scanned.form, scanned.registration_id, scanned.serial) == (
        "compact",
        data.registration_id,
        "SN;=%/ 1",
    )
    link = gs1_digital_link(data, Gs1Settings("https://id.example.com/", "09506000134352"))
    assert link.startswith("https://id.example.com/01/09506000134352/21/SN%3B%3D%25%2F%201?rid=")
    scanned = parse_scanned(link)
    assert (scanned.form, scanned.registration_id, scanned.serial) == (
        "gs1_digital_link",
        data.registration_id,
        "SN;=%/ 1",
    )
    plain = parse_scanned(f"]Q1{data.registration_id.upper()}\r\n")
    assert (plain.form, plain.registration_id) == ("registration_id", data.registration_id)


@pytest.mark.parametrize(
    "text", ["", "https://example.com/page", "sn=1;b=2", "not a registration id!", "-abc"]
)
def test_foreign_codes_are_reported_not_guessed(text: str) -> None:
    with pytest.raises(ScanMismatchError, match="not a station label"):
        parse_scanned(text)


def test_label_data_uses_a_short_thumbprint_and_the_date() -> None:
    data = LabelData.from_manifest(tpm_manifest())
    assert data.thumbprint == "3f" * 8 and data.date == "2026-11-26"
    assert LabelData.from_manifest(symmetric_manifest()).thumbprint == ""


def test_batch_summary_counts_yield_pareto_and_hours() -> None:
    devices = [
        ReportDevice(
            f"d{i}",
            f"S{i}",
            "tpm" if i % 2 else "x509",
            "provisioned",
            "",
            f"2026-11-26T0{8 + i // 3}:00:00Z",
        )
        for i in range(6)
    ] + [ReportDevice("v", "SV", "tpm", "voided", "", "2026-11-26T10:30:00Z")]
    report = summarize_batch(
        batch="B",
        product="p",
        station="s",
        generated_at=datetime(2026, 11, 26, 12, tzinfo=UTC),
        devices=devices,
        failures=["tpm timeout", "bad csr", "tpm timeout", "noise"],
    )
    assert report.passed == 6 and report.attempts == 10
    assert report.yield_percent == pytest.approx(60.0)
    assert report.failure_reasons[0] == ("tpm timeout", 2)
    assert dict(report.by_result) == {"provisioned": 6, "voided": 1}
    assert dict(report.by_attestation) == {"tpm": 4, "x509": 3}
    assert report.units_per_hour == (
        ("2026-11-26T08", 3),
        ("2026-11-26T09", 3),
        ("2026-11-26T10", 1),
    )
