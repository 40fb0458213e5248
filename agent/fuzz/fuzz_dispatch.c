/*
 * fuzz_dispatch.c - libFuzzer target: a sequence of request payloads (CRC already checked)
 * into agent_handle(), the dispatcher without the framing.
 *
 * Input: byte 0 = capabilities (low 4 bits), then records of a 2-byte big-endian length and
 * that many payload bytes (cut to the protocol's 8192). The board keeps its state from one
 * request to the next, so the fuzzer can reach lock, replay and key state. Checked (abort =
 * a finding), against docs/board-protocol.md:
 *   - every request gets an answer, a valid answer map (wire_check.c);
 *   - the answer's seq is the request's, or 0 (never another number), and seq 0 is never ok;
 *   - a payload identical to the one before is answered with identical bytes and changes
 *     nothing on the board (section 5.2: replay, never apply twice);
 *   - after a successful lock, no write or keygen succeeds (section 10);
 *   - ASan and UBSan find nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_board.h"
#include "station_agent.h"
#include "wire_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static agent_t agent;
static fuzz_board_t board;
static uint8_t answer[AGENT_MAX_PAYLOAD];
static uint8_t previous_answer[AGENT_MAX_PAYLOAD];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *previous = NULL;
    size_t previous_len = 0;
    size_t previous_answer_len = 0;
    int locked = 0;
    if (size < 1) {
        return 0;
    }
    fuzz_board_init(&board, data[0] & 0x0Fu);
    agent_init(&agent, &board.hal);
    size_t i = 1;
    while (size - i >= 2) {
        size_t len = ((size_t)data[i] << 8) | data[i + 1];
        i += 2;
        if (len > size - i) {
            len = size - i;
        }
        if (len > AGENT_MAX_PAYLOAD) {
            len = AGENT_MAX_PAYLOAD;
        }
        const uint8_t *payload = data + i;
        i += len;

        uint32_t changes = board.changes;
        size_t n = agent_handle(&agent, payload, len, answer, sizeof answer);
        if (n == 0) {
            abort();
        }
        message_t rsp = check_answer(answer, n);
        message_t req;
        int readable = check_message(payload, len, &req) == 0 && req.has_seq && req.has_op;
        if (rsp.seq != 0 && !(readable && rsp.seq == req.seq)) {
            abort();
        }
        if (rsp.seq == 0 && rsp.st == 0) {
            abort();
        }
        if (previous != NULL && len == previous_len && memcmp(payload, previous, len) == 0) {
            if (board.changes != changes || n != previous_answer_len ||
                memcmp(answer, previous_answer, n) != 0) {
                abort();
            }
        }
        if (readable && rsp.st == 0) {
            if (strcmp(req.op, "lock") == 0) {
                locked = 1;
            } else if (locked && (strcmp(req.op, "write") == 0 || strcmp(req.op, "keygen") == 0)) {
                abort();
            }
        }
        previous = payload;
        previous_len = len;
        memcpy(previous_answer, answer, n);
        previous_answer_len = n;
    }
    return 0;
}
