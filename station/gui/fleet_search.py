"""The QA view's fleet scope (#23): one board across every station, as plain text."""

from __future__ import annotations

from station.domain.fleet import FleetDeviceView

SCOPES = ("This station", "Whole fleet")


def render_fleet(view: FleetDeviceView) -> str:
    """Every station's record of the board, its replicated events and its fleet alarms."""
    lines = [f"{len(view.devices)} record(s) of {view.key!r} across the fleet", ""]
    for device in view.devices:
        lines.append(f"{device.station}: {device.registration_id}  serial {device.serial}")
        lines.append(f"  {device.product} / {device.batch}  {device.attestation}  {device.status}")
        lines.append(f"  by {device.operator}, recorded {device.created_at}")
        if device.ek_sha256:
            lines.append(f"  EK SHA-256 {device.ek_sha256}")
    lines.append("")
    lines.append("Fleet alarms:" if view.alarms else "Fleet alarms: none")
    lines.extend(f"  {alarm.describe()}" for alarm in view.alarms)
    lines.append("")
    lines.append("Replicated events:")
    lines.extend(
        f"  {station}#{event.seq} {event.time} {event.kind} by {event.operator}"
        for station, event in view.events
    )
    return "\n".join(lines)
