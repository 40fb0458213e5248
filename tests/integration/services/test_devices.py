"""QA's search by any identifier at hand, as typed or as the window shows it."""

from station.domain.manifest import Attestation
from station.services.identities import record_identity


def test_a_thumbprint_is_found_with_colons_or_in_groups_of_sixteen(
    admin_station, make_manifest
) -> None:
    thumbprint = "3f" * 16 + "a0" * 16
    store = admin_station.store()
    record_identity(
        store,
        make_manifest("SN7", attestation=Attestation.X509, thumbprint=thumbprint),
        clock=admin_station.clock,
        station="st",
        operator="boss",
    )
    devices = admin_station.devices()
    colons = ":".join(thumbprint[i : i + 2] for i in range(0, 64, 2)).upper()
    grouped = " ".join(thumbprint[i : i + 16] for i in range(0, 64, 16))
    for key in (thumbprint, colons, grouped):
        assert [d.registration_id for d in devices.find(key)] == ["dev-sn7"], key
    assert devices.find("3f3f3f3f 3f3f") == []  # a part of one is not a thumbprint
