"""MQTT 3.1.1 packets for the lab DPS, framed and parsed by amqtt's codec.

amqtt (the maintained successor of hbmqtt) is a broker and client; the stand-in uses only its
packet classes (``amqtt.mqtt``), not its broker. A broker routes a PUBLISH to every subscriber of
the topic, while DPS answers each device on its own connection, on the same port as HTTPS for
MQTT over WebSocket; the DPS topics are ours (``mqtt_session.py``), the framing is amqtt's.

amqtt's decoders are coroutines that read from a reader adapter. Here each connection is served
by its own thread over a blocking stream, so the reads are plain blocking reads and a decoder
never has anything to wait for: :func:`_complete` runs such a coroutine to its end without an
event loop. A packet is read in two steps, its fixed header from the stream and then exactly its
remaining length into memory, so a malformed body can never make the decoder read into the next
packet or past the size limit.
"""

from __future__ import annotations

import struct
from collections.abc import Coroutine
from typing import Any, Final, Protocol

from amqtt.adapters import ReaderAdapter
from amqtt.errors import AMQTTError, CodecError, MQTTError, NoDataError
from amqtt.mqtt import packet_class
from amqtt.mqtt.connack import ConnackPacket
from amqtt.mqtt.packet import MQTTFixedHeader
from amqtt.mqtt.pingresp import PingRespPacket
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.suback import SubackPacket
from amqtt.mqtt.unsuback import UnsubackPacket

#: CONNACK return codes (MQTT 3.1.1 §3.2.2.3).
CONNACK_ACCEPTED: Final = 0x00
CONNACK_BAD_PROTOCOL: Final = 0x01
CONNACK_IDENTIFIER_REJECTED: Final = 0x02
CONNACK_BAD_USERNAME_PASSWORD: Final = 0x04
CONNACK_NOT_AUTHORIZED: Final = 0x05
SUBACK_FAILURE: Final = 0x80

_DECODE_ERRORS: Final = (
    AMQTTError,
    CodecError,
    MQTTError,
    NoDataError,
    ValueError,  # also UnicodeDecodeError: a string field that is not UTF-8
    struct.error,
    IndexError,
    TypeError,
)


class ByteStream(Protocol):
    """A blocking, ordered byte stream: a TLS socket or the payload of WebSocket messages."""

    def read(self, size: int) -> bytes:
        """Return 1..size bytes, or ``b""`` once the peer has closed the stream."""
        ...

    def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        ...


class MalformedPacket(Exception):
    """The peer sent bytes that are not a valid MQTT 3.1.1 packet (one sentence why)."""


class PacketTooLarge(MalformedPacket):
    """A packet's remaining length is over the endpoint's limit."""


def _complete(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a codec coroutine that never suspends (its reads block instead) and return its value."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the MQTT codec waited on an event loop; the stand-in has none")


class _StreamReader(ReaderAdapter):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt reader over a blocking :class:`ByteStream` (for the fixed header only)."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream

    async def read(self, n: int = -1) -> bytes:
        return self._stream.read(max(n, 1))

    def feed_eof(self) -> None:
        """Nothing to do: the stream reports its own end."""


class _BufferReader(ReaderAdapter):  # type: ignore[misc]
    """amqtt reader over one packet's body, in memory."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.offset = 0

    async def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self.offset + n
        chunk = self._data[self.offset : end]
        self.offset += len(chunk)
        return chunk

    def feed_eof(self) -> None:
        """Nothing to do: the buffer is all there is."""


def read_exact(stream: ByteStream, size: int) -> bytes:
    """Read exactly ``size`` bytes; ``b""`` only when the stream ended before the first byte.

    Raises:
        MalformedPacket: the stream ended in the middle.
    """
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == size:
                return b""
            raise MalformedPacket("the connection ended in the middle of a packet")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def read_packet(stream: ByteStream, *, max_bytes: int) -> Any | None:
    """Read and decode the next packet; ``None`` when the peer closed the stream between packets.

    Raises:
        PacketTooLarge: the remaining length is over ``max_bytes``.
        MalformedPacket: the bytes are not a valid packet.
        OSError: the stream failed (including its read timeout).
    """
    try:
        header = _complete(MQTTFixedHeader.from_stream(_StreamReader(stream)))
    except _DECODE_ERRORS as exc:
        raise MalformedPacket(f"bad fixed header: {exc}") from exc
    if header is None:
        return None
    if header.remaining_length > max_bytes:
        raise PacketTooLarge(
            f"the packet has {header.remaining_length} bytes; the limit is {max_bytes}"
        )
    body = read_exact(stream, header.remaining_length)
    if len(body) != header.remaining_length:
        raise MalformedPacket("the connection ended in the middle of a packet")
    reader = _BufferReader(body)
    try:
        kind = packet_class(header)
        packet = _complete(kind.from_stream(reader, fixed_header=header))
    except _DECODE_ERRORS as exc:
        raise MalformedPacket(f"bad packet of type {header.packet_type}: {exc}") from exc
    if reader.offset != len(body):
        raise MalformedPacket(f"packet of type {header.packet_type} has trailing bytes")
    return packet


def connack(return_code: int) -> bytes:
    """A CONNACK with ``return_code`` and no session present."""
    return bytes(ConnackPacket.build(0, return_code).to_bytes())


def suback(packet_id: int, granted: list[int]) -> bytes:
    """A SUBACK granting ``granted`` (one QoS or 0x80 per requested filter)."""
    return bytes(SubackPacket.build(packet_id, granted).to_bytes())


def unsuback(packet_id: int) -> bytes:
    """An UNSUBACK."""
    return bytes(UnsubackPacket.build(packet_id).to_bytes())


def puback(packet_id: int) -> bytes:
    """A PUBACK for a QoS 1 PUBLISH."""
    return bytes(PubackPacket.build(packet_id).to_bytes())


def pingresp() -> bytes:
    """A PINGRESP."""
    return bytes(PingRespPacket.build().to_bytes())


def publish(topic: str, message: bytes) -> bytes:
    """A QoS 0 PUBLISH of ``message`` on ``topic``."""
    return bytes(PublishPacket.build(topic, message, None, False, 0, False).to_bytes())
