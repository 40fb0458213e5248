/*
 * fuzz_frame.c - libFuzzer target: arbitrary bytes on the UART into agent_feed().
 *
 * Input: byte 0 = capabilities (low 4 bits) and the mode (bit 4), byte 1 = how many bytes the
 * UART driver hands over per call (1-256), then
 *   - raw mode: the received bytes, as they are (noise, broken COBS, bad CRCs, oversize);
 *   - framed mode: records of a 2-byte big-endian length and a payload, each framed here with a
 *     correct CRC (wire_check.c's own encoder), so payloads of any size up to 8,300 bytes
 *     reach the dispatcher through the frame layer, including those over the 8,192 limit.
 * Checked (abort = a finding):
 *   - every non-empty frame (bytes up to a 0x00) gets exactly one answer, an empty frame
 *     none, and nothing else is ever sent (docs/board-protocol.md sections 1, 2, 5.3);
 *   - every answer is COBS(payload || CRC-32) || 0x00 whose payload is a valid answer map
 *     (wire_check.c, independent of the agent's own codec);
 *   - a frame whose payload exceeds 8192 bytes gets a NAK (seq 0), it is never executed: an
 *     overrun of the agent's 8192-byte copies stays inside agent_t, where ASan cannot see it;
 *   - AddressSanitizer and UndefinedBehaviorSanitizer find no memory or arithmetic error.
 */
#include <stdlib.h>

#include "fuzz_board.h"
#include "station_agent.h"
#include "wire_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FRAMED_PAYLOAD_MAX 8300u

static agent_t agent;
static fuzz_board_t board;
static uint8_t wire[4u * (FRAMED_PAYLOAD_MAX + FRAMED_PAYLOAD_MAX / 254u + 8u)];

static size_t framed_len[4]; /* framed mode: each frame's payload length */
static size_t framed_count;

/* Framed mode: turn length-prefixed payloads into wire bytes (up to four frames); returns the
 * wire's length. */
static size_t frame_records(const uint8_t *data, size_t size)
{
    size_t out = 0;
    size_t i = 0;
    framed_count = 0;
    for (int frames = 0; frames < 4 && size - i >= 2; frames++) {
        size_t len = ((size_t)data[i] << 8) | data[i + 1];
        i += 2;
        if (len > size - i) {
            len = size - i;
        }
        if (len > FRAMED_PAYLOAD_MAX) {
            len = FRAMED_PAYLOAD_MAX;
        }
        framed_len[framed_count++] = len;
        wire[out++] = 0x00; /* the station's leading delimiter */
        out += frame_encode(data + i, len, wire + out, sizeof wire - out);
        i += len;
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t frames = 0;
    if (size < 2) {
        return 0;
    }
    uint32_t caps = data[0] & 0x0Fu;
    int framed = (data[0] & 0x10u) != 0;
    size_t chunk = (size_t)data[1] + 1u;
    data += 2;
    size -= 2;
    if (framed) {
        size = frame_records(data, size);
        data = wire;
    }
    fuzz_board_init(&board, caps);
    agent_init(&agent, &board.hal);
    for (size_t i = 0; i < size; i++) {
        if (data[i] == 0 && i > 0 && data[i - 1] != 0) {
            frames++;
        }
    }
    for (size_t off = 0; off < size; off += chunk) {
        agent_feed(&agent, data + off, size - off < chunk ? size - off : chunk);
    }
    if (board.frames != frames) {
        abort();
    }
    for (size_t k = 0; k < board.frames && k < FUZZ_MAX_FRAMES; k++) {
        message_t answer = check_answer_frame(board.frame[k], board.frame_len[k]);
        if (framed && framed_len[k] > AGENT_MAX_PAYLOAD &&
            (answer.seq != 0 || (answer.st != 1 && answer.st != 8))) {
            abort(); /* a payload over 8192 bytes is no request: a NAK, never executed */
        }
    }
    const agent_stats_t *stats = agent_stats(&agent);
    if (stats->frames + stats->bad + stats->oversize != frames) {
        abort();
    }
    return 0;
}
