import pytest

from station.domain.errors import InvalidRegistrationIdError, ValidationError
from station.domain.products import (
    DpsTargetSpec,
    EkCertificateResult,
    ProductAttestation,
    ProductRecipe,
    check_sample,
)

DPS = DpsTargetSpec(id_scope="0ne00000001")


def recipe(**kwargs) -> ProductRecipe:
    values = {"name": "thermo", "attestation": ProductAttestation.X509, "dps": DPS, "prefix": "th"}
    values.update(kwargs)
    return ProductRecipe(**values)


def test_registration_id_is_formed_from_the_template_and_validated() -> None:
    product = recipe()
    assert product.registration_id_for(serial="SN-00A1", model="M") == "th-sn-00a1"
    assert (
        product.device_id_for(registration_id="th-sn-00a1", serial="SN-00A1", model="M")
        == "th-sn-00a1"
    )
    with pytest.raises(InvalidRegistrationIdError) as info:
        product.registration_id_for(serial="bad serial!", model="M")
    assert info.value.details["rule"] == "charset"


def test_x509_products_are_held_to_64_characters() -> None:
    x509 = recipe(registration_id="{serial}")
    sym = recipe(
        registration_id="{serial}",
        attestation=ProductAttestation.SYMMETRIC_KEY,
        group_key="pkcs11:object=g",
    )
    long_serial = "a" * 70
    with pytest.raises(InvalidRegistrationIdError):
        x509.registration_id_for(serial=long_serial, model="M")
    assert sym.registration_id_for(serial=long_serial, model="M") == long_serial


def test_tpm_ids_do_not_come_from_templates() -> None:
    tpm = recipe(attestation=ProductAttestation.TPM, registration_id="ignored {nonsense}")
    with pytest.raises(ValidationError, match="derived from the endorsement key"):
        tpm.registration_id_for(serial="S", model="M")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "Bad Name"}, "product name"),
        ({"dps": DpsTargetSpec(id_scope="")}, "id_scope is required"),
        ({"registration_id": "{serial}-{secret}"}, "unknown placeholders ['secret']"),
        ({"registration_id": "{}"}, "unknown placeholders"),
        ({"registration_id": "{serial"}, "malformed"),
        ({"attestation": ProductAttestation.SYMMETRIC_KEY}, "need group_key"),
        ({"ek_template": "rsa1024"}, "ek_template"),
    ],
)
def test_bad_recipes_are_refused_at_load(kwargs, fragment: str) -> None:
    with pytest.raises(ValidationError, match=None) as info:
        recipe(**kwargs)
    assert fragment in info.value.message


def test_a_template_that_can_never_form_a_valid_id_is_caught_by_the_sample_check() -> None:
    with pytest.raises(InvalidRegistrationIdError, match="product thermo"):
        check_sample(recipe(registration_id="-{serial}"))
    check_sample(recipe())


def test_ek_certificate_policy() -> None:
    strict = recipe(attestation=ProductAttestation.TPM)
    assert strict.blocks(EkCertificateResult.UNTRUSTED)
    assert not strict.blocks(EkCertificateResult.ABSENT)
    assert not strict.blocks(EkCertificateResult.VALID)
    lenient = recipe(attestation=ProductAttestation.TPM, ek_certificate_blocks=frozenset())
    assert not lenient.blocks(EkCertificateResult.UNTRUSTED)
