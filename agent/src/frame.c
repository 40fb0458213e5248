/*
 * frame.c - CRC-32 and COBS, the byte layer of a frame (docs/board-protocol.md section 2).
 */
#include "station_agent.h"

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), four bits at a time: a 64-byte table instead of
 * 1 KiB, fast enough for 115200 baud and USB CDC alike. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t agent_crc32(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return crc ^ 0xFFFFFFFFu;
}

size_t agent_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t code_index = 0;
    size_t o = 1;
    uint8_t code = 1;
    size_t i;
    if (cap < len + len / 254u + 1u) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_index] = code;
            code_index = o++;
            code = 1;
            continue;
        }
        out[o++] = in[i];
        code++;
        if (code == 0xFF) {
            out[code_index] = code;
            code_index = o++;
            code = 1;
        }
    }
    out[code_index] = code;
    return o;
}

size_t agent_cobs_decode(uint8_t *buf, size_t len)
{
    /* In place: the write position never overtakes the read position (each block loses its
     * code byte and gains at most one 0x00). */
    size_t r = 0;
    size_t w = 0;
    while (r < len) {
        uint8_t code = buf[r];
        size_t k;
        if (code == 0 || r + code > len) {
            return (size_t)-1;
        }
        for (k = 1; k < code; k++) {
            uint8_t byte = buf[r + k];
            if (byte == 0) {
                return (size_t)-1;
            }
            buf[w++] = byte;
        }
        r += code;
        if (code != 0xFF && r < len) {
            buf[w++] = 0;
        }
    }
    return w;
}
