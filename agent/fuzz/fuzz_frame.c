/*
 * fuzz_frame.c - libFuzzer target: arbitrary bytes on the UART into agent_feed().
 *
 * Input: byte 0 = capabilities (low 4 bits), byte 1 = how many bytes the UART driver hands
 * over per call (1-256), then the received bytes. Checked (abort = a finding):
 *   - every non-empty frame (bytes up to a 0x00) gets exactly one answer, an empty frame
 *     none, and nothing else is ever sent (docs/board-protocol.md sections 1, 2, 5.3);
 *   - every answer is COBS(payload || CRC-32) || 0x00 whose payload is a valid answer map
 *     (wire_check.c, independent of the agent's own codec);
 *   - AddressSanitizer and UndefinedBehaviorSanitizer find no memory or arithmetic error.
 */
#include <stdlib.h>

#include "fuzz_board.h"
#include "station_agent.h"
#include "wire_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static agent_t agent;
static fuzz_board_t board;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t frames = 0;
    if (size < 2) {
        return 0;
    }
    uint32_t caps = data[0] & 0x0Fu;
    size_t chunk = (size_t)data[1] + 1u;
    data += 2;
    size -= 2;
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
        (void)check_answer_frame(board.frame[k], board.frame_len[k]);
    }
    const agent_stats_t *stats = agent_stats(&agent);
    if (stats->frames + stats->bad + stats->oversize != frames) {
        abort();
    }
    return 0;
}
