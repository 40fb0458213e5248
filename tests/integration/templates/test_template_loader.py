from pathlib import Path

import pytest

from station.adapters.templates.loader import TemplateError, TemplateLibrary, load_product
from station.config import shipped_templates_dir
from station.domain.errors import NotFoundError
from station.domain.products import EkCertificateResult, ProductAttestation


def test_every_shipped_recipe_and_template_loads() -> None:
    library = TemplateLibrary(shipped_templates_dir())
    checked = library.check_all()
    assert {
        "products/lab-tpm",
        "products/lab-x509",
        "products/lab-nokey",
        "products/lab-sym",
        "products/lab-opcert",
        "enrollments/default",
        "credential-policies/lab-policy",
    } <= set(checked)
    operational = library.product("lab-opcert").operational_certificate
    assert operational is not None and operational.credential_policy == "lab-policy"
    assert library.credential_policy("lab-policy").validity_days == 30
    tpm = library.product("lab-tpm")
    assert tpm.attestation is ProductAttestation.TPM
    assert tpm.blocks(EkCertificateResult.UNTRUSTED) and not tpm.blocks(EkCertificateResult.ABSENT)
    assert library.product("lab-x509").registration_id_for(serial="SN01", model="m") == "lab-sn01"
    assert library.enrollment_template("default").twin_tags["batch"] == "{batch}"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "products" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GOOD = (
    '[product]\nname = "p1"\nattestation = "x509"\nprefix = "p"\n[product.dps]\nid_scope = "0ne1"\n'
)


@pytest.mark.parametrize(
    ("text", "fragment", "key"),
    [
        (
            GOOD.replace('attestation = "x509"', 'attestation = "magic"'),
            "must be one of tpm, x509",
            "product.attestation",
        ),
        (GOOD + "colour = 1\n", "unknown key 'product.dps.colour'", "product.dps.colour"),
        (GOOD.replace('prefix = "p"', "prefix = 7"), "must be a string", "product.prefix"),
        (GOOD.replace('"0ne1"', '""'), "id_scope is required", None),
        (
            GOOD.replace('prefix = "p"', 'prefix = "p"\nregistration_id = "-{serial}"'),
            "gives invalid IDs",
            None,
        ),
        ('[product]\nname = "p1"\n', "missing", None),
        ("[other]\n", "exactly one [product] table", None),
        ("[product\n", "not valid TOML", None),
    ],
)
def test_bad_recipes_name_file_and_key(
    tmp_path: Path, text: str, fragment: str, key: str | None
) -> None:
    path = write(tmp_path, "p1", text)
    with pytest.raises(TemplateError) as info:
        load_product(path)
    assert fragment in info.value.message
    assert str(path) in info.value.message
    if key:
        assert info.value.details["key"] == key


def test_recipe_name_must_match_its_file(tmp_path: Path) -> None:
    path = write(tmp_path, "other-name", GOOD)
    with pytest.raises(TemplateError, match="must match the file name"):
        load_product(path)


def test_unknown_product_lists_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, "p1", GOOD)
    with pytest.raises(NotFoundError) as info:
        TemplateLibrary(tmp_path).product("nope")
    assert "p1" in info.value.remedy


def test_a_table_written_as_a_value_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "products" / "p.toml"
    path.parent.mkdir()
    path.write_text("product = 5\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"'product' in .* must be a table") as info:
        load_product(path)
    assert info.value.details["key"] == "product"


def test_a_product_naming_a_bad_operational_certificate_source_is_refused(tmp_path: Path) -> None:
    text = GOOD + '[product.operational_certificate]\nsource = "est"\ncredential_policy = "p-1"\n'
    with pytest.raises(TemplateError, match="'dps' only"):
        load_product(write(tmp_path, "p1", text))


def test_an_unknown_credential_policy_names_the_known_ones() -> None:
    with pytest.raises(NotFoundError) as caught:
        TemplateLibrary(shipped_templates_dir()).credential_policy("ghost")
    assert "lab-policy" in caught.value.remedy
