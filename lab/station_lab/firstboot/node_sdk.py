"""First registration of a TPM board through Microsoft's Node device SDK, over HTTPS.

The Python device SDK offers no TPM attestation and DPS offers none over MQTT; the Node SDK
(azure-iot-provisioning-device + azure-iot-provisioning-device-http + azure-iot-security-tpm)
does it over HTTPS, through DPS's 401 challenge, with the key imported into the TPM. The board
runs ``lab/station_lab/node/register-tpm.js`` (its packages are installed by ``make bootstrap``,
``npm ci``) and lends it its TPM through a loopback bridge in the TPM simulator's socket protocol
(``tpm_bridge.py``), the way tss.js reaches a TPM simulator.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

from station.domain.errors import DeviceRegistrationError
from station_lab.firstboot.client import Assignment, DpsEndpoint
from station_lab.firstboot.tpm_bridge import TpmSimulatorBridge, Transmit

NODE_DIR: Final = Path(__file__).resolve().parents[1] / "node"
SCRIPT: Final = NODE_DIR / "register-tpm.js"
SDK_PACKAGE: Final = "azure-iot-provisioning-device"
HTTPS_PORT: Final = 443


def sdk_name() -> str:
    """The SDK and its version, as the power-on report shows it."""
    try:
        manifest = NODE_DIR / "node_modules" / SDK_PACKAGE / "package.json"
        version = str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        version = "?"
    return f"{SDK_PACKAGE} {version} (Node, HTTPS)"


def register_with_node_sdk(
    endpoint: DpsEndpoint, tpm: Transmit, *, timeout_s: float = 60.0
) -> Assignment:
    """Register the TPM behind ``tpm`` with the Node device SDK and return DPS's assignment.

    Args:
        endpoint: the board's DPS info; ``host[:port]`` (the port is the lab DPS's HTTPS port,
            443 when absent) and the CA bundle the SDK trusts.
        tpm: the board's TPM (raw command in, raw response out).
        timeout_s: the whole registration's time limit.

    Raises:
        DeviceRegistrationError: DPS refused the device, the SDK failed, or Node or the SDK's
            packages are missing.
    """
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / SDK_PACKAGE).is_dir():
        raise DeviceRegistrationError(
            "the Node device SDK is not installed",
            remedy="Run 'make bootstrap' (it installs Node.js and runs 'npm ci' in "
            "lab/station_lab/node).",
        )
    host, port = _split(endpoint.global_endpoint)
    request: dict[str, Any] = {
        "host": host,
        "port": port,
        "idScope": endpoint.id_scope,
        "caFile": str(endpoint.ca_bundle) if endpoint.ca_bundle else "",
    }
    with TpmSimulatorBridge(tpm) as bridge:
        request |= {"tpmHost": bridge.host, "tpmPort": bridge.port}
        try:
            done = subprocess.run(
                [node, str(SCRIPT)],
                input=json.dumps(request).encode(),
                capture_output=True,
                cwd=NODE_DIR,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DeviceRegistrationError(
                f"the Node device SDK did not finish registering within {timeout_s:g} s",
                remedy="Check that the lab DPS runs and the board's TPM answers.",
            ) from exc
    answer = _answer(done)
    if not answer.get("ok"):
        raise _refusal(answer)
    result = answer.get("result") or {}
    state = result.get("registrationState") or {}
    if result.get("status") != "assigned":
        raise DeviceRegistrationError(
            f"DPS did not assign the TPM board: status {result.get('status')}",
            remedy="Check the device's enrollment (enabled, linked hubs, custom allocation).",
            error_code=state.get("errorCode"),
            status=result.get("status"),
        )
    return Assignment(
        registration_id=str(state.get("registrationId", "")),
        assigned_hub=str(state.get("assignedHub", "")),
        device_id=str(state.get("deviceId", "")),
        substatus=str(state.get("substatus", "")),
        etag=str(state.get("etag", "")),
        operation_id=str(result.get("operationId", "")),
        payload=state.get("payload"),
        registration_state=state,
    )


def _split(global_endpoint: str) -> tuple[str, int]:
    host, sep, port = global_endpoint.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return host.strip("[]"), int(port)
    return global_endpoint.strip("[]"), HTTPS_PORT


def _answer(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        error = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DeviceRegistrationError(
            f"the Node device SDK failed (exit {done.returncode}): "
            f"{error[-1] if error else 'no output'}",
            remedy="Run 'make bootstrap' to reinstall it; the board log has the details.",
        )
    return answer


def _refusal(answer: dict[str, Any]) -> DeviceRegistrationError:
    """DPS's refusal as the SDK reports it.

    The SDK keeps DPS's body only for some answers: to a first PUT that is not the 401 challenge
    (an EK DPS does not know: 404201) it reports just ``InvalidOperationError``, so that name is
    the code the board sees.
    """
    status = answer.get("statusCode")
    try:
        body = json.loads(answer.get("body") or "{}")
    except ValueError:
        body = {}
    code = body.get("errorCode") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    return DeviceRegistrationError(
        f"DPS refused the TPM registration: {message or answer.get('message') or 'no reason'}",
        remedy="Check that the TPM's endorsement key is enrolled (individual TPM enrollment).",
        http_status=status,
        error_code=next((c for c in (code, status, answer.get("name")) if c), None),
    )
