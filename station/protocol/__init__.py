"""The board protocol (version 1): pure bytes <-> messages, shared by station and lab boards.

Layers, bottom up: :mod:`.framing` (COBS, 0x00 delimiters, CRC-32), :mod:`.messages` (CBOR
requests/responses, status codes) and :mod:`.ops` (operations, objects, capabilities). No I/O.
The specification for firmware engineers is docs/board-protocol.md.
"""
