/*
 * station_agent.h - the board side of the station's board protocol, version 1
 * (docs/board-protocol.md), as a portable C99 library.
 *
 * Usage: allocate one agent_t (statically: it holds every buffer, about 40 KiB; the core
 * never allocates), fill an agent_hal_t for your board, call agent_init() once at boot, then
 * either call agent_poll() from the main loop (it reads through hal->uart_read) or pass
 * received bytes to agent_feed(). Answers go out through hal->uart_write.
 *
 *     static agent_t agent;
 *     agent_init(&agent, &my_hal);
 *     for (;;) { agent_poll(&agent); other_work(); }
 */
#ifndef STATION_AGENT_H
#define STATION_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "agent_hal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGENT_PROTOCOL_VERSION 1u
#define AGENT_MAX_PAYLOAD 8192u /* largest CBOR message in a frame (section 2) */
#define AGENT_CRC_SIZE 4u
/* Largest COBS-encoded frame without its 0x00: payload + CRC + one byte per 254 + 1. */
#define AGENT_MAX_ENCODED                                                                      \
    (AGENT_MAX_PAYLOAD + AGENT_CRC_SIZE + (AGENT_MAX_PAYLOAD + AGENT_CRC_SIZE) / 254u + 1u)
#define AGENT_MAX_DEPTH 6u  /* nesting levels below the top map (section 3) */
#define AGENT_MAX_ITEMS 64u /* items in any array or map (section 3) */
#define AGENT_MAX_TOTAL_ITEMS 2048u /* CBOR items in one message, keys included (section 3) */
#define AGENT_MAX_OP 16u    /* longest operation name the agent remembers */
#define AGENT_SMALL_PAYLOAD 160u /* NAKs and unreadable-request answers */

/* Counters for diagnostics and tests (never sent on the wire). */
typedef struct agent_stats {
    uint32_t frames;   /* frames with a good CRC */
    uint32_t bad;      /* frames thrown away (COBS, short, CRC) */
    uint32_t oversize; /* frames too large to store */
    uint32_t replayed; /* answers replayed without executing again (section 5.2) */
    uint32_t executed; /* requests executed */
} agent_stats_t;

/* The agent's state. Treat every field as private: use the functions below. */
typedef struct agent {
    const agent_hal_t *hal;
    /* receive side: the encoded frame, COBS-decoded in place once its 0x00 arrives */
    uint8_t rx[AGENT_MAX_ENCODED];
    size_t rx_len;
    int rx_overflow; /* bytes of the current frame are being dropped (too large) */
    /* the last request executed and its answer (section 5.2) */
    uint8_t last_req[AGENT_MAX_PAYLOAD];
    size_t last_req_len;
    uint8_t last_rsp[AGENT_MAX_PAYLOAD];
    size_t last_rsp_len;
    char last_op[AGENT_MAX_OP + 1];
    /* the operation whose answer is being sent ("" for a NAK); see agent_current_op() */
    char current_op[AGENT_MAX_OP + 1];
    /* scratch: NAKs, a record read from storage, a TPM response, the frame being sent */
    uint8_t small[AGENT_SMALL_PAYLOAD];
    uint8_t scratch[AGENT_RECORD_MAX];
    uint8_t tx[AGENT_MAX_ENCODED + 2u];
    int locked;
    int pending_reset; /* 1 reset, 2 factory reset: hal->reset runs once the answer is out */
    agent_stats_t stats;
} agent_t;

/* Prepare the agent: reads the lock flag through the HAL; clears the idempotency copy. */
void agent_init(agent_t *agent, const agent_hal_t *hal);

/* Consume received bytes: every complete frame among them is answered before this returns. */
void agent_feed(agent_t *agent, const uint8_t *data, size_t len);

/* Read what hal->uart_read has (non-blocking) and feed it; returns the number of bytes read. */
size_t agent_poll(agent_t *agent);

/* Answer one request payload (CRC already checked) into out; returns the answer's length.
 * This is the dispatcher without the framing: for tests, fuzzing and other transports. */
size_t agent_handle(agent_t *agent, const uint8_t *payload, size_t len, uint8_t *out,
                    size_t cap);

/* The operation whose answer is being sent right now, for a port's uart_write (fault
 * injection, logging): e.g. "write"; "" while a NAK is sent. */
const char *agent_current_op(const agent_t *agent);

/* Counters since agent_init(). */
const agent_stats_t *agent_stats(const agent_t *agent);

/* Frame-layer helpers, exposed for ports and tests. */
uint32_t agent_crc32(const uint8_t *data, size_t len);
/* COBS-encode in into out (cap >= len + len/254 + 1); returns the encoded length. */
size_t agent_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* COBS-decode buf[0..len) in place; returns the decoded length or (size_t)-1 if not COBS. */
size_t agent_cobs_decode(uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* STATION_AGENT_H */
