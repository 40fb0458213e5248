"""The MQTT packet layer of the lab DPS (amqtt's codec over a blocking stream), byte for byte."""

from __future__ import annotations

import pytest
from amqtt.mqtt.connect import ConnectPacket, ConnectPayload, ConnectVariableHeader

from station_lab.dps import mqtt_codec
from station_lab.dps.mqtt_codec import MalformedPacket, PacketTooLarge


class Stream:
    """Bytes in, bytes out; reads come in small pieces, as from a socket."""

    def __init__(self, data: bytes, piece: int = 3) -> None:
        self.data = data
        self.piece = piece
        self.written = b""

    def read(self, size: int) -> bytes:
        chunk, self.data = self.data[: min(size, self.piece)], self.data[min(size, self.piece) :]
        return chunk

    def write(self, data: bytes) -> None:
        self.written += data


def _connect_bytes() -> bytes:
    header = ConnectVariableHeader(keep_alive=60)
    header.username_flag = header.password_flag = True
    payload = ConnectPayload(
        client_id="dev-1",
        username="0ne00000001/registrations/dev-1/api-version=2019-03-31",
        password="SharedAccessSignature sr=x&sig=y&se=1",
    )
    return bytes(ConnectPacket(variable_header=header, payload=payload).to_bytes())


def test_a_connect_is_decoded_across_small_reads() -> None:
    stream = Stream(_connect_bytes() + mqtt_codec.pingresp())
    packet = mqtt_codec.read_packet(stream, max_bytes=1024)
    assert isinstance(packet, ConnectPacket)
    assert packet.payload.client_id == "dev-1"
    assert packet.payload.username.endswith("api-version=2019-03-31")
    assert packet.variable_header.keep_alive == 60
    assert stream.data == mqtt_codec.pingresp()  # the next packet is untouched


def test_clean_end_of_stream_between_packets_is_none() -> None:
    assert mqtt_codec.read_packet(Stream(b""), max_bytes=1024) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x10\xff\xff\xff\xff\x01", "fixed header"),  # remaining length over four bytes
        (_connect_bytes()[:-4], "middle of a packet"),  # cut short
        (b"\xc0\x01\x00", "trailing"),  # PINGREQ with a body byte
        (b"\x00\x00", "type 0"),  # reserved packet type
    ],
)
def test_malformed_packets_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        mqtt_codec.read_packet(Stream(data), max_bytes=1024)


def test_an_oversized_packet_is_refused_before_its_body_is_read() -> None:
    stream = Stream(b"\x30\x80\x80\x04" + b"x" * 100)  # PUBLISH claiming 65,536 bytes
    with pytest.raises(PacketTooLarge):
        mqtt_codec.read_packet(stream, max_bytes=1024)
    assert len(stream.data) == 100


def test_answers_are_mqtt_3_1_1_bytes() -> None:
    assert mqtt_codec.connack(5) == b"\x20\x02\x00\x05"
    assert mqtt_codec.suback(7, [1, 0x80]) == b"\x90\x04\x00\x07\x01\x80"
    assert mqtt_codec.puback(9) == b"\x40\x02\x00\x09"
    assert mqtt_codec.pingresp() == b"\xd0\x00"
    topic = "$dps/registrations/res/202/?$rid=1&retry-after=3"
    assert mqtt_codec.publish(topic, b"{}") == (
        bytes([0x30, 2 + len(topic) + 2, 0, len(topic)]) + topic.encode() + b"{}"
    )
