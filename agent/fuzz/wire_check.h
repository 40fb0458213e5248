/*
 * wire_check.h - what every answer of the agent must be, checked independently of the agent's
 * own code (its own CRC, COBS and CBOR are what is under test): docs/board-protocol.md
 * sections 2 and 3.
 */
#ifndef WIRE_CHECK_H
#define WIRE_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* What the checks learnt about one CBOR message's top-level map. */
typedef struct message {
    int has_seq, has_st, has_res, has_msg, has_op;
    uint64_t seq;
    uint64_t st;
    char op[17]; /* a request's operation name, truncated */
    int keys;    /* entries in the top-level map */
} message_t;

/* 0 if payload[0..len) is one well-formed CBOR item under the spec's rules (definite lengths,
 * no tags or floats, simple values only false/true/null, valid UTF-8 text, text keys, depth
 * <= 6 below the top map, <= 64 items per container) and is a map; fills *msg. -1 otherwise. */
int check_message(const uint8_t *payload, size_t len, message_t *msg);

/* Abort unless frame[0..len) (one uart_write call) is COBS(payload || CRC32-LE) || 0x00 with
 * a 1..8192-byte payload that is a valid answer: {seq, st, res} with st 0 or {seq, st, msg}
 * with st 1..11. Returns the answer's fields. */
message_t check_answer_frame(const uint8_t *frame, size_t len);

/* Frame payload as a station does: COBS(payload || CRC32-LE(payload)) || 0x00, with this
 * file's own encoder. Returns the length written to out (cap must be >= len + len/254 + 6). */
size_t frame_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t cap);

/* Abort unless payload[0..len) is a valid answer (as above, without the framing). */
message_t check_answer(const uint8_t *payload, size_t len);

#endif
