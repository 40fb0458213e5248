"""The :class:`~station.ports.GroupKeys` over hsm/: device keys derived inside the token."""

from __future__ import annotations

import hsm
from station.domain.errors import KeyCustodyError


class HsmGroupKeys:
    """Opens each group key once (by URI) and derives device keys with it."""

    def __init__(self, pin_source: hsm.PinSource | None = None) -> None:
        self._pins = pin_source
        self._open: dict[str, hsm.GroupKey] = {}

    def derive(self, group_key_uri: str, registration_id: str) -> bytes:
        """HMAC-SHA256(group key, registration ID), computed where the group key lives."""
        try:
            key = self._open.get(group_key_uri)
            if key is None:
                key = hsm.open_group_key(group_key_uri, pin_source=self._pins)
                self._open[group_key_uri] = key
            return key.derive(registration_id)
        except hsm.HsmError as exc:
            raise KeyCustodyError(
                f"cannot derive a device key with group key {group_key_uri}: {exc}",
                remedy="Check the product's group_key URI and the token PIN.",
                uri=group_key_uri,
            ) from exc

    def close(self) -> None:
        """Close every opened group key."""
        for key in self._open.values():
            key.close()
        self._open.clear()
