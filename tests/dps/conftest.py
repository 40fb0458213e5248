"""Fixtures for the local DPS stand-in: a running server, the official client, swagger schemas."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station_lab.dps import LocalDps
from tests.support.certs import new_cert, new_ek


@pytest.fixture(name="make_ek")
def make_ek_fixture() -> Callable[..., str]:
    return new_ek


@pytest.fixture(name="make_cert")
def make_cert_fixture() -> Callable[..., str]:
    return new_cert


@pytest.fixture
def make_client() -> Iterator[Callable[..., DeviceProvisioningClient]]:
    """Build official clients trusting the lab CA (closed at teardown)."""
    clients: list[DeviceProvisioningClient] = []

    def build(server: LocalDps, policy: str = "provisioningserviceowner", **kwargs: Any):
        client = DeviceProvisioningClient.from_connection_string(
            server.connection_string(policy), connection_verify=str(server.ca_bundle), **kwargs
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(dps: LocalDps, make_client: Callable[..., DeviceProvisioningClient]):
    return make_client(dps)


@pytest.fixture(scope="session")
def swagger(shared_dir: Path) -> dict[str, Any]:
    return json.loads((shared_dir / "testdata" / "dps" / "service.json").read_text())


def _strict(definitions: dict[str, Any]) -> dict[str, Any]:
    # The swagger leaves objects open; close the ones with declared properties so a field the
    # contract does not have fails validation (free-form maps like TwinCollection stay open).
    result = copy.deepcopy(definitions)
    for schema in result.values():
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
    # Real DPS answers a provisioningStatus sent as null (or left out) with null, which the
    # swagger does not allow (recorded: tests/batches/data/SOURCES.md).
    for name in ("IndividualEnrollment", "EnrollmentGroup"):
        status = result[name]["properties"]["provisioningStatus"]
        status["type"] = [status["type"], "null"]
        status["enum"] = [*status["enum"], None]
    return result


@pytest.fixture(scope="session")
def conforms(swagger: dict[str, Any]) -> Callable[[str, Any], None]:
    """``conforms("IndividualEnrollment", body)`` validates against the official swagger."""
    definitions = _strict(swagger["definitions"])

    def check(definition: str, instance: Any) -> None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
        jsonschema.Draft4Validator(schema).validate(instance)

    return check


@pytest.fixture(scope="session")
def conforms_array(swagger: dict[str, Any]) -> Callable[[str, Any], None]:
    definitions = _strict(swagger["definitions"])

    def check(definition: str, instance: Any) -> None:
        schema = {
            "type": "array",
            "items": {"$ref": f"#/definitions/{definition}"},
            "definitions": definitions,
        }
        jsonschema.Draft4Validator(schema).validate(instance)

    return check
