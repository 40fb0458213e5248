"""A lab station for the GUI: SoftHSM2 CA, local DPS, virtual boards bound to slots, operators.

``make gui`` runs this script: it builds the lab in ``.gui-lab/`` (wiped first), opens the
station window on it, and stops the boards and the DPS stand-in when the window closes. The
screenshot script and the GUI benchmark use :func:`gui_lab` the same way.

Log in with PIN 111111 as ``tina`` (technician), 222222 as ``quinn`` (QA) or 333333 as ``ada``
(admin); badges ``BADGE-TINA``, ``BADGE-QUINN``, ``BADGE-ADA``. Scan ``WO-1001`` in the scan bar.
Lab secrets here are throwaway test values for a throwaway directory.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from hsm.softhsm import activate, create_token
from station.bootstrap import Station, build_station
from station.config import StationConfig, load_config
from station.domain.records import Role
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoard, LabBoards
from station_lab.dps.app import DpsOptions, running_dps

LAB_PIN = "1234"  # the throwaway SoftHSM2 token's user PIN
BATCH = "WO-1001"
PEOPLE = {
    "tina": (Role.TECHNICIAN, "111111", "BADGE-TINA"),
    "quinn": (Role.QA, "222222", "BADGE-QUINN"),
    "ada": (Role.ADMIN, "333333", "BADGE-ADA"),
}


@dataclass
class GuiLab:
    """A running lab: its config, boards (index -> board) and the runner."""

    config_file: Path
    config: StationConfig
    boards: list[LabBoard]
    lab: LabBoards

    def station(self) -> Station:
        """A station on the lab config (nobody logged in)."""
        return build_station(self.config)


@contextmanager
def gui_lab(
    directory: Path,
    *,
    boards: int = 4,
    faults: dict[int, Faults] | None = None,
    batch_size: int = 200,
    baud: int = 0,
) -> Iterator[GuiLab]:
    """Build the lab in ``directory`` (wiped first) and stop everything on exit.

    Args:
        directory: the lab's working directory.
        boards: secure-element boards to start, bound to slot-1 .. slot-N (at most 16).
        faults: board number (1-based) -> faults for that board.
        batch_size: size of the open batch ``WO-1001``.
        baud: emulated line speed of the boards (0 = unpaced, fastest for tests).
    """
    directory = directory.resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    token = create_token(directory / "softhsm", "station-ca", pin=LAB_PIN)
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    os.environ["STATION_PKCS11_PIN"] = LAB_PIN
    os.environ.setdefault("TSS2_LOG", "all+none")
    activate(token.conf)
    with ExitStack() as stack:
        dps = stack.enter_context(
            running_dps(DpsOptions(state_dir=directory / "dps", reset=True, rate_limit=0))
        )
        config_file = directory / "station.toml"
        slots = ", ".join(f'"slot-{n}"' for n in range(1, boards + 1))
        config_file.write_text(
            "[station]\n"
            'id = "line-1"\n'
            f'data_dir = "{directory / "data"}"\n'
            "[board]\n"
            f"baud = {baud}\n"
            f'slots_file = "{directory / "slots.toml"}"\n'
            "[lab]\n"
            f'dir = "{directory / "lab"}"\n'
            "[tpm]\n"
            "trust_lab_ca = true\n"
            "[labels]\n"
            f'output_dir = "{directory / "labels"}"\n'
            "[dps]\n"
            f'connection_string_file = "{dps.connection_file}"\n'
            f'ca_bundle = "{dps.ca_bundle}"\n'
            'manifest_key_uri = "pkcs11:token=station-ca;object=manifest-key"\n'
            f'manifest_chain_file = "{directory / "manifest-chain.pem"}"\n'
            "[gui]\n"
            f"slot_names = [{slots}]\n"
            "lock_after_s = 900\n",
            encoding="utf-8",
        )
        config = load_config(config_file, env={})
        admin = build_station(config)
        try:
            admin.database().initialize(
                config_file=str(config_file),
                data_dir=str(config.data_dir),
                admin="boss",
                operator="boss",
            )
            ca = admin.ca()
            ca.init(
                token.uri("station-ca-key"),
                common_name="Line 1 CA",
                organization="ACME",
                operator="boss",
            )
            ca.lab_root(operator="boss")
            # batch manifests: the station CA's manifest-signing key
            ca.certify_manifest_key(operator="boss")
            group_key = base64.b64encode(secrets.token_bytes(32)).decode()
            ca.import_group_key(
                "pkcs11:token=station-ca;object=lab-group-key", group_key, operator="boss"
            )
            for name, (role, pin, badge) in PEOPLE.items():
                admin.operators().add(name, role, pin=pin, badge=badge, operator="boss")
            admin.batches().open(name=BATCH, product="lab-x509", size=batch_size, operator="boss")
            lab = stack.enter_context(LabBoards.for_station(admin.config, baud=baud))
            started: list[LabBoard] = []
            for number in range(1, boards + 1):
                fault = (faults or {}).get(number)
                started += lab.start(1, "se", fault) if fault else lab.start(1, "se")
            for number, board in enumerate(started, start=1):
                admin.discovery().bind_plugged(f"slot-{number}", board.location)
        finally:
            admin.close()
        yield GuiLab(config_file, config, started, lab)


def main() -> int:
    """``make gui``: the lab, then the window; everything stops when the window closes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(".gui-lab"))
    parser.add_argument("--boards", type=int, default=4)
    args = parser.parse_args()
    from station.gui.app import run

    with gui_lab(args.dir, boards=min(max(args.boards, 1), 16)) as lab:
        print(f"lab ready in {args.dir}: {len(lab.boards)} boards; config {lab.config_file}")
        print("log in: tina/111111 (technician), quinn/222222 (QA), ada/333333 (admin)")
        station = lab.station()
        try:
            return run(station)
        finally:
            station.close()


if __name__ == "__main__":
    sys.exit(main())
