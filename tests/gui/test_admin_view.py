"""The admin view: CA status, operators, slot binding of a plugged lab board, test print."""

from __future__ import annotations

from station.domain.records import Role
from tests.support.gui import WAIT_MS, log_in
from tests.support.rig import Rig


def test_admin_sees_ca_binds_a_slot_adds_an_operator_and_test_prints(
    qtbot, rig: Rig, lab_station, window_of, tmp_path
):
    (board,) = rig.lab.start(1, "nokey")
    window = window_of(lab_station)
    log_in(qtbot, window, "ada")
    window.show_view("Admin")
    admin = window.admin
    qtbot.waitUntil(lambda: admin.boards.count() == 1, timeout=WAIT_MS)
    assert "Line 1 CA" in admin.ca_label.text()
    # the key in words: token, label and the key ID in hex, never percent-encoded
    assert "Key: token 'station-ca', key 'station-ca-key', id " in admin.ca_label.text()
    assert "%" not in admin.ca_label.text()
    # the rig's CA was signed by the lab root: flagged; a fresh one does not expire soon
    assert admin.warning.text().startswith("LAB ROOT — NOT FOR PRODUCTION")
    assert "expires" not in admin.warning.text()
    standings = {
        admin.operators.item(row, 0).text(): tuple(
            admin.operators.item(row, column).text() for column in (1, 2, 3)
        )
        for row in range(admin.operators.rowCount())
    }
    assert standings["terry"] == ("technician", "active", "PIN and badge")
    assert standings["tina"] == ("technician", "active", "none")
    assert standings["quinn"] == ("qa", "active", "PIN")
    products = [admin.products.item(i).text() for i in range(admin.products.count())]
    assert "lab-x509 — x509" in products and "lab-tpm — tpm" in products
    admin.products.setCurrentRow(products.index("lab-tpm — tpm"))
    recipe = admin.product_detail.text()
    assert "Registration ID: from the TPM endorsement key" in recipe
    assert "templates" in recipe and "change them there" in recipe
    assert board.location in admin.boards.item(0).text()

    admin.boards.setCurrentRow(0)
    admin.slot_box.setCurrentText("slot-2")
    admin.bind_button.click()
    qtbot.waitUntil(lambda: "slot-2" in admin.boards.item(0).text(), timeout=WAIT_MS)
    assert lab_station.discovery().board_in("slot-2").device == board.port

    admin.op_name.setText("nina")
    admin.op_role.setCurrentText(str(Role.QA))
    admin.op_pin.setText("864209")
    admin.add_operator.click()
    qtbot.waitUntil(lambda: "Operator nina added." in admin.message.text(), timeout=WAIT_MS)
    record = lab_station.store().operators.get("nina")
    assert record is not None and record.role is Role.QA and record.pin_hash != "864209"

    out = tmp_path / "test-prints"
    out.mkdir()
    admin.printer.setText(f"file:{out}/")
    admin.test_print.click()
    qtbot.waitUntil(lambda: "Test print sent" in admin.message.text(), timeout=WAIT_MS)
    printed = list(out.iterdir())
    assert len(printed) == 1 and printed[0].read_bytes().startswith(b"%PDF")
    assert not lab_station.store().labels.for_device("TEST-PRINT")  # nothing was counted as a label


def test_ca_warnings_use_the_configured_threshold_and_key_uris_read_decoded():
    from datetime import UTC, datetime, timedelta

    from station.domain.certificates import CertificateFacts
    from station.gui.admin_view import ca_warnings, describe_key_uri
    from station.services.ca import CaStatus

    now = datetime(2026, 12, 5, tzinfo=UTC)

    def status(days_left: int, warn_days: int) -> CaStatus:
        cert = CertificateFacts(
            subject="CN=Line 1 CA",
            issuer="CN=Offline Root",
            serial_hex="01",
            not_before=now - timedelta(days=300),
            not_after=now + timedelta(days=days_left, hours=1),
            is_ca=True,
            path_length=0,
            key_cert_sign=True,
            public_key_sha256="00",
            self_issued=False,
            thumbprint_sha256="00",
        )
        return CaStatus("pkcs11:token=t", None, "", cert, False, 0, warn_days=warn_days)

    assert ca_warnings(status(45, 60), now) == (
        "CA certificate expires in 45 day(s) (warning from 60 days): renew the intermediate "
        "with your offline root."
    )
    assert ca_warnings(status(45, 30), now) == ""
    assert describe_key_uri(
        "pkcs11:token=station-ca;object=ca%20key;id=%28%C8Y?module-path=/x"
    ) == ("token 'station-ca', object 'ca key', id 28c859")
