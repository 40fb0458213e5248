"""How fast the local DPS stand-in answers, against the DPS ceiling and a raw-HTTPS peer.

Run: .venv/bin/python benchmarks/bench_lab_dps.py [N]

The stand-in must never be the bottleneck when the station pushes at DPS's documented ceiling
(1,000 operations/min, 10 enrollments per bulk call). This measures, in one run and with throttling
off: bulk-create calls and single PUTs through the official client, the same bulk calls through a
bare ``requests`` session (the peer: same server and TLS, minimal client), and the server's own
handling time from the access log (the floor). Ratios are printed against the ceiling and the peer.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station_lab.dps import DpsOptions, LocalDps
from station_lab.dps.auth import OWNER_POLICY, make_token

DPS_CEILING_CALLS_PER_S = 1000 / 60


def _items(prefix: str, start: int) -> list[dict[str, object]]:
    return [
        {"registrationId": f"{prefix}-{n:06}", "attestation": {"type": "symmetricKey"}}
        for n in range(start, start + 10)
    ]


def main(calls: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalDps(DpsOptions(state_dir=Path(tmp) / "dps", rate_limit=0)) as dps,
    ):
        client = DeviceProvisioningClient.from_connection_string(
            dps.connection_string(), connection_verify=str(dps.ca_bundle)
        )
        t0 = time.perf_counter()
        for i in range(calls):
            client.enrollment.run_bulk_operation(
                {"mode": "create", "enrollments": _items("sdk", i * 10)}
            )
        sdk_bulk_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        for i in range(calls):
            rid = f"put-{i:06}"
            client.enrollment.create_or_update(
                id=rid, enrollment={"registrationId": rid, "attestation": {"type": "symmetricKey"}}
            )
        sdk_put_s = time.perf_counter() - t0
        client.close()

        session = requests.Session()
        token = make_token(dps.host_name, dps.policies[OWNER_POLICY], ttl_s=3600)
        headers = {"Authorization": token, "Content-Type": "application/json"}
        url = f"{dps.endpoint}/enrollments?api-version=2021-10-01"
        t0 = time.perf_counter()
        for i in range(calls):
            body = json.dumps({"mode": "create", "enrollments": _items("raw", i * 10)})
            response = session.post(url, data=body, headers=headers, verify=str(dps.ca_bundle))
            response.raise_for_status()
        raw_bulk_s = time.perf_counter() - t0
        session.close()

        handled = [e["durationMs"] for e in dps.access_log() if e["operation"] == "enrollment.bulk"]
        server_ms = statistics.median(handled)

    sdk_ms, raw_ms, put_ms = (x / calls * 1000 for x in (sdk_bulk_s, raw_bulk_s, sdk_put_s))
    print(f"calls per variant: {calls} (bulk = 10 enrollments per call)")
    print(f"server handling, bulk call (median, floor):  {server_ms:7.2f} ms")
    print(f"raw requests, bulk call (peer):               {raw_ms:7.2f} ms")
    print(f"official client, bulk call:                   {sdk_ms:7.2f} ms")
    print(f"official client, single PUT:                  {put_ms:7.2f} ms")
    print(f"official client / raw peer (bulk):            {sdk_ms / raw_ms:7.2f} x")
    print(f"raw peer / server floor (bulk):               {raw_ms / server_ms:7.2f} x")
    headroom = (1000 / sdk_ms) / DPS_CEILING_CALLS_PER_S
    print(f"stand-in bulk calls/s vs DPS ceiling (16.7/s): {headroom:7.1f} x headroom")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
