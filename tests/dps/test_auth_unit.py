"""SAS token checks (dps-api.md §3.1), without a server."""

from __future__ import annotations

import time
from urllib.parse import quote_plus

import pytest

from station_lab.dps import auth
from station_lab.dps.errors import ApiError

HOST = "127.0.0.1:4443"


@pytest.fixture
def policies():
    owner = auth.AccessPolicy("owner", auth.new_key(), frozenset(auth.ALL_PERMISSIONS))
    return {"owner": owner}


def check(token, policies, now=None, path="/enrollments/dev-1"):
    return auth.authenticate(
        token,
        policies=policies,
        audiences=[HOST, "localhost:4443"],
        path=path,
        now=now or time.time(),
    )


def test_token_from_the_sdk_algorithm_is_accepted(policies):
    token = auth.make_token(HOST, policies["owner"])
    assert check(token, policies).name == "owner"
    # field order does not matter, and a resource with a path below the host is fine
    fields = token.removeprefix("SharedAccessSignature ").split("&")
    assert check("SharedAccessSignature " + "&".join(reversed(fields)), policies).name == "owner"
    below = auth.make_token(HOST + "/enrollments", policies["owner"])
    assert check(below, policies).name == "owner"
    upper = auth.make_token("LOCALHOST:4443", policies["owner"])
    assert check(upper, policies).name == "owner"


def test_a_token_for_one_path_is_not_a_token_for_another(policies):
    scoped = auth.make_token(HOST + "/enrollments/dev-1", policies["owner"])
    assert check(scoped, policies, path="/enrollments/dev-1").name == "owner"
    assert check(scoped, policies, path="/Enrollments/DEV-1/attestationmechanism").name == "owner"
    for other in ("/enrollments/dev-2", "/enrollments/dev-10", "/enrollmentGroups/dev-1", "/"):
        with pytest.raises(ApiError) as info:
            check(scoped, policies, path=other)
        assert info.value.error_code == 401002
        assert "does not cover" in info.value.message


def test_expiry_is_enforced(policies):
    token = auth.make_token(HOST, policies["owner"], ttl_s=60, now=1_000_000)
    assert check(token, policies, now=1_000_059).name == "owner"
    with pytest.raises(ApiError) as info:
        check(token, policies, now=1_000_060)
    assert info.value.error_code == 401002
    assert "expired" in info.value.message


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("sig=", "sig=A"),
        lambda t: t.replace("skn=owner", "skn=nobody"),
        lambda t: t.replace("SharedAccessSignature", "Bearer"),
        lambda t: t.split("&se=")[0],
        lambda t: t.replace("se=", "se=x"),
        lambda t: t + "&&&",
    ],
)
def test_tampered_tokens_are_refused(policies, mutate):
    token = mutate(auth.make_token(HOST, policies["owner"]))
    with pytest.raises(ApiError) as info:
        check(token, policies)
    assert info.value.status == 401


def test_signature_over_another_resource_is_refused(policies):
    expiry = int(time.time()) + 60
    sig = auth.sign("evil.example", policies["owner"].key, expiry)
    token = (
        f"SharedAccessSignature sr={quote_plus(HOST)}&sig={quote_plus(sig)}&se={expiry}&skn=owner"
    )
    with pytest.raises(ApiError):
        check(token, policies)


def test_permissions():
    reader = auth.AccessPolicy("r", auth.new_key(), frozenset({auth.ENROLLMENT_READ}))
    auth.require(reader, auth.ENROLLMENT_READ)
    with pytest.raises(ApiError) as info:
        auth.require(reader, auth.ENROLLMENT_WRITE)
    assert info.value.error_code == 401002


def test_default_policies_are_created_once_and_private(tmp_path):
    path = tmp_path / "policies.json"
    created = auth.load_or_create_policies(path)
    assert set(created) == {"provisioningserviceowner", "enrollmentread"}
    assert created["provisioningserviceowner"].permissions == frozenset(auth.ALL_PERMISSIONS)
    assert auth.ENROLLMENT_WRITE not in created["enrollmentread"].permissions
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth.load_or_create_policies(path) == created
    assert auth.connection_string(HOST, created["provisioningserviceowner"]).startswith(
        f"HostName={HOST};SharedAccessKeyName=provisioningserviceowner;SharedAccessKey="
    )
