"""Discovery, slot binding by USB port path, and hot-plug detection."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from station.adapters.board.discovery import BoardDiscovery, HotplugMonitor, SlotBindings
from station.domain.boards import PlugChange, SlotEvent
from station.domain.errors import BoardError, BoardNotFoundError
from station_lab.boards.runner import LabBoards


def _usb(device: str, location: str, serial: str = "", vid: int = 0x2E8A) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.location, info.serial_number = vid, 0x000A, location, serial
    info.description = "Pico"
    return info


def test_slot_bindings_persist_and_a_location_has_one_slot(tmp_path: Path) -> None:
    bindings = SlotBindings(tmp_path / "data" / "slots.toml")
    assert bindings.load() == {}
    bindings.bind("1", "1-1.1:1.0")
    bindings.bind("2", "1-1.2:1.0")
    bindings.bind("3", "1-1.1:1.0")  # moving a port to another slot frees the old slot
    again = SlotBindings(tmp_path / "data" / "slots.toml")
    assert again.load() == {"2": "1-1.2:1.0", "3": "1-1.1:1.0"}
    assert again.slot_of("1-1.2:1.0") == "2"
    again.unbind("2")
    assert again.slot_of("1-1.2:1.0") is None
    with pytest.raises(BoardError):
        again.bind("bad slot name!", "x")
    (tmp_path / "data" / "slots.toml").write_text("[slots\n")
    with pytest.raises(BoardError) as caught:
        again.load()
    assert "slots.toml" in caught.value.message


def test_identical_usb_boards_keep_their_slot_by_port_path(tmp_path: Path) -> None:
    ports = [_usb("/dev/ttyACM0", "1-1.1:1.0"), _usb("/dev/ttyACM1", "1-1.2:1.0")]
    discovery = BoardDiscovery(SlotBindings(tmp_path / "slots.toml"), comports=lambda: ports)
    discovery.bindings.bind("A", "1-1.2:1.0")
    discovery.bindings.bind("B", "1-1.1:1.0")
    # Re-plugged in the other order: device nodes swap, slots follow the physical port.
    ports[:] = [_usb("/dev/ttyACM0", "1-1.2:1.0"), _usb("/dev/ttyACM1", "1-1.1:1.0")]
    assert discovery.board_in("A").device == "/dev/ttyACM0"
    assert discovery.board_in("B").device == "/dev/ttyACM1"
    assert {b.slot for b in discovery.boards()} == {"A", "B"}


def test_a_board_swapped_within_one_poll_is_seen_leaving_and_arriving(tmp_path: Path) -> None:
    ports = [_usb("/dev/ttyACM0", "1-1.1:1.0", serial="E6614103E7")]
    discovery = BoardDiscovery(SlotBindings(tmp_path / "slots.toml"), comports=lambda: ports)
    discovery.bindings.bind("A", "1-1.1:1.0")
    monitor = HotplugMonitor(discovery)
    assert [e.change for e in monitor.poll()] == [PlugChange.ARRIVED]
    # the next unit goes into the same socket and gets the same device node at once
    ports[:] = [_usb("/dev/ttyACM0", "1-1.1:1.0", serial="E6614103F2")]
    events = monitor.poll()
    assert [(e.change, e.slot, e.board.serial_number) for e in events] == [
        (PlugChange.REMOVED, "A", "E6614103E7"),
        (PlugChange.ARRIVED, "A", "E6614103F2"),
    ]
    assert monitor.poll() == []


def test_usb_filter_and_non_usb_ports(tmp_path: Path) -> None:
    ports = [
        _usb("/dev/ttyACM0", "1-1.1:1.0"),
        _usb("/dev/ttyUSB0", "1-1.3:1.0", vid=0x0403),
        ListPortInfo("/dev/ttyS0", skip_link_detection=True),  # a built-in UART: no VID
    ]
    discovery = BoardDiscovery(
        SlotBindings(tmp_path / "slots.toml"), usb_ids=("2E8A:000A",), comports=lambda: ports
    )
    boards = discovery.boards()
    assert [(b.device, b.usb_id, b.source) for b in boards] == [
        ("/dev/ttyACM0", "2e8a:000a", "usb")
    ]


def test_bind_plugged_needs_exactly_one_candidate(tmp_path: Path) -> None:
    ports = [_usb("/dev/ttyACM0", "1-1.1:1.0"), _usb("/dev/ttyACM1", "1-1.2:1.0")]
    discovery = BoardDiscovery(SlotBindings(tmp_path / "slots.toml"), comports=lambda: ports)
    with pytest.raises(BoardNotFoundError) as caught:
        discovery.bind_plugged("1")
    assert caught.value.details["candidates"] == ["1-1.1:1.0", "1-1.2:1.0"]
    assert discovery.bind_plugged("1", "1-1.2:1.0").slot == "1"
    assert discovery.bind_plugged("2").location == "1-1.1:1.0"  # the only unbound one left
    with pytest.raises(BoardNotFoundError):
        discovery.board_in("9")


def test_lab_boards_are_discovered_bound_and_hotplugged(lab: LabBoards, tmp_path: Path) -> None:
    discovery = BoardDiscovery(
        SlotBindings(tmp_path / "slots.toml"), lab_registry=lab.registry_path, comports=list
    )
    monitor = HotplugMonitor(discovery)
    assert monitor.poll() == []
    _, second = lab.start(2, "se")
    arrived = monitor.poll()
    assert {(e.change, e.board.location) for e in arrived} == {
        (PlugChange.ARRIVED, "lab-1"),
        (PlugChange.ARRIVED, "lab-2"),
    }
    discovery.bind_plugged("7", "lab-2")
    old_port = second.port
    lab.unplug(second.index)
    removed = monitor.poll()
    assert [(e.change, e.slot, e.board.device) for e in removed] == [
        (PlugChange.REMOVED, "7", old_port)
    ]
    lab.replug(second.index)
    events = monitor.poll()
    assert [(e.change, e.slot, e.board.location) for e in events] == [
        (PlugChange.ARRIVED, "7", "lab-2")
    ]
    assert discovery.board_in("7").device == second.port
    assert monitor.poll() == []


def test_stale_or_broken_registry_lists_no_lab_boards(tmp_path: Path) -> None:
    registry = tmp_path / "boards.json"
    discovery = BoardDiscovery(
        SlotBindings(tmp_path / "slots.toml"), lab_registry=registry, comports=list
    )
    registry.write_text("{not json")
    assert discovery.boards() == []
    entry = {"location": "lab-1", "device": "/dev/null", "vid": 1, "pid": 2}
    registry.write_text(json.dumps({"runner_pid": 2**22 + 12345, "boards": [entry]}))
    assert discovery.boards() == []  # runner gone


def test_watch_reports_events_until_stopped(lab: LabBoards, tmp_path: Path) -> None:
    discovery = BoardDiscovery(
        SlotBindings(tmp_path / "slots.toml"), lab_registry=lab.registry_path, comports=list
    )
    seen: list[SlotEvent] = []
    arrived = threading.Event()
    stop = threading.Event()

    def on_event(event: SlotEvent) -> None:
        seen.append(event)
        arrived.set()

    watcher = threading.Thread(
        target=HotplugMonitor(discovery).watch, args=(on_event, stop), kwargs={"interval_s": 0.05}
    )
    watcher.start()
    try:
        lab.start(1, "nokey")
        assert arrived.wait(timeout=30)
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert not watcher.is_alive()
    assert seen[0].change is PlugChange.ARRIVED and seen[0].board.location == "lab-1"


def test_a_lab_board_whose_process_ended_is_gone_even_when_its_pty_is_reused(
    tmp_path: Path,
) -> None:
    # A lab board that dies on its own (an injected unplug, a crash) stays in the registry with
    # its pty until the runner rewrites it. The kernel hands the lowest free pty number to the
    # next pty opened on the machine (another lab's board, a terminal), so the path exists again
    # as someone else's. Here the test holds that "someone else's" pty itself.
    master, slave = os.openpty()
    reused = os.ttyname(slave)
    ended = subprocess.Popen(["true"])
    ended.wait()  # gone and reaped
    zombie = subprocess.Popen(["true"])  # exits, and nobody reaps it yet
    stat = Path(f"/proc/{zombie.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    registry = tmp_path / "boards.json"
    discovery = BoardDiscovery(
        SlotBindings(tmp_path / "slots.toml"), lab_registry=registry, comports=list
    )

    def listed(process_id: object) -> list[str]:
        entry = {"location": "lab-7", "device": reused, "vid": 1, "pid": 2}
        entry["process_id"] = process_id
        registry.write_text(json.dumps({"runner_pid": os.getpid(), "boards": [entry]}))
        return [b.device for b in discovery.boards()]

    try:
        assert listed(os.getpid()) == [reused]  # its board's process runs: it is there
        assert listed(None) == [reused]  # a registry without process ids: the path decides
        assert listed(ended.pid) == []
        assert listed(zombie.pid) == []
    finally:
        zombie.wait()
        os.close(master)
        os.close(slave)
